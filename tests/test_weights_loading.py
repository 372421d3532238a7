"""Strict weight loading: safe reading, clear messages for truncated / wrong files, conversion, check-models."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from stm2pe_core.cli import main as cli_main
from stm2pe_core.errors import MissingModelError, WeightsError
from stm2pe_core.weights.champ import check_models
from stm2pe_core.weights.cli import convert_file
from stm2pe_core.weights.loading import check_keys, load_strict, read_state_dict
from stm2pe_core.weights.paths import ModelTree

FIXTURE = Path(__file__).parent / "data" / "champ_keys.json"


def _guidance_sd(seed=0):
    shapes = json.loads(FIXTURE.read_text())["files"]["guidance_encoder_depth.pth"]["keys"]
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(tuple(s), generator=g) for k, s in shapes.items()}


def test_read_pth_and_safetensors(tmp_path):
    sd = {"a.weight": torch.randn(3, 2), "b": torch.arange(4)}
    torch.save(sd, tmp_path / "x.pth")
    save_file(sd, str(tmp_path / "x.safetensors"))
    for name in ("x.pth", "x.safetensors"):
        got = read_state_dict(tmp_path / name)
        assert set(got) == set(sd) and torch.equal(got["a.weight"], sd["a.weight"])
    torch.save({"state_dict": sd}, tmp_path / "wrapped.ckpt")
    assert set(read_state_dict(tmp_path / "wrapped.ckpt")) == set(sd)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_names_file_and_fix(tmp_path, suffix):
    p = tmp_path / f"reference_unet{suffix}"
    sd = {"w": torch.randn(256, 256)}
    torch.save(sd, p) if suffix == ".pth" else save_file(sd, str(p))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError) as ei:
        read_state_dict(p)
    msg = str(ei.value)
    assert "reference_unet" in msg and ("download it again" in msg or "truncated" in msg)


def test_empty_missing_and_unsafe_files(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="empty.pth.*empty"):
        read_state_dict(tmp_path / "empty.pth")
    with pytest.raises(MissingModelError, match="nothere.pth"):
        read_state_dict(tmp_path / "nothere.pth")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"w": Evil()}, f)
    with pytest.raises(WeightsError, match="evil.pth"):
        read_state_dict(tmp_path / "evil.pth")
    torch.save({"w": torch.zeros(1), "cfg": 3}, tmp_path / "mixed.pth")
    with pytest.raises(WeightsError, match="mixed.pth.*not a flat state dict"):
        read_state_dict(tmp_path / "mixed.pth")


def test_check_keys_lists_every_kind_of_problem():
    want = {"a": (2,), "b": (3, 3), "c": (1,)}
    found = {"a": (2,), "b": (3, 4), "d": (5,), "opt.x": (1,)}
    with pytest.raises(WeightsError) as ei:
        check_keys(want, found, "file.pth", optional_prefixes=("opt.",))
    msg = str(ei.value)
    assert "file.pth" in msg and "1 missing keys: c" in msg and "1 unexpected keys: d" in msg
    assert "b (3, 4) (network wants (3, 3))" in msg and "opt.x" not in msg
    check_keys(want, {"a": (2,), "b": (3, 3), "c": (1,), "opt.y": (9,)}, "ok.pth", optional_prefixes=("opt.",))


def test_load_strict_casts_and_assigns():
    with torch.device("meta"):
        lin = torch.nn.Linear(3, 2)
    sd = {"weight": torch.randn(2, 3, dtype=torch.float64), "bias": torch.randn(2, dtype=torch.float64)}
    load_strict(lin, sd, "lin.pth", dtype=torch.float32, assign=True)
    assert lin.weight.dtype == torch.float32 and not lin.weight.is_meta
    torch.testing.assert_close(lin.weight, sd["weight"].float())


def test_convert_weights_roundtrip_and_cli(tmp_path, capsys):
    sd = _guidance_sd()
    src = tmp_path / "guidance_encoder_depth.pth"
    torch.save(sd, src)
    dst = convert_file(src, tmp_path / "out", dtype="fp16")
    got = load_file(str(dst))
    assert dst.name == "guidance_encoder_depth.safetensors" and set(got) == set(sd)
    assert got["conv_out.weight"].dtype == torch.float16
    torch.testing.assert_close(got["conv_out.weight"].float(), sd["conv_out.weight"], rtol=1e-3, atol=1e-3)
    bad = dict(sd)
    del bad["conv_in.bias"]
    torch.save(bad, tmp_path / "guidance_encoder_normal.pth")
    rc = cli_main(["convert-weights", str(tmp_path / "guidance_encoder_normal.pth"), "--out", str(tmp_path / "o2")])
    assert rc == 2 and "conv_in.bias" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "guidance_encoder_normal.safetensors").exists()


def test_check_models_reports_present_missing_invalid(tmp_path, capsys):
    champ = tmp_path / "champ"
    champ.mkdir()
    torch.save(_guidance_sd(), champ / "guidance_encoder_depth.pth")
    bad = _guidance_sd()
    bad["conv_out.weight"] = torch.zeros(320, 128, 3, 3)
    torch.save(bad, champ / "guidance_encoder_dwpose.pth")
    reports = {r.slot: r for r in check_models(ModelTree(tmp_path))}
    assert reports["guidance_encoder_depth"].status == "ok"
    assert reports["guidance_encoder_dwpose"].status == "invalid"
    assert "conv_out.weight" in reports["guidance_encoder_dwpose"].detail
    assert reports["denoising_unet"].status == "missing" and "champ" in reports["denoising_unet"].detail
    rc = cli_main(["check-models", "--models", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1 and "guidance_encoder_depth" in out and "missing" in out


def test_locate_searches_several_model_roots(tmp_path):
    from stm2pe_core.weights.champ import locate, require

    a, b = tmp_path / "a", tmp_path / "b"
    (b / "champ").mkdir(parents=True)
    (b / "champ" / "guidance_encoder_depth.pth").write_bytes(b"x")
    (b / "champ" / "image_encoder").mkdir()  # CHAMP's own layout for the CLIP image encoder
    trees = [ModelTree(a), ModelTree(b)]
    assert locate(trees, "guidance_encoder_depth") == b / "champ" / "guidance_encoder_depth.pth"
    assert locate(trees, "image_encoder") == b / "champ" / "image_encoder"
    with pytest.raises(MissingModelError, match=str(a / "champ")):
        require(trees, "reference_unet")


def test_load_models_lists_every_missing_or_broken_file_at_once(tmp_path):
    """One MissingModelError names each missing/unusable file with its folder, accepted names and
    source, for ComfyUI and the CLI alike; the usable files are not mentioned."""
    from stm2pe_core.weights.champ import SOURCES, load_models

    champ, vae, clip = tmp_path / "champ", tmp_path / "vae", tmp_path / "clip_vision"
    for d in (champ, vae, clip):
        d.mkdir()
    torch.save(_guidance_sd(), champ / "guidance_encoder_depth.pth")  # fine
    (champ / "reference_unet.pth").write_bytes(b"")  # empty
    (champ / "motion_module.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{trunc")  # bad header
    (champ / "guidance_encoder_normal.pth").write_bytes(b"<html>not found</html>")  # an error page
    (vae / "sd-vae-ft-mse").mkdir()  # diffusers folder without weights
    (clip / "image_encoder").mkdir()
    (clip / "image_encoder" / "model.safetensors").write_bytes(b"")
    with pytest.raises(MissingModelError) as ei:
        load_models(ModelTree(tmp_path), device="cpu", guidance_types="PDNS")
    msg = str(ei.value)
    lines = [line for line in msg.splitlines() if line.startswith("  - ")]
    assert msg.startswith("8 photoreal model file(s)") and len(lines) == 8, msg
    expect = {
        "CHAMP denoising UNet: missing; accepted names: denoising_unet.safetensors or denoising_unet.pth",
        f"CHAMP reference UNet: {champ / 'reference_unet.pth'} is empty (0 bytes)",
        f"CHAMP motion modules: {champ / 'motion_module.safetensors'} has an unreadable safetensors header",
        f"CHAMP guidance encoder (normal): {champ / 'guidance_encoder_normal.pth'} is not a torch weight file",
        "CHAMP guidance encoder (semantic_map): missing; accepted names: guidance_encoder_semantic_map.safetensors",
        "CHAMP guidance encoder (dwpose): missing",
        f"SD VAE (sd-vae-ft-mse): {vae / 'sd-vae-ft-mse'} folder has no diffusion_pytorch_model.safetensors",
        f"CLIP image encoder (sd-image-variations image_encoder): {clip / 'image_encoder'} model.safetensors is empty",
    }
    for want in expect:
        assert sum(line.startswith(f"  - {want}") for line in lines) == 1, (want, msg)
    assert "guidance_encoder_depth" not in msg  # present and readable
    for key in ("champ", "vae", "clip_vision"):
        assert f"in {tmp_path / key} (from {SOURCES[key]}):" in msg
    assert "ComfyUI/models/<folder>" in msg and "--models DIR" in msg and "STM2PE_MODELS" in msg
    # only the chosen guidance set is required
    with pytest.raises(MissingModelError) as ei:
        load_models(ModelTree(tmp_path), device="cpu", with_guidance_encoders=False)
    assert str(ei.value).startswith("5 photoreal") and "guidance_encoder" not in str(ei.value)


def test_load_models_node_reports_all_missing_files(tmp_path, monkeypatch):
    from pack_loader import pack_submodule

    nodes = pack_submodule("nodes.diffusion")
    monkeypatch.setattr(nodes, "_trees", lambda: [ModelTree(tmp_path), ModelTree(tmp_path / "extra")])
    with pytest.raises(Exception) as ei:  # the pack's own copy of MissingModelError (imported as ComfyUI does)
        nodes.STM2PELoadModels().load(dtype="fp32", device="cpu", offload="none", guidance_encoders="P")
    assert type(ei.value).__name__ == "MissingModelError"
    msg = str(ei.value)
    assert msg.startswith("6 photoreal model file(s)"), msg  # 5 base files + the dwpose encoder
    assert f"in {tmp_path / 'champ'} (from" in msg and "guidance_encoder_dwpose" in msg
    assert "guidance_encoder_depth" not in msg and f"Also looked in: {tmp_path / 'extra'}" in msg
