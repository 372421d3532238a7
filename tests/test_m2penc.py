"""M2PEnc: head shapes, on-demand heads, files (config + strict loading), root encoding,
window fusion continuity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stm2pe_core.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rot6d_to_matrix
from stm2pe_core.errors import InputError, MissingModelError, WeightsError
from stm2pe_core.models.m2penc import M2PEnc, M2PEncConfig, decode_root, encode_root, load_config, yaw_of
from stm2pe_core.motion_inference import heatmap_peaks, music_to_guidance, music_to_motion, run_windows
from stm2pe_core.types import MusicFeatures
from stm2pe_core.windows import plan_windows

TINY = dict(
    grid=4,
    channels=16,
    num_layers=1,
    num_heads=2,
    head_channels=8,
    smpl_hidden=32,
    window=16,
    window_overlap=6,
    heatmap_channels=5,
)


def tiny(**kw) -> M2PEnc:
    torch.manual_seed(0)
    return M2PEnc(M2PEncConfig(**{**TINY, **kw})).eval()


def feats(n: int, dim: int = 36, seed: int = 0) -> MusicFeatures:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return MusicFeatures(x, "librosa", 15.0, (("x", dim),), "hash")


def test_every_head_shape():
    m = tiny(heads=("smpl", "heatmap", "guidance"))
    out = m(torch.randn(2, 12, 36))
    assert out["rot6d"].shape == (2, 12, 24, 6)
    assert out["root"].shape == (2, 12, 4)
    assert out["betas"].shape == (2, 10)
    assert out["heatmap"].shape == (2, 12, 5, 64, 64)
    assert out["guidance"].shape == (2, 12, 320, 64, 64)
    # unbatched input, and the 64x64 heads on chosen frames only
    assert m(torch.randn(12, 36), heads=("smpl",))["rot6d"].shape == (12, 24, 6)
    sub = m(torch.randn(2, 12, 36), heads=("heatmap",), map_frames=torch.tensor([0, 5, 7]))
    assert sub["heatmap"].shape == (2, 3, 5, 64, 64)


def test_heads_only_when_requested_and_identity_at_init():
    m = tiny(heads=("smpl", "heatmap", "guidance"))
    out = m(torch.randn(1, 8, 36), heads=("smpl",))
    assert set(out) == {"rot6d", "root", "betas"}
    # zero-initialised SMPL outputs: rest pose, no motion
    rot = rot6d_to_matrix(out["rot6d"])
    assert torch.allclose(rot, torch.eye(3).expand_as(rot), atol=1e-6)
    with pytest.raises(ValueError, match="no \\['guidance'\\] head"):
        tiny()(torch.randn(1, 8, 36), heads=("guidance",))
    with pytest.raises(ValueError, match="expects 36-d"):
        m(torch.randn(1, 8, 35))


def test_save_load_round_trip(tmp_path):
    m = tiny()
    m.set_feature_stats(torch.arange(36.0), torch.full((36,), 2.0))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.02)
    path = m.save_pretrained(tmp_path / "w.safetensors")
    assert json.loads(path.with_suffix(".json").read_text())["channels"] == 16
    x = torch.randn(1, 10, 36)
    m2 = M2PEnc.from_pretrained(path)
    assert m2.config == m.config
    with torch.no_grad():
        a, b = m(x, heads=("smpl",)), m2(x, heads=("smpl",))
    assert torch.equal(a["rot6d"], b["rot6d"]) and torch.equal(m2.feat_mean, torch.arange(36.0))
    # fp16 file: half the size, same outputs to fp16 precision; config survives without the json
    p16 = m.save_pretrained(tmp_path / "h.safetensors", dtype=torch.float16)
    p16.with_suffix(".json").unlink()
    assert p16.stat().st_size < 0.6 * path.stat().st_size
    with torch.no_grad():
        c = M2PEnc.from_pretrained(p16)(x, heads=("smpl",))
    assert torch.allclose(a["rot6d"], c["rot6d"], atol=2e-2)


def test_strict_load_names_keys(tmp_path):
    from safetensors.torch import load_file, save_file

    m = tiny()
    path = m.save_pretrained(tmp_path / "w.safetensors")
    state = load_file(str(path))
    meta = {"m2penc_config": path.with_suffix(".json").read_text()}
    state.pop("fc.weight")
    state["extra.thing"] = torch.zeros(1)
    state["patchify.bias"] = torch.zeros(3)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=meta)
    with pytest.raises(WeightsError) as err:
        M2PEnc.from_pretrained(bad)
    msg = str(err.value)
    assert "bad.safetensors" in msg and "fc.weight" in msg and "extra.thing" in msg and "patchify.bias" in msg


def test_config_rejects_unknown_keys_and_missing_config(tmp_path):
    with pytest.raises(ValueError, match="bogus"):
        M2PEncConfig.from_dict({"bogus": 1})
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(WeightsError, match="no M2PEnc config"):
        load_config(tmp_path / "x.safetensors")
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "missing.safetensors")


def test_root_encoding_round_trip():
    g = torch.Generator().manual_seed(1)
    n = 40
    aa = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.2
    aa[:, 1] += torch.linspace(0, 9, n, dtype=torch.float64)  # more than a full turn
    rot = axis_angle_to_matrix(aa)
    trans = torch.cumsum(torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.03, 0)
    trans = trans - trans[:1] * torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    local, rates = encode_root(rot, trans)
    assert rates.shape == (n, 4) and local.shape == (n, 3, 3)
    assert torch.allclose(yaw_of(local), torch.zeros(n, dtype=torch.float64), atol=1e-9)
    rot2, trans2 = decode_root(local, rates, yaw0=yaw_of(rot[0]))
    assert torch.allclose(rot2, rot, atol=1e-9) and torch.allclose(trans2, trans, atol=1e-9)


def test_segment_equals_whole_song_slice():
    m = tiny(heads=("smpl", "heatmap"))
    f = feats(50)
    whole = run_windows(m, f.features, ("heatmap",))["heatmap"]
    part = run_windows(m, f.features, ("heatmap",), frames=slice(17, 33))["heatmap"]
    assert whole.shape == (50, 5, 64, 64)
    np.testing.assert_allclose(part, whole[17:33], atol=1e-6)


class _PerWindowConstant(torch.nn.Module):
    """Fake M2PEnc whose output is constant inside a window and differs between windows: the
    worst case for joins (a plain concatenation would jump by the whole difference)."""

    def __init__(self, cfg: M2PEncConfig) -> None:
        super().__init__()
        self.config = cfg
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, heads=None, map_frames=None):
        b, n, _ = x.shape
        angle = x[:, :, 0].mean(1)  # the window's mean of column 0 (rad about y)
        aa = torch.zeros(b, 3)
        aa[:, 1] = angle
        rot6 = axis_angle_to_matrix(aa)[:, :2, :].reshape(b, 1, 1, 6).expand(b, n, 24, 6)
        root = torch.zeros(b, n, 4)
        root[..., 1] = angle[:, None] * 0.1  # heading-frame velocity differs per window
        root[..., 2] = 0.9
        return {"rot6d": rot6, "root": root, "betas": torch.zeros(b, 10)}


def test_window_joins_are_continuous():
    cfg = M2PEncConfig(**TINY)
    fake = _PerWindowConstant(cfg)
    n = 60
    x = np.zeros((n, 36), np.float32)
    x[:, 0] = np.linspace(0.0, 3.0, n)  # later windows see larger angles
    f = MusicFeatures(x, "librosa", 15.0, (("x", 36),), "h")
    motion = music_to_motion(f, fake)
    windows = plan_windows(n, cfg.window, cfg.window_overlap)
    assert len(windows) >= 4
    # per-window angles (what each window alone would output)
    win_angles = [float(x[w.slice(), 0].mean()) for w in windows]
    jump = max(abs(a - b) for a, b in zip(win_angles, win_angles[1:]))
    angles = np.linalg.norm(matrix_to_axis_angle(axis_angle_to_matrix(motion.poses[:, 5].astype(np.float64))), axis=-1)
    steps = np.abs(np.diff(angles))
    # cross-fades spread each window-to-window jump over the overlap: no step comes near it
    assert steps.max() < 0.5 * jump
    assert steps.max() <= jump / (cfg.window_overlap + 1) * 1.6
    # monotone blend: the fused angle stays between the neighbouring windows' values
    assert angles.min() >= min(win_angles) - 1e-5 and angles.max() <= max(win_angles) + 1e-5
    # the integrated path has no jumps either: every step is at most the largest velocity
    path_steps = np.linalg.norm(np.diff(motion.trans[:, [0, 2]], axis=0), axis=-1)
    assert path_steps.max() <= 0.1 * max(win_angles) + 1e-5
    np.testing.assert_allclose(motion.trans[:, 1], 0.9, atol=1e-6)


def test_music_to_motion_and_feature_checks():
    m = tiny()
    mo = music_to_motion(feats(40), m)
    assert mo.poses.shape == (40, 24, 3) and mo.trans.shape == (40, 3) and mo.betas.shape == (10,)
    assert mo.fps == 15.0
    with pytest.raises(InputError, match="36-d 'librosa'"):
        music_to_motion(feats(40, dim=35), m)
    bad = MusicFeatures(feats(20).features, "jukebox", 15.0, (("x", 36),), "h")
    with pytest.raises(InputError, match="jukebox"):
        music_to_motion(bad, m)
    with pytest.raises(InputError, match="fps"):
        music_to_motion(MusicFeatures(feats(20).features, "librosa", 30.0, (("x", 36),), "h"), m)


def test_guidance_needs_a_trained_head():
    m = tiny(heads=("smpl", "guidance"))
    with pytest.raises(MissingModelError, match="no trained pose-guidance head"):
        music_to_guidance(feats(20), m)
    g = music_to_guidance(feats(20), m, frames=slice(0, 4), allow_untrained=True)
    assert tuple(g.features.shape) == (4, 320, 64, 64) and g.origin == "m2penc"


def test_heatmap_peaks():
    hm = np.zeros((2, 3, 64, 64), np.float32)
    hm[0, 1, 10, 20] = 0.8
    hm[1, 2, 63, 0] = 1.0
    kp = heatmap_peaks(hm, size=(512, 512))
    assert kp.shape == (2, 3, 3)
    np.testing.assert_allclose(kp[0, 1], [(20 + 0.5) * 8 - 0.5, (10 + 0.5) * 8 - 0.5, 0.8])
    np.testing.assert_allclose(kp[1, 2], [3.5, 507.5, 1.0])
