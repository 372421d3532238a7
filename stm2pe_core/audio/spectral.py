"""Chunked STFT front end: librosa's framewise features without a whole-song spectrogram.

A 10-minute song at 15360 Hz has ~36 000 beat-rate STFT frames; librosa would hold the complex
STFT, its power and several copies at once (over 1 GB). Here the power spectrum is computed a
few thousand frames at a time and immediately reduced by small filter banks (mel, chroma,
total power), giving the same columns as ``librosa.stft(center=True, pad_mode="constant")``.
"""

from __future__ import annotations

import numpy as np

CHUNK_FRAMES = 2048


def n_frames(n_samples: int, hop: int) -> int:
    """Frames of a centred STFT (librosa's count)."""
    return 1 + n_samples // hop


def banked_power(
    y: np.ndarray, n_fft: int, hop: int, banks: list[np.ndarray], chunk: int = CHUNK_FRAMES
) -> list[np.ndarray]:
    """``[bank @ |STFT|^2 for bank in banks]``, each (rows, frames) float32, computed chunk by chunk."""
    import librosa

    total = n_frames(len(y), hop)
    pad = n_fft // 2
    outs = [np.empty((b.shape[0], total), np.float32) for b in banks]
    for k0 in range(0, total, chunk):
        k1 = min(total, k0 + chunk)
        s0, s1 = k0 * hop - pad, (k1 - 1) * hop - pad + n_fft  # samples of frames k0..k1-1
        seg = np.zeros(s1 - s0, np.float32)  # zeros outside the signal = librosa's constant padding
        a, b = max(0, s0), min(len(y), s1)
        if b > a:
            seg[a - s0 : b - s0] = y[a:b]
        power = np.abs(librosa.stft(seg, n_fft=n_fft, hop_length=hop, center=False)) ** 2
        for out, bank in zip(outs, banks):
            out[:, k0:k1] = bank @ power
    return outs


def mel_bank(sr: int, n_fft: int, n_mels: int = 128, fmax: float | None = None) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmax=fmax)


def chroma_bank(sr: int, n_fft: int) -> np.ndarray:
    import librosa

    return librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0)


def onset_from_mel(mel_power: np.ndarray, sr: int, hop: int, n_fft: int) -> np.ndarray:
    """librosa.onset.onset_strength(y=...) from a precomputed (n_mels=128) mel power spectrogram."""
    import librosa

    return librosa.onset.onset_strength(S=librosa.power_to_db(mel_power), sr=sr, hop_length=hop, n_fft=n_fft)
