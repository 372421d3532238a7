"""The photoreal path of `dance` end to end on tiny random stand-ins of every network."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_pipeline import song, tiny_m2penc  # noqa: F401 - fixtures
from test_pipeline_song import _randomise, smallest_unet_config

from stm2pe_core import pipeline
from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet
from stm2pe_core.video import video_info


def tiny_stack(guidance: str):
    """Test stand-ins with the real classes: tiny UNets, a 4-block VAE (x8), a tiny CLIP, small encoders."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from stm2pe_core.models.encoders import build_vae, tiny_vae_config
    from stm2pe_core.models.guidance_encoder import GuidanceEncoder

    torch.manual_seed(0)
    cfg = smallest_unet_config()
    ref, den = ReferenceUNet(cfg).eval(), DenoisingUNet(cfg).eval()
    _randomise(ref, 1)
    _randomise(den, 2)
    vae = build_vae(config=tiny_vae_config())
    clip = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            patch_size=32,
            projection_dim=cfg["cross_attention_dim"],
        )
    ).eval()
    enc = {
        name: GuidanceEncoder(
            out_channels=cfg["block_out_channels"][0], block_out_channels=(32, 32, 32, 32), heads=2
        ).eval()
        for name in pipeline.ABLATION_MAPS.get(guidance, ())
    }
    from stm2pe_core.weights.champ import ModelSet

    return ModelSet(ref, den, vae, clip, enc, torch.device("cpu"), torch.float32)


@pytest.fixture()
def photo(tmp_path) -> Path:
    img = np.full((96, 64, 3), 230, np.uint8)
    cv2.rectangle(img, (24, 10), (40, 90), (40, 60, 200), -1)  # a "person"
    path = tmp_path / "me.png"
    cv2.imwrite(str(path), img)
    return path


def _models_tree(root: Path, guidance: str) -> Path:
    from stm2pe_core.weights.champ import SLOTS

    for slot in pipeline.photoreal_slots(guidance):
        key, names, _ = SLOTS[slot]
        p = root / key / names[-1]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"stand-in")  # presence only: load_photoreal is replaced below
    return root


@pytest.mark.slow
def test_photoreal_with_rendered_pose_guidance(tmp_path, song, tiny_m2penc, photo, monkeypatch):  # noqa: F811
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pipeline, "load_photoreal", lambda tree, guidance, device, **kw: tiny_stack(guidance))
    models = _models_tree(tmp_path / "models", "P")
    out = tmp_path / "me.mp4"
    seen = []
    res = pipeline.dance(
        pipeline.DanceRequest(
            music=song, out=out, image=photo, models=models, guidance="P", m2penc=str(tiny_m2penc),
            size=64, steps=1, seconds=1.6, segment_frames=12, overlap=4, device="cpu",
        ),
        progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert res.mode == "photoreal" and res.n_frames == 24
    info = video_info(out)
    assert (info.frames, info.width, info.height) == (24, 64, 64)
    assert abs(info.audio_duration - 1.6) <= 1 / 15
    n_seg = 3  # plan_windows(24, 12, 4): ceil((24 - 4) / 8) segments, one step each
    assert seen[-1] == (n_seg, n_seg)


@pytest.mark.slow
def test_photoreal_with_m2penc_guidance_head(tmp_path, song, photo, monkeypatch):  # noqa: F811
    from stm2pe_core.models.m2penc import M2PEnc

    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pipeline, "load_photoreal", lambda tree, guidance, device, **kw: tiny_stack(guidance))
    torch.manual_seed(0)
    m2p = M2PEnc(
        channels=16, num_layers=1, num_heads=2, head_channels=8, smpl_hidden=32, window=30, window_overlap=6,
        heads=("smpl", "heatmap", "guidance"), trained_heads=("guidance",), guidance_channels=smallest_unet_config()["block_out_channels"][0],
    )  # fmt: skip
    weights = m2p.save_pretrained(tmp_path / "m2p_guidance.safetensors")
    out = tmp_path / "g.mp4"
    res = pipeline.dance(
        pipeline.DanceRequest(
            music=song, out=out, image=photo, models=_models_tree(tmp_path / "models", "m2penc"), guidance="m2penc",
            m2penc=str(weights), size=64, steps=1, seconds=1.0, segment_frames=10, overlap=3,
        )
    )  # fmt: skip
    assert res.mode == "photoreal" and video_info(out).frames == 15


@pytest.mark.slow
def test_default_guidance_without_guidance_head_uses_rendered_maps(tmp_path, song, tiny_m2penc, photo, monkeypatch):  # noqa: F811
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    asked = []
    monkeypatch.setattr(
        pipeline, "load_photoreal", lambda tree, guidance, device, **kw: asked.append(guidance) or tiny_stack(guidance)
    )
    res = pipeline.dance(
        pipeline.DanceRequest(
            music=song, out=tmp_path / "d.mp4", image=photo, models=_models_tree(tmp_path / "models", "PDNS"),
            m2penc=str(tiny_m2penc), size=64, steps=1, seconds=1.0, segment_frames=15,
        )
    )  # fmt: skip
    assert res.mode == "photoreal" and asked == ["PDNS"] and video_info(tmp_path / "d.mp4").frames == 15


def test_photo_without_model_files_falls_back_to_the_preview(tmp_path, song, tiny_m2penc, photo, monkeypatch):  # noqa: F811
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    res = pipeline.dance(
        pipeline.DanceRequest(
            music=song, out=tmp_path / "p.mp4", image=photo, models=tmp_path / "none", guidance="DNS",
            m2penc=str(tiny_m2penc), size=64, seconds=1.0, preview_style="skeleton",
        )
    )  # fmt: skip
    assert res.mode == "preview" and len(res.missing) == 8
    assert "photo was given" in res.notes[0]


def test_load_photoreal_names_the_missing_file_and_checks_keys(tmp_path):
    from stm2pe_core.errors import MissingModelError, WeightsError
    from stm2pe_core.weights.paths import ModelTree

    tree = ModelTree(tmp_path)
    with pytest.raises(MissingModelError, match="denoising_unet"):
        pipeline.load_photoreal(tree, "P", "cpu")
    _models_tree(tmp_path, "P")
    # the up-front check refuses files that are not weight files at all, naming each of them
    with pytest.raises(MissingModelError, match="not a torch weight file|unreadable safetensors header"):
        pipeline.load_photoreal(tree, "P", "cpu")
    # well-formed files with the wrong keys pass that check and fail the strict load, by file name
    from safetensors.torch import save_file

    for f in tmp_path.rglob("*"):
        if f.is_file():
            if f.suffix == ".safetensors":
                save_file({"x": torch.zeros(1)}, str(f))
            else:
                torch.save({"x": torch.zeros(1)}, f)
    torch.save({"conv_in.weight": torch.zeros(1)}, tmp_path / "champ" / "denoising_unet.pth")
    with pytest.raises(WeightsError, match="denoising_unet.pth"):
        pipeline.load_photoreal(tree, "P", "cpu")


def test_cli_speed_options_reach_loader_and_sampler(tmp_path, song, tiny_m2penc, photo, monkeypatch):  # noqa: F811
    """`dance --compile --context 6 --context-overlap 2`: the loader is asked to compile, every
    segment is denoised with 6-frame windows overlapping by 2."""
    import argparse

    from stm2pe_core.diffusion import sampling

    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    asked: dict = {}

    def fake_load(tree, guidance, device, compile=False):
        asked["compile"] = compile
        return tiny_stack(guidance)

    monkeypatch.setattr(pipeline, "load_photoreal", fake_load)
    windows = []
    real = sampling.denoise_segment

    def spy(*a, **k):
        windows.append((k["context_size"], k["context_overlap"]))
        return real(*a, **k)

    monkeypatch.setattr(sampling, "denoise_segment", spy)
    models = _models_tree(tmp_path / "models", "P")
    parser = argparse.ArgumentParser()
    pipeline.register(parser.add_subparsers())
    args = parser.parse_args(
        ["dance", "--music", str(song), "--image", str(photo), "--models", str(models), "--guidance", "P",
         "--m2penc", str(tiny_m2penc), "--size", "64", "--steps", "1", "--seconds", "1.0", "--segment-frames", "12",
         "--overlap", "4", "--device", "cpu", "--compile", "--context", "6", "--context-overlap", "2",
         "--out", str(tmp_path / "fast.mp4")]
    )  # fmt: skip
    assert args.func(args) == 0
    assert asked == {"compile": True}
    assert windows and set(windows) == {(6, 2)}
    assert video_info(tmp_path / "fast.mp4").frames == 15
