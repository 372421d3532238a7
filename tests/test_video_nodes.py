"""Video nodes run without ComfyUI: Save Dance Video, Collect + Stitch Segments."""

from __future__ import annotations

import pytest
import torch
from pack_loader import pack_submodule
from test_stitch import _segments, tiny_vae

from stm2pe_core.video import video_info


@pytest.fixture()
def video_nodes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the output folder outside ComfyUI
    return pack_submodule("nodes.video")


def test_save_dance_video_writes_numbered_mp4_with_audio_and_ui(video_nodes, tmp_path):
    node = video_nodes.STM2PESaveDanceVideo()
    images = torch.rand(9, 31, 45, 3)  # odd size: padded
    audio = {"waveform": torch.zeros(1, 1, 48000), "sample_rate": 48000}
    out1 = node.save(images, 15.0, "STM2PE/dance", audio=audio)
    out2 = node.save(images, 15.0, "STM2PE/dance")
    files = sorted((tmp_path / "STM2PE").glob("*.mp4"))
    assert [f.name for f in files] == ["dance_00001_.mp4", "dance_00002_.mp4"]
    assert out1["ui"] == {
        "images": [{"filename": "dance_00001_.mp4", "subfolder": "STM2PE", "type": "output"}],
        "animated": (True,),
    }
    assert out2["result"] == (None,)  # no comfy_api outside ComfyUI
    info = video_info(files[0])
    assert (info.frames, info.width, info.height, info.audio_codec) == (9, 46, 32, "aac")
    assert abs(info.audio_duration - 9 / 15) <= 1 / 15


def test_collect_then_stitch_segments(video_nodes, tmp_path):
    segs = _segments(40, 16, 4)
    collect = video_nodes.STM2PECollectSegments()
    (acc,) = collect.collect(segs[2])
    (acc,) = collect.collect(segs[0], acc)
    (acc,) = collect.collect(segs[1], acc)
    (acc,) = collect.collect(segs[1], acc)  # the same range again replaces, not duplicates
    assert [(s.start, s.stop) for s in acc] == [(0, 16), (12, 28), (24, 40)]
    node = video_nodes.STM2PEStitchSegments()
    audio = {"waveform": torch.zeros(1, 2, 44100 * 4), "sample_rate": 44100}
    out = node.stitch(acc, tiny_vae(), 15.0, "songs/x", True, True, audio=audio, decode_chunk=6)
    frames, fps, audio_out, video = out["result"]
    assert frames.shape == (40, 12, 12, 3) and fps == 15.0 and video is None
    assert audio_out["waveform"].shape == (1, 2, round(40 / 15 * 44100))
    assert out["ui"]["images"][0]["filename"] == "x_00001_.mp4"
    assert video_info(tmp_path / "songs" / "x_00001_.mp4").frames == 40
    # long-song mode: no IMAGE batch kept, only the last frame, and silence when no audio
    out = node.stitch(acc, tiny_vae(), 15.0, "songs/x", False, False)
    frames, _, audio_out, _ = out["result"]
    assert frames.shape == (1, 12, 12, 3) and out["ui"] == {}
    assert audio_out["waveform"].shape[-1] == round(40 / 15 * 44100)


@pytest.mark.slow
def test_denoise_song_then_stitch(video_nodes, tmp_path, monkeypatch):
    from test_pipeline_photoreal import tiny_stack

    from stm2pe_core.diffusion.reference import reference_from_image
    from stm2pe_core.types import PoseGuidance

    models = tiny_stack("m2penc")
    reference = reference_from_image(models, torch.rand(1, 40, 32, 3), 32, 32)
    channels = models.denoising_unet.conv_in.out_channels
    g = torch.linspace(-0.1, 0.1, 22)[:, None, None, None].expand(22, channels, 8, 8).contiguous()  # resized to 4x4
    seen = []
    monkeypatch.setattr(video_nodes, "node_progress", lambda total=1: lambda d, t: seen.append((d, t)))
    (segs,) = video_nodes.STM2PEDenoiseSong().denoise(
        models, reference, 1, 2.0, 5, 10, 3, 0.0304, 0.1, 1.0, "PDNS", 8, 2, pose_guidance=PoseGuidance(g, 15.0, "test")
    )
    assert [(s.start, s.stop, s.overlap_prev) for s in segs] == [(0, 10, 0), (6, 16, 4), (12, 22, 4)]
    torch.testing.assert_close(segs[1].latents[:, :, :4], segs[0].latents[:, :, 6:], rtol=0, atol=0)  # tie_until 1
    assert seen[-1] == (3, 3)
    out = video_nodes.STM2PEStitchSegments().stitch(segs, models.vae, 15.0, "song", True, True)
    assert out["result"][0].shape == (22, 32, 32, 3)
    assert video_info(tmp_path / "song_00001_.mp4").frames == 22
