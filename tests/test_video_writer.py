"""The streaming mp4 writer: counts, rates, audio, atomicity, odd sizes."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from stm2pe_core.errors import InputError
from stm2pe_core.video import VideoWriter, as_audio_track, as_fraction, iter_frames, video_info, write_video


def _tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([wave] * channels) if channels > 1 else wave


def _ramp_frames(n: int, h: int, w: int) -> np.ndarray:
    """Frame i is a flat grey of level i/(n-1): decodable back to its index."""
    levels = np.linspace(0.1, 0.9, n, dtype=np.float32)
    return np.broadcast_to(levels[:, None, None, None], (n, h, w, 3)).copy()


def test_frame_count_fps_and_audio_duration(tmp_path):
    out = tmp_path / "v.mp4"
    frames = _ramp_frames(37, 32, 48)
    # music is longer than the video: it must be trimmed to 37/15 s
    write_video(out, iter(frames), 15, audio=(_tone(6.0, 22050), 22050))
    info = video_info(out)
    assert info.frames == 37
    assert info.fps == Fraction(15, 1)
    assert (info.width, info.height) == (48, 32)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.audio_codec == "aac" and info.audio_rate == 22050 and info.audio_channels == 1
    assert abs(info.audio_duration - 37 / 15) <= 1 / 15
    # content survives the codec: grey levels come back in order
    got = np.array([f.mean() / 255.0 for f in iter_frames(out)])
    np.testing.assert_allclose(got, frames[:, 0, 0, 0], atol=0.02)
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_finished_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        out = write_video(tmp_path / "v.mp4", iter(_ramp_frames(3, 16, 16)), 15)
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o644


def test_ntsc_rate_and_comfy_audio_dict_stereo_at_odd_rate(tmp_path):
    out = tmp_path / "v.mp4"
    audio = {"waveform": torch.from_numpy(_tone(2.0, 12345, channels=2))[None], "sample_rate": 12345}
    write_video(out, _ramp_frames(30, 16, 16), Fraction(30000, 1001), audio=audio)
    info = video_info(out)
    assert info.frames == 30
    assert info.fps == Fraction(30000, 1001)
    assert info.audio_channels == 2
    assert info.audio_rate == 48000  # 12345 Hz is not an AAC rate: resampled
    assert abs(info.audio_duration - 30 * 1001 / 30000) <= 1001 / 30000


def test_odd_sizes_pad_and_crop(tmp_path):
    frames = (np.random.default_rng(0).random((5, 33, 47, 3)) * 255).astype(np.uint8)
    write_video(tmp_path / "pad.mp4", frames, 15)
    write_video(tmp_path / "crop.mp4", frames, 15, even="crop")
    pad, crop = video_info(tmp_path / "pad.mp4"), video_info(tmp_path / "crop.mp4")
    assert (pad.height, pad.width, pad.frames) == (34, 48, 5)
    assert (crop.height, crop.width, crop.frames) == (32, 46, 5)
    assert pad.audio_codec is None


def test_exception_midway_leaves_no_file_and_keeps_old_one(tmp_path):
    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 15, audio=(_tone(3, 22050), 22050)) as w:
            for i, f in enumerate(_ramp_frames(20, 16, 16)):
                if i == 10:
                    raise RuntimeError("boom")
                w.write(f)
    assert list(tmp_path.iterdir()) == []

    out.write_bytes(b"previous result")
    calls = []

    def cancel_at_5(done: int, total: int) -> None:
        calls.append(done)
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(out, _ramp_frames(20, 16, 16), 15, progress=cancel_at_5)
    assert calls == [0, 1, 2, 3, 4, 5]
    assert out.read_bytes() == b"previous result"
    assert list(tmp_path.iterdir()) == [out]


def test_bad_inputs_raise_input_errors_without_files(tmp_path):
    with pytest.raises(InputError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], 15)
    with pytest.raises(InputError, match="one size"):
        write_video(tmp_path / "mixed.mp4", [np.zeros((16, 16, 3)), np.zeros((18, 16, 3))], 15)
    with pytest.raises(InputError, match="does not exist"):
        write_video(tmp_path / "nope" / "x.mp4", [np.zeros((16, 16, 3))], 15)
    with pytest.raises(InputError, match="positive"):
        as_fraction(0)
    assert list(tmp_path.iterdir()) == []


def test_batches_torch_frames_and_audio_shapes(tmp_path):
    batch = torch.rand(4, 16, 16, 3)
    write_video(tmp_path / "b.mp4", [batch, batch[:2]], 15)
    assert video_info(tmp_path / "b.mp4").frames == 6
    assert as_audio_track(np.zeros((100, 2)), 8000).samples.shape == (2, 100)  # channels-last input
    assert as_audio_track(np.zeros((6, 50)), 8000).samples.shape == (2, 50)  # 6 channels -> stereo
    with pytest.raises(InputError, match="sample rate"):
        as_audio_track(np.zeros(10))


def test_audio_is_not_copied_when_clean_and_repaired_when_not():
    wave = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)[None]
    assert np.shares_memory(as_audio_track(wave, 8000).samples, wave)  # a long song is not duplicated
    bad = wave.copy()
    bad[0, 3], bad[0, 5], bad[0, 7] = np.nan, np.inf, 3.0
    fixed = as_audio_track(bad, 8000).samples
    assert np.isfinite(fixed).all() and fixed.max() == 1.0 and fixed[0, 3] == 0.0
    assert np.isnan(bad[0, 3])  # the caller's array is untouched
