"""The ``render`` CLI command and the two motion nodes (run without ComfyUI)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from pack_loader import pack_submodule

from stm2pe_core.cli import main


def _aist_file(path, n=30):
    t = np.arange(n) / 60.0
    poses = np.zeros((n, 24, 3))
    poses[:, 16, 2] = -1.0 + np.sin(2 * np.pi * t)
    poses[:, 0, 1] = 0.5 * t
    trans = np.stack([0.1 * t, 0.9 + 0 * t, 0 * t], axis=1) * 90.0
    path.write_bytes(
        pickle.dumps({"smpl_poses": poses.reshape(n, 72), "smpl_trans": trans, "smpl_scaling": np.array([90.0])})
    )
    return path


def test_cli_render_to_champ_folders(tmp_path, capsys):
    src = _aist_file(tmp_path / "dance.pkl")
    out = tmp_path / "maps"
    out.mkdir()
    (out / "keep.txt").write_text("mine")  # other files in the folder survive
    assert main(["render", "--motion", str(src), "--out", str(out), "--size", "64", "48", "--fps", "30"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["frames"] == 15 and info["body"] == "preview" and info["size"] == [64, 48]
    for name in ("depth", "normal", "semantic_map", "dwpose", "preview"):
        assert len(list((out / name).glob("*.png"))) == 15, name
    import cv2

    img = cv2.imread(str(out / "normal" / "0000.png"))
    assert img.shape == (48, 64, 3) and img.max() > 0
    kp = np.load(out / "keypoints.npz")
    assert kp["keypoints"].shape == (15, 18, 3) and kp["heatmaps"].shape == (15, 18, 6, 8)
    assert (out / "keep.txt").read_text() == "mine" and not list(tmp_path.glob("*.partial"))


def test_cli_render_mp4_and_errors(tmp_path, capsys):
    pytest.importorskip("av")
    src = _aist_file(tmp_path / "dance.pkl")
    out = tmp_path / "prev.mp4"
    assert main(["render", "--motion", str(src), "--out", str(out), "--size", "64", "--maps", "depth", "skeleton"]) == 0
    import av

    with av.open(str(out)) as c:
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == 7 and (frames[0].height, frames[0].width) == (32, 64)  # two half-size tiles side by side
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    assert main(["render", "--motion", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "refused" in capsys.readouterr().err


def test_nodes_load_and_render(tmp_path, monkeypatch):
    mod = pack_submodule("nodes.motion")
    monkeypatch.chdir(tmp_path)  # input_directory() is the cwd without ComfyUI
    _aist_file(tmp_path / "dance.pkl", n=24)
    assert "dance.pkl" in mod.motion_files()
    load = mod.STM2PELoadMotion()
    assert mod.STM2PELoadMotion.VALIDATE_INPUTS("dance.pkl") is True
    assert "not found" in mod.STM2PELoadMotion.VALIDATE_INPUTS("nope.pkl")
    motion, n, fps = load.load("dance.pkl", 15.0, 0.0, 0.0, "auto")
    assert (n, fps) == (6, 15.0) and motion.n_frames == 6
    out = mod.STM2PERenderSMPLGuidance().render(
        motion, 64, 64, True, False, True, True, "fit dance (front)", "preview", "neutral"
    )
    depth, normal, semantic, skeleton, preview, maps = out
    assert tuple(depth.shape) == (6, 64, 64, 3) and tuple(normal.shape) == (1, 64, 64, 3) and float(normal.max()) == 0.0
    assert tuple(preview.shape) == (6, 64, 64, 3)  # 2x2 grid of half-size tiles
    assert set(maps.maps) == {"depth", "semantic_map", "dwpose"} and maps.keypoints.shape == (6, 18, 3)
    assert tuple(semantic.shape) == (6, 64, 64, 3) and float(skeleton.max()) > 0


def test_render_node_uses_smpl_from_the_models_folder(tmp_path, monkeypatch):
    from test_body_smpl import synthetic_smpl

    mod = pack_submodule("nodes.motion")
    (tmp_path / "smpl").mkdir()
    np.savez(tmp_path / "smpl" / "SMPL_NEUTRAL.npz", **synthetic_smpl())
    monkeypatch.setenv("STM2PE_MODELS", str(tmp_path))
    assert mod.smpl_folder() == tmp_path / "smpl"
    from stm2pe_core.body.motion import make_motion

    motion = make_motion(np.zeros((2, 24, 3)), np.zeros((2, 3)), 15.0)
    out = mod.STM2PERenderSMPLGuidance().render(
        motion, 64, 64, False, False, True, False, "fit dance (front)", "smpl", "neutral"
    )
    sem = out[2].numpy()
    assert sem.shape == (2, 64, 64, 3) and sem.max() > 0
    assert out[5].mask[0].sum() > 20  # the synthetic SMPL's octahedra are drawn


def test_save_motion_node_round_trips_through_load_motion(tmp_path, monkeypatch):
    """Save Motion writes our .npz into the output folder (numbered, atomically); Load Motion lists it as
    '... [output]' and reads back the same poses, translation, shape and frame rate."""
    from stm2pe_core.body.motion import load_motion, make_motion

    mod = pack_submodule("nodes.motion")
    inp, out = tmp_path / "input", tmp_path / "output"
    inp.mkdir()
    out.mkdir()
    monkeypatch.setattr(mod, "input_directory", lambda: inp)
    monkeypatch.setattr(mod, "output_directory", lambda: out)
    _aist_file(inp / "dance.pkl", n=12)
    rng = np.random.default_rng(3)
    poses = rng.normal(0, 0.4, (20, 24, 3))
    trans = np.cumsum(rng.normal(0, 0.01, (20, 3)), 0) + [0, 0.9, 0]
    motion = make_motion(poses, trans, 15.0, betas=np.linspace(-1, 1, 10))
    assert mod.NODE_CLASS_MAPPINGS["STM2PESaveMotion"] is mod.STM2PESaveMotion
    assert mod.STM2PESaveMotion.OUTPUT_NODE and mod.STM2PESaveMotion.RETURN_TYPES == ("STRING",)
    res = mod.STM2PESaveMotion().save(motion, "stm2pe/dance")
    first = out / "stm2pe" / "dance_00001_.npz"
    assert res["result"] == (str(first),) and first.is_file()
    assert str(first) in res["ui"]["text"][0] and "20 frames at 15 fps" in res["ui"]["text"][0]
    second = mod.STM2PESaveMotion().save(motion, "stm2pe/dance")["result"][0]
    assert second == str(out / "stm2pe" / "dance_00002_.npz") and first.is_file()
    assert sorted(p.name for p in (out / "stm2pe").iterdir()) == ["dance_00001_.npz", "dance_00002_.npz"]
    name = "stm2pe/dance_00001_.npz [output]"
    assert mod.motion_files() == ["dance.pkl", name, "stm2pe/dance_00002_.npz [output]"]
    assert mod.STM2PELoadMotion.VALIDATE_INPUTS(name) is True
    for back in (load_motion(first), mod.STM2PELoadMotion().load(name, 0.0, 0.0, 0.0, "auto")[0]):
        np.testing.assert_allclose(back.poses, motion.poses, atol=1e-6)
        np.testing.assert_allclose(back.trans, motion.trans, atol=1e-6)
        np.testing.assert_allclose(back.betas, motion.betas, atol=1e-6)
        assert back.fps == 15.0 and back.n_frames == 20
    with pytest.raises(Exception, match="outside the output folder"):
        mod.STM2PESaveMotion().save(motion, "../escape")
    assert not (tmp_path / "escape_00001_.npz").exists()
