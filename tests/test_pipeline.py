"""The whole-song pipeline and the `dance` CLI (preview path), with a tiny M2PEnc stand-in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stm2pe_core.cli import main
from stm2pe_core.errors import InputError
from stm2pe_core.pipeline import DanceRequest, dance, missing_photoreal_files
from stm2pe_core.types import frame_count
from stm2pe_core.video import video_info
from stm2pe_core.weights.paths import ModelTree

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "stm2pe_core" / "assets" / "demo_song.ogg"
BUNDLED = REPO / "stm2pe_core" / "assets" / "m2penc_default.safetensors"


@pytest.fixture(scope="module")
def tiny_m2penc(tmp_path_factory) -> Path:
    """Test stand-in for the bundled M2PEnc: the same interface, a tiny random network."""
    import torch

    from stm2pe_core.models.m2penc import M2PEnc

    torch.manual_seed(0)
    model = M2PEnc(channels=16, num_layers=1, num_heads=2, head_channels=8, smpl_hidden=32, window=30, window_overlap=6)
    return model.save_pretrained(tmp_path_factory.mktemp("m2penc") / "tiny_m2penc.safetensors")


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """3.2 s stereo click track at 120 BPM (44.1 kHz)."""
    sr = 44100
    t = np.arange(int(3.2 * sr)) / sr
    wave = 0.05 * np.sin(2 * np.pi * 220 * t)
    for beat in np.arange(0, 3.2, 0.5):
        i = int(beat * sr)
        wave[i : i + 800] += 0.8 * np.exp(-np.arange(800) / 120.0) * np.sin(2 * np.pi * 1000 * np.arange(800) / sr)
    path = tmp_path_factory.mktemp("music") / "clicks.wav"
    sf.write(path, np.stack([wave, 0.5 * wave], axis=1).astype(np.float32), sr)
    return path


@pytest.mark.slow
def test_preview_video_has_every_frame_and_the_music(tmp_path, song, tiny_m2penc, monkeypatch):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "dance.mp4"
    seen = []
    res = dance(
        DanceRequest(
            music=song, out=out, m2penc=str(tiny_m2penc), preview_style="skeleton", size=96, models=tmp_path / "models"
        ),
        progress=lambda d, t: seen.append((d, t)),
    )
    n = frame_count(3.2, 15)
    assert res.mode == "preview" and res.n_frames == n == 48
    assert seen[0] == (0, n) and seen[-1] == (n, n)
    info = video_info(out)
    assert (info.frames, float(info.fps), info.width, info.height) == (n, 15.0, 96, 96)
    assert info.audio_codec == "aac" and info.audio_channels == 2 and info.audio_rate == 44100
    assert abs(info.audio_duration - n / 15) <= 1 / 15
    # not black: the skeleton is drawn
    from stm2pe_core.video import iter_frames

    first = next(iter_frames(out))
    assert first.max() > 100 and (first.sum(axis=-1) > 200).mean() > 0.002
    # the files that would enable the photoreal video are named with their folder
    names = "\n".join(res.missing)
    for f in (
        "champ/denoising_unet",
        "champ/reference_unet",
        "champ/motion_module",
        "vae/sd-vae-ft-mse",
        "clip_vision/image_encoder",
    ):
        assert str(tmp_path / "models" / f) in names
    assert any("trained pose-guidance head" in note for note in res.notes) and res.photoreal_guidance == "PDNS"
    assert any("guidance_encoder_semantic_map" in m for m in res.missing)  # the route these weights can take


def test_excerpt_offset_and_seconds(tmp_path, song, tiny_m2penc, monkeypatch):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cut.mp4"
    res = dance(
        DanceRequest(
            music=song, out=out, m2penc=str(tiny_m2penc), preview_style="skeleton", size=64, offset=1.0, seconds=1.0
        )
    )
    assert res.n_frames == 15
    info = video_info(out)
    assert info.frames == 15 and abs(info.audio_duration - 1.0) <= 1 / 15


def test_cancel_leaves_no_video(tmp_path, song, tiny_m2penc, monkeypatch):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "x.mp4"

    def cancel(done, total):
        if done == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dance(
            DanceRequest(music=song, out=out, m2penc=str(tiny_m2penc), preview_style="skeleton", size=64),
            progress=cancel,
        )
    assert not any(p.suffix == ".mp4" for p in tmp_path.iterdir())


def test_cli_reports_the_video_and_missing_files(tmp_path, song, tiny_m2penc, capsys, monkeypatch):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cli.mp4"
    argv = ["dance", "--music", str(song), "--out", str(out), "--m2penc", str(tiny_m2penc), "--preview", "skeleton"]
    rc = main(argv + ["--size", "64", "--models", str(tmp_path / "m"), "--guidance", "PDNS"])
    text = capsys.readouterr().out
    assert rc == 0 and out.is_file()
    assert "preview: 48 frames at 15 fps" in text
    assert "guidance_encoder_dwpose.pth" in text and "guidance_encoder_semantic_map.pth" in text
    assert str(tmp_path / "m" / "champ" / "denoising_unet.safetensors") + " (or denoising_unet.pth)" in text
    # user errors: message, no traceback, exit code 2
    assert main(["dance", "--music", str(tmp_path / "nope.wav"), "--out", str(out)]) == 2
    assert "music file not found" in capsys.readouterr().err
    assert main(["dance", "--music", str(song), "--out", str(tmp_path / "a.avi")]) == 2
    assert "ending in .mp4" in capsys.readouterr().err


def test_missing_photoreal_files_tracks_the_tree(tmp_path):
    tree = ModelTree(tmp_path)
    assert len(missing_photoreal_files(tree, "P")) == 6
    (tmp_path / "champ").mkdir()
    for name in ("denoising_unet.pth", "reference_unet.pth", "motion_module.pth", "guidance_encoder_dwpose.pth"):
        (tmp_path / "champ" / name).write_bytes(b"x")
    (tmp_path / "vae" / "sd-vae-ft-mse").mkdir(parents=True)
    left = missing_photoreal_files(tree, "P")
    assert len(left) == 1 and left[0].startswith(f"{tmp_path / 'clip_vision' / 'image_encoder'} (or ")
    assert len(missing_photoreal_files(tree, "PDNS")) == 4  # + depth, normal, semantic_map encoders


def test_request_validation():
    with pytest.raises(InputError, match="guidance"):
        DanceRequest(music="a.wav", guidance="XYZ")
    with pytest.raises(InputError, match="multiple of 8"):
        DanceRequest(music="a.wav", size=500)
    with pytest.raises(InputError, match="seconds"):
        DanceRequest(music="a.wav", seconds=0)


@pytest.mark.slow
def test_readme_main_command_with_nothing_downloaded(tmp_path):
    """`python -m stm2pe_core dance --music stm2pe_core/assets/demo_song.ogg --out dance.mp4` (README)."""
    assert BUNDLED.is_file(), f"{BUNDLED} is missing: the README's main command cannot work without it"
    env = {"STM2PE_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env.pop("STM2PE_MODELS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "stm2pe_core", "dance", "--music", str(DEMO), "--out", str(tmp_path / "dance.mp4")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    info = video_info(tmp_path / "dance.mp4")
    assert info.frames > 15 * 10 and info.audio_codec == "aac"
    assert abs(info.audio_duration - info.duration) <= 1 / 15
    assert "denoising_unet.pth" in proc.stdout


def test_folder_given_as_music_or_image_is_named(tmp_path):
    with pytest.raises(InputError, match="is a folder, not a music file. Give --music one file"):
        dance(DanceRequest(music=tmp_path, out=tmp_path / "x.mp4"))
    song = tmp_path / "s.ogg"
    song.write_bytes(b"x")
    with pytest.raises(InputError, match="is a folder, not an image. Give --image one file"):
        dance(DanceRequest(music=song, image=tmp_path, out=tmp_path / "x.mp4"))
    assert not (tmp_path / "x.mp4").exists()
