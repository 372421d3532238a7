"""Dynamic-programming beat tracker (Ellis 2007) in numpy, matching ``librosa.beat.beat_track``.

Why not librosa's own: librosa 0.11 compiles its ``__beat_local_score`` gufunc with numba
``cache=False`` when ``librosa.beat`` is imported, which costs 1.5-3 s of CPU in every process
(the preview CLI's largest single item). This module reproduces librosa's static-tempo tracker
step by step (same local score, DP, last-beat pick and edge trimming) with plain numpy; the DP
is vectorised over blocks of frames: a frame looks back at least ``round(period / 2)`` frames,
so that many consecutive frames only depend on scores that are already final.
"""

from __future__ import annotations

import numpy as np


def local_score(onset_norm: np.ndarray, frames_per_beat: float) -> np.ndarray:
    """The normalised onset envelope smoothed by a Gaussian of the beat period (std period/32).

    librosa's loop never reads the envelope's first sample (its bound is exclusive), so it is
    zeroed here to give the same numbers.
    """
    x = onset_norm.copy()
    if len(x):
        x[0] = 0.0
    window = np.exp(-0.5 * (np.arange(-frames_per_beat, frames_per_beat + 1) * 32.0 / frames_per_beat) ** 2)
    full = np.convolve(x.astype(np.float64), window)  # length N + K - 1, K = 2 * fpb + 1 (odd)
    k2 = len(window) // 2
    return full[k2 : k2 + len(x)].astype(onset_norm.dtype)


def track_dp(score: np.ndarray, frames_per_beat: float, tightness: float) -> tuple[np.ndarray, np.ndarray]:
    """Back-links and cumulative scores: each frame's best predecessor in [i - 2P, i - round(P/2)]
    under a log-squared penalty on the deviation of the interval from the period P."""
    n = len(score)
    fpb = float(frames_per_beat)
    near = int(np.round(fpb / 2))  # closest predecessor: i - near
    far = int(2 * fpb)  # farthest: i - far
    lags = np.arange(near, far + 1)  # nearest first: argmax keeps the first (= nearest) of ties
    penalty = np.float32(tightness) * (np.log(lags) - np.log(np.float32(fpb))) ** 2  # float64, as librosa
    cum = np.zeros(n, dtype=score.dtype)
    back = np.full(n, -1, dtype=np.int64)
    block = max(1, near)
    for i0 in range(0, n, block):
        idx = np.arange(i0, min(n, i0 + block))
        loc = idx[:, None] - lags[None, :]  # (b, L); all < i0, so cum[loc] is final
        valid = loc >= 0
        cand = np.where(valid, cum[np.maximum(loc, 0)] - penalty[None, :], -np.inf)
        j = np.argmax(cand, axis=1)
        best = cand[np.arange(len(idx)), j]
        has = valid.any(axis=1)
        cum[idx] = np.where(has, score[idx] + best, score[idx])
        back[idx] = np.where(has, loc[np.arange(len(idx)), j], -1)
    # frames before the first one that reaches 1 % of the peak local score start no chain
    above = np.flatnonzero(score >= 0.01 * score.max())
    first = int(above[0]) if len(above) else n
    back[:first] = -1
    return back, cum


def last_beat(cum: np.ndarray) -> int:
    """Last local maximum of the cumulative score that reaches half the median local maximum."""
    prev = np.concatenate([cum[:1], cum[:-1]])
    nxt = np.concatenate([cum[1:], cum[-1:]])
    peak = (cum > prev) & (cum >= nxt)
    if not peak.any():
        return len(cum) - 1
    thresh = 0.5 * np.median(cum[peak])
    ok = np.flatnonzero(peak & (cum >= thresh))
    return int(ok[-1]) if len(ok) else len(cum) - 1


def trim_beats(score: np.ndarray, beats: np.ndarray, trim: bool = True) -> np.ndarray:
    """Drop beats in the leading/trailing stretch where the local score stays below half the
    RMS of the (Hann-smoothed) local score at the beats."""
    out = beats.copy()
    if trim:
        w = np.hanning(5)
        smooth = np.convolve(score[beats], w)[len(w) // 2 : len(score) + len(w) // 2]
        threshold = 0.5 * np.sqrt(np.mean(smooth**2))
    else:
        threshold = 0.0
    strong = np.flatnonzero(score > threshold)
    if not len(strong):
        out[:] = False
        return out
    out[: strong[0]] = False
    out[strong[-1] + 1 :] = False
    return out


def beat_track(
    onset_envelope: np.ndarray, frame_rate: float, bpm: float, tightness: float = 100.0, trim: bool = True
) -> np.ndarray:
    """Beat frame indices of a 1-D onset envelope at ``frame_rate`` Hz for a fixed tempo ``bpm``
    (what ``librosa.beat.beat_track(onset_envelope=..., bpm=..., tightness=...)`` returns)."""
    env = np.asarray(onset_envelope)
    if env.ndim != 1:
        raise ValueError(f"onset envelope must be 1-D, got shape {env.shape}")
    if bpm <= 0 or tightness <= 0:
        raise ValueError(f"bpm ({bpm}) and tightness ({tightness}) must be positive")
    if not env.any():
        return np.zeros(0, dtype=np.int64)
    if env.dtype not in (np.float32, np.float64):
        env = env.astype(np.float64)
    fpb = float(np.round(frame_rate * 60.0 / bpm))
    norm = env / (env.std(ddof=1) + np.finfo(env.dtype).tiny)
    score = local_score(norm, fpb)
    back, cum = track_dp(score, fpb, tightness)
    beats = np.zeros(len(env), dtype=bool)
    k = last_beat(cum)
    while k >= 0:
        beats[k] = True
        k = int(back[k])
    return np.flatnonzero(trim_beats(score, beats, trim))


__all__ = ["beat_track", "local_score", "track_dp", "last_beat", "trim_beats"]
