"""Decoding: formats, stereo -> mono, offsets/duration, AUDIO input, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
from audio_testutil import SR, dominant_freq, tone, write_av, write_sf

from stm2pe_core.audio.decode import decode_array, decode_file
from stm2pe_core.audio.load import load_music, music_from_waveform
from stm2pe_core.errors import InputError, STM2PEError


def two_tones(first: float = 2.0, second: float = 2.0) -> np.ndarray:
    """440 Hz then 880 Hz: where the switch lands tells whether offsets are right."""
    return np.concatenate([tone(440, first), tone(880, second)])


@pytest.mark.parametrize(
    "ext,writer",
    [
        ("wav", lambda p, y: write_sf(p, y, subtype="PCM_16")),
        ("flac", lambda p, y: write_sf(p, y)),
        ("ogg", lambda p, y: write_sf(p, y, format="OGG", subtype="VORBIS")),
        ("mp3", lambda p, y: write_av(p, y, codec="mp3")),
        ("m4a", lambda p, y: write_av(p, y, codec="aac")),
    ],
)
def test_formats_decode_to_the_right_pitch_length_and_rate(tmp_path, ext, writer):
    path = writer(tmp_path / f"song.{ext}", two_tones())
    dec = decode_file(path, sample_rate=16000, keep_native=True)
    assert dec.sample_rate == 16000 and dec.native_rate == SR
    assert dec.mono.dtype == np.float32 and dec.mono.ndim == 1
    length = len(dec.mono) / 16000
    assert length == pytest.approx(4.0, abs=0.03)  # AAC pads the last frame
    assert dominant_freq(dec.mono[1600:16000], 16000) == pytest.approx(440, abs=3)
    assert dominant_freq(dec.mono[-24000:-1600], 16000) == pytest.approx(880, abs=3)
    assert dec.native.shape[0] == 1 and abs(dec.native.shape[1] / SR - length) < 0.01


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "m4a"])
def test_formats_keep_timing(tmp_path, ext):
    """A tone starting at 1.000 s starts there after decoding (mp3/AAC encoder delay removed)."""
    y = np.concatenate([np.zeros(SR, np.float32), tone(440, 2.0)])
    if ext in ("mp3", "m4a"):
        path = write_av(tmp_path / f"t.{ext}", y, codec="mp3" if ext == "mp3" else "aac")
    else:
        path = write_sf(tmp_path / f"t.{ext}", y, **({"format": "OGG", "subtype": "VORBIS"} if ext == "ogg" else {}))
    dec = decode_file(path, sample_rate=SR)
    onset = np.flatnonzero(np.abs(dec.mono) > 0.05)[0] / SR
    assert onset == pytest.approx(1.0, abs=0.003)


@pytest.mark.parametrize("ext", ["wav", "mp3"])
def test_offset_and_duration_cut_the_excerpt(tmp_path, ext):
    y = two_tones()
    path = write_sf(tmp_path / "a.wav", y) if ext == "wav" else write_av(tmp_path / "a.mp3", y)
    dec = decode_file(path, offset=1.5, duration=1.0, sample_rate=16000)
    assert len(dec.mono) == pytest.approx(16000, abs=2)
    # 0.5 s of 440 Hz, then 0.5 s of 880 Hz
    assert dominant_freq(dec.mono[400:7600], 16000) == pytest.approx(440, abs=4)
    assert dominant_freq(dec.mono[8400:15600], 16000) == pytest.approx(880, abs=4)
    # duration past the end: clipped to what is there
    dec = decode_file(path, offset=3.0, duration=30.0, sample_rate=16000)
    assert len(dec.mono) / 16000 == pytest.approx(1.0, abs=0.01)


def test_stereo_is_mixed_to_mono_and_kept_stereo_for_audio(tmp_path):
    left, right = tone(440, 2.0, amp=0.6), np.zeros(int(2.0 * SR), np.float32)
    path = write_sf(tmp_path / "st.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    dec = decode_file(path, sample_rate=SR, keep_native=True)
    assert dec.channels == 2 and dec.native.shape == (2, 2 * SR)
    np.testing.assert_allclose(dec.native[0], left, atol=1e-6)
    np.testing.assert_allclose(dec.mono, 0.5 * left, atol=1e-6)  # same rate: no resampling


def test_audio_input_path_matches_the_file_path(tmp_path):
    import torch

    y = two_tones(2.5, 2.5)
    stereo = np.stack([y, 0.5 * y])
    path = write_sf(tmp_path / "in.wav", stereo.T, subtype="FLOAT")
    from_file = load_music(path, offset=0.5, duration=4.0, keep_audio=True)
    from_audio = music_from_waveform(torch.from_numpy(stereo)[None], SR, offset=0.5, duration=4.0)
    assert from_audio.audio.shape == (2, 4 * SR) == from_file.audio.shape
    np.testing.assert_allclose(from_audio.audio, from_file.audio, atol=1e-6)
    np.testing.assert_allclose(from_audio.music.waveform, from_file.music.waveform, atol=1e-5)
    assert from_audio.music.n_frames == from_file.music.n_frames == 60
    assert from_audio.music.source == "AUDIO input" and from_audio.music.native_audio is not None
    assert from_file.music.native_audio is None and from_file.music.source_path.endswith("in.wav")
    # the content hash identifies the samples, not the container
    assert from_audio.music.content_hash == from_file.music.content_hash


def test_content_hash_changes_with_samples_and_settings(tmp_path):
    a = write_sf(tmp_path / "a.wav", tone(440, 2.0), subtype="FLOAT")
    b = write_sf(tmp_path / "b.wav", tone(441, 2.0), subtype="FLOAT")
    ha = load_music(a).music.content_hash
    assert ha == load_music(a).music.content_hash
    assert ha != load_music(b).music.content_hash
    assert ha != load_music(a, fps=30).music.content_hash
    assert ha != load_music(a, offset=0.5).music.content_hash
    assert ha != load_music(a, start_bpm=100).music.content_hash


def _err(fn, *args, **kw) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kw)
    assert isinstance(info.value, STM2PEError)
    return str(info.value)


def test_missing_file(tmp_path):
    msg = _err(decode_file, tmp_path / "nope.wav")
    assert "nope.wav" in msg and "not found" in msg and "input folder" in msg


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp3"
    p.write_bytes(b"")
    msg = _err(decode_file, p)
    assert "empty.mp3" in msg and "0 bytes" in msg and "export" in msg.lower()


@pytest.mark.parametrize("ext", ["wav", "mp3", "m4a", "flac"])
def test_corrupt_file(tmp_path, ext):
    p = tmp_path / f"broken.{ext}"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    msg = _err(decode_file, p)
    assert f"broken.{ext}" in msg and "could not be decoded" in msg and "ffmpeg" in msg


def test_truncated_file(tmp_path):
    good = write_sf(tmp_path / "good.flac", tone(440, 3.0))
    bad = tmp_path / "cut.flac"
    bad.write_bytes(good.read_bytes()[:60])
    msg = _err(decode_file, bad)
    assert "cut.flac" in msg


def test_zero_length_file(tmp_path):
    p = write_sf(tmp_path / "zero.wav", np.zeros(0, np.float32))
    assert p.stat().st_size > 0  # a header, no samples
    msg = _err(decode_file, p)
    assert "zero.wav" in msg and "no audio samples" in msg


def test_silent_file(tmp_path):
    p = write_sf(tmp_path / "quiet.wav", np.zeros(SR * 3, np.float32))
    msg = _err(decode_file, p)
    assert "quiet.wav" in msg and "silent" in msg and "dBFS" in msg


def test_very_short_file(tmp_path):
    p = write_sf(tmp_path / "blip.wav", tone(440, 0.4))
    msg = _err(decode_file, p)
    assert "blip.wav" in msg and "too short" in msg and "0.40 s" in msg


def test_unsupported_format(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("la la la")
    msg = _err(decode_file, p)
    assert "notes.txt" in msg and "unsupported format '.txt'" in msg and "wav" in msg


def test_offset_past_the_end(tmp_path):
    p = write_sf(tmp_path / "short.wav", tone(440, 3.0))
    msg = _err(decode_file, p, offset=10.0)
    assert "short.wav" in msg and "past the end" in msg and "3.00 s long" in msg and "below 2.00 s" in msg
    msg = _err(decode_file, p, offset=2.5)  # leaves 0.5 s
    assert "too short" in msg and "after the start offset 2.50 s" in msg


def test_offset_past_the_end_pyav(tmp_path):
    p = write_av(tmp_path / "short.m4a", tone(440, 3.0), codec="aac")
    msg = _err(decode_file, p, offset=10.0)
    assert "short.m4a" in msg and "past the end" in msg


def test_bad_ranges(tmp_path):
    p = write_sf(tmp_path / "x.wav", tone(440, 3.0))
    assert "negative" in _err(decode_file, p, offset=-1.0)
    assert "not positive" in _err(decode_file, p, duration=-2.0)
    assert "fps" in _err(load_music, p, fps=0.0)


def test_bad_audio_inputs():
    sr = 16000
    assert "silent" in _err(decode_array, np.zeros((1, sr * 2)), sr)
    assert "too short" in _err(decode_array, tone(440, 0.2, sr)[None], sr)
    assert "no audio samples" in _err(decode_array, np.zeros((2, 0)), sr)
    assert "past the end" in _err(decode_array, tone(440, 2.0, sr)[None], sr, offset=5.0)
    bad = tone(440, 2.0, sr)
    bad[100] = np.nan
    assert "NaN" in _err(decode_array, bad[None], sr)
    assert "(channels, samples)" in _err(decode_array, np.zeros((1, 2, 3, 4)), sr)
