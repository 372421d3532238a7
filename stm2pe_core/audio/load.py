"""Load Music: file or in-memory waveform -> :class:`Music` (+ the excerpt for ComfyUI's AUDIO)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..types import DEFAULT_FPS, Music
from ..weights.paths import ASSETS
from .analysis import analyse, analysis_grid
from .decode import Decoded, decode_array, decode_file

# The pack's own synthetic demo song (scripts/make_demo_song.py): lets the examples run with nothing
# copied into ComfyUI/input.
DEMO_SONG: Path = ASSETS / "demo_song.ogg"


@dataclass(frozen=True)
class LoadedMusic:
    music: Music
    audio: np.ndarray | None  # (C, T) float32 excerpt at audio_rate (for ComfyUI's AUDIO), if asked for
    audio_rate: int


def _duration_arg(duration: float | None) -> float | None:
    return None if duration is None or duration == 0 else float(duration)


def _check_fps(fps: float) -> None:
    if not np.isfinite(fps) or not 1.0 <= fps <= 120.0:
        raise InputError(
            f"fps {fps} is out of range. Use a video frame rate between 1 and 120 (STM2PE-Diff uses {DEFAULT_FPS:g})"
        )


def load_music(
    path: str | Path,
    offset: float = 0.0,
    duration: float | None = None,
    fps: float = DEFAULT_FPS,
    start_bpm: float = 0.0,
    keep_audio: bool = False,
) -> LoadedMusic:
    """Decode ``[offset, offset + duration)`` of a music file and analyse its rhythm.

    ``duration`` None or 0 means "to the end". ``start_bpm`` > 0 is a tempo hint for the beat
    tracker (0 = automatic). ``keep_audio`` also returns the excerpt at its native rate and
    channel count (for ComfyUI's AUDIO output); otherwise only the mono analysis waveform is kept,
    which bounds memory for long songs.
    """
    _check_fps(fps)
    grid = analysis_grid(fps)
    dec = decode_file(path, offset, _duration_arg(duration), grid.sample_rate, keep_native=keep_audio)
    music = analyse(
        dec.mono,
        grid,
        dec.sha256,
        source=Path(path).name,
        offset=offset,
        start_bpm=start_bpm,
        source_path=str(Path(path).resolve()),
        native_sample_rate=dec.native_rate,
    )
    return LoadedMusic(music, dec.native, dec.native_rate)


def music_from_waveform(
    waveform: np.ndarray,
    sample_rate: int,
    offset: float = 0.0,
    duration: float | None = None,
    fps: float = DEFAULT_FPS,
    start_bpm: float = 0.0,
    name: str = "AUDIO input",
) -> LoadedMusic:
    """The same for an in-memory waveform: (C, T), (T,) or ComfyUI's (B, C, T) (first item used)."""
    _check_fps(fps)
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 3:
        x = x[0]
    grid = analysis_grid(fps)
    dec: Decoded = decode_array(
        x, int(sample_rate), offset, _duration_arg(duration), grid.sample_rate, keep_native=True, name=name
    )
    assert dec.native is not None
    native_mono = dec.native.mean(axis=0) if dec.native.shape[0] > 1 else dec.native[0]
    music = analyse(
        dec.mono,
        grid,
        dec.sha256,
        source=name,
        offset=offset,
        start_bpm=start_bpm,
        native_audio=np.ascontiguousarray(native_mono, dtype=np.float32),
        native_sample_rate=dec.native_rate,
    )
    return LoadedMusic(music, dec.native, dec.native_rate)


def music_audio(music: Music, sample_rate: int) -> np.ndarray:
    """The excerpt as mono float32 at ``sample_rate`` (Jukebox needs 44.1 kHz, not the analysis rate).

    Re-reads the source file (so a long song is never held at 44.1 kHz unless asked for), or
    resamples the kept AUDIO input; falls back to the analysis waveform.
    """
    if music.native_audio is not None and music.native_sample_rate > 0:
        return _resample(music.native_audio, music.native_sample_rate, sample_rate)
    if music.source_path and Path(music.source_path).exists():
        dec = decode_file(music.source_path, music.offset, music.duration, sample_rate)
        return dec.mono
    return _resample(music.waveform, music.sample_rate, sample_rate)


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)
