"""Synthetic audio for the audio tests (click tracks, tones, chirps) and file writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 44100


def click_track(
    bpm: float, seconds: float = 16.0, sr: int = SR, start: float = 0.5, accent: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Decaying tone bursts on every beat; beat 0 of each bar louder and higher. Returns (y, beat times)."""
    y = np.zeros(int(seconds * sr), np.float32)
    t = np.arange(int(0.03 * sr)) / sr
    times = np.arange(start, seconds - 0.05, 60.0 / bpm)
    for i, b in enumerate(times):
        down = accent and i % 4 == 0
        burst = np.sin(2 * np.pi * (1500.0 if down else 1000.0) * t) * np.exp(-t * 120)
        s = int(round(b * sr))
        y[s : s + len(burst)] += (burst[: len(y) - s] * (0.9 if down else 0.45)).astype(np.float32)
    return y, times


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def chirp(seconds: float, f0: float = 200.0, slope: float = 50.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """Instantaneous frequency f0 + slope * t: the frequency tells the time."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * (f0 * t + 0.5 * slope * t * t))).astype(np.float32)


def write_sf(path: Path, y: np.ndarray, sr: int = SR, **kw) -> Path:
    import soundfile as sf

    sf.write(str(path), y, sr, **kw)
    return path


def write_av(path: Path, y: np.ndarray, sr: int = SR, codec: str = "mp3", bit_rate: int = 128000) -> Path:
    """Encode mono/stereo float audio with PyAV (mp3 in .mp3, aac in .m4a)."""
    import av

    x = np.asarray(y, np.float32)
    if x.ndim == 1:
        x = x[:, None]
    layout = "mono" if x.shape[1] == 1 else "stereo"
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=sr)
        st.layout = layout
        st.bit_rate = bit_rate
        step = 1024
        for i in range(0, len(x), step):
            chunk = x[i : i + step]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk.T), format="fltp", layout=layout
            )  # encoder converts
            frame.sample_rate = sr
            frame.pts = i  # timestamps let the muxer mark the encoder's priming (mp4 edit list)
            frame.time_base = __import__("fractions").Fraction(1, sr)
            for p in st.encode(frame):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    return path


def dominant_freq(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * sr / len(y))
