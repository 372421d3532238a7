"""Dance metrics: Beat Alignment Score (FACT and Bailando variants), EDGE's PFC, diversity of
kinetic features, mean joint speed.

Frame rates. The reference implementations run at 60 fps with constants in frames (sigma =
3 frames, FACT's extrema ``order`` = 10, Bailando's smoothing ``sigma`` = 5). Follow-ups at
30 fps kept the frame constants, which silently doubles sigma in seconds. Here every constant
is held in **seconds** as the 60-fps originals define it (sigma 0.05 s, order 1/6 s, smoothing
1/12 s) and converted to frames at the motion's fps — at 15 fps: order 2.5 -> 3 frames
(rounded up, at least 1), smoothing sigma 1.25 frames. ``sigma_scale="frames"`` instead keeps
the 60-fps frame numbers as they are (sigma 3 frames = 0.2 s at 15 fps, far more lenient,
and FACT's 10-frame extrema window = 0.67 s misses beats faster than 90 BPM); tables must say
which one they use. Music beats are compared in seconds (not rounded to
frames); a motion beat at envelope index i is at time i / fps, as in both references.

Averaging direction (the main difference between the two references):
- FACT: mean over **motion** beats of exp(-d^2 / 2 sigma^2), d = distance to nearest music beat;
- Bailando: mean over **music** beats of exp(-d^2 / 2 sigma^2), d = distance to nearest motion beat.

PFC follows EDGE (``eval/eval_pfc.py``) with y up: root acceleration (vertical part clipped
at 0, normalised by its max), times the slower of each foot's two joints' horizontal
displacement per frame, left x right, mean over time, x 10^4. The value depends on fps (per-
frame displacements), so :func:`pfc` resamples to EDGE's 30 fps first by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import argrelextrema

Variant = Literal["fact", "bailando"]
SIGMA_SECONDS = 3.0 / 60.0  # 3 frames at 60 fps
FACT_ORDER_SECONDS = 10.0 / 60.0
BAILANDO_SMOOTH_SECONDS = 5.0 / 60.0
FOOT_JOINTS = (7, 10, 8, 11)  # left ankle, left foot, right ankle, right foot (SMPL)


def kinetic_envelope(
    joints: np.ndarray, variant: Variant = "fact", fps: float = 15.0, sigma_scale: str = "seconds"
) -> np.ndarray:
    """Per-frame joint displacement (N-1,): FACT sums over joints; Bailando means then smooths."""
    j = np.asarray(joints, dtype=np.float64)
    step = np.linalg.norm(j[1:] - j[:-1], axis=-1)  # (N-1, J)
    if variant == "fact":
        return step.sum(-1)
    if variant == "bailando":
        smooth = BAILANDO_SMOOTH_SECONDS * fps if sigma_scale == "seconds" else 5.0
        return gaussian_filter1d(step.mean(-1), smooth)
    raise ValueError(f"unknown BAS variant {variant!r}; use 'fact' or 'bailando'")


def motion_beats(joints: np.ndarray, fps: float, variant: Variant = "fact", sigma_scale: str = "seconds") -> np.ndarray:
    """Kinematic beats (seconds): local minima of the kinetic envelope."""
    env = kinetic_envelope(joints, variant, fps, sigma_scale)
    if variant == "fact":
        order = max(1, int(np.ceil(FACT_ORDER_SECONDS * fps - 1e-9))) if sigma_scale == "seconds" else 10
    else:
        order = 1
    idx = argrelextrema(env, np.less, order=order)[0]
    return idx.astype(np.float64) / fps


def beat_alignment(
    motion_beat_times: np.ndarray, music_beat_times: np.ndarray, variant: Variant = "fact", sigma: float = SIGMA_SECONDS
) -> float:
    """BAS from beat times (seconds); see the module docstring for the averaging direction."""
    mo = np.asarray(motion_beat_times, dtype=np.float64).reshape(-1)
    mu = np.asarray(music_beat_times, dtype=np.float64).reshape(-1)
    if variant == "fact":
        if len(mo) == 0 or len(mu) == 0:
            return 0.0
        d = np.abs(mo[:, None] - mu[None, :]).min(1)
    elif variant == "bailando":
        if len(mu) == 0 or len(mo) == 0:
            return 0.0
        d = np.abs(mu[:, None] - mo[None, :]).min(1)
    else:
        raise ValueError(f"unknown BAS variant {variant!r}")
    return float(np.mean(np.exp(-(d**2) / (2.0 * sigma**2))))


def beat_align_score(
    joints: np.ndarray,
    music_beat_times: np.ndarray,
    fps: float,
    variant: Variant = "fact",
    sigma_scale: str = "seconds",
) -> float:
    """BAS of a motion's joints (N, J, 3) against music beats (seconds)."""
    sigma = SIGMA_SECONDS if sigma_scale == "seconds" else 3.0 / fps
    beats = np.asarray(music_beat_times, dtype=np.float64)
    duration = (len(joints) - 1) / fps
    beats = beats[(beats >= 0) & (beats <= duration)]
    return beat_alignment(motion_beats(joints, fps, variant, sigma_scale), beats, variant, sigma)


def mean_joint_speed(joints: np.ndarray, fps: float) -> float:
    """Mean over frames and joints of |v| in m/s."""
    j = np.asarray(joints, dtype=np.float64)
    if len(j) < 2:
        return 0.0
    return float(np.linalg.norm(j[1:] - j[:-1], axis=-1).mean() * fps)


def resample(joints: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """Linear resampling of (N, J, 3) positions to ``target_fps`` over the same duration."""
    j = np.asarray(joints, dtype=np.float64)
    if abs(fps - target_fps) < 1e-9 or len(j) < 2:
        return j
    t_src = np.arange(len(j)) / fps
    t_dst = np.arange(0.0, t_src[-1] + 1e-9, 1.0 / target_fps)
    flat = j.reshape(len(j), -1)
    out = np.stack([np.interp(t_dst, t_src, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    return out.reshape(len(t_dst), *j.shape[1:])


def pfc(joints: np.ndarray, fps: float, up: int = 1, target_fps: float | None = 30.0) -> float:
    """EDGE's Physical Foot Contact score of one clip (x 10^4; lower is better).

    ``joints`` in metres (SMPL 24), ``up`` the vertical axis (1 = y, ours; EDGE's data is z-up).
    """
    j = resample(joints, fps, target_fps) if target_fps else np.asarray(joints, dtype=np.float64)
    rate = target_fps or fps
    if len(j) < 4:
        return 0.0
    dt = 1.0 / rate
    root = j[:, 0]
    acc = ((root[2:] - root[1:-1]) - (root[1:-1] - root[:-2])) / dt**2
    acc[:, up] = np.maximum(acc[:, up], 0.0)
    a = np.linalg.norm(acc, axis=-1)
    a = a / max(a.max(), 1e-12)
    horiz = [c for c in range(3) if c != up]
    feet = j[:, list(FOOT_JOINTS)][:, :, horiz]
    v = np.linalg.norm(feet[1:] - feet[:-1], axis=-1)  # (N-1, 4), not divided by dt (as EDGE)
    v_l = np.minimum(v[:, 0], v[:, 1])
    v_r = np.minimum(v[:, 2], v[:, 3])
    n = len(a)
    return float(np.mean(a * v_l[1 : n + 1] * v_r[1 : n + 1]) * 1e4)


def kinetic_features(joints: np.ndarray, fps: float) -> np.ndarray:
    """72-d per-dance descriptor in the spirit of AIST++'s kinetic features: for each of the
    24 joints, mean horizontal kinetic energy, mean vertical kinetic energy (unit mass,
    velocities in m/s) and mean acceleration magnitude ("energy expenditure")."""
    j = np.asarray(joints, dtype=np.float64)[:, :24]
    v = (j[1:] - j[:-1]) * fps
    a = (v[1:] - v[:-1]) * fps
    ke_h = 0.5 * (v[..., 0] ** 2 + v[..., 2] ** 2).mean(0)
    ke_v = 0.5 * (v[..., 1] ** 2).mean(0)
    ee = np.linalg.norm(a, axis=-1).mean(0) if len(a) else np.zeros(j.shape[1])
    return np.concatenate([ke_h, ke_v, ee])


def diversity(dances: Sequence[np.ndarray], fps: float, reference: Sequence[np.ndarray] | None = None) -> float:
    """Mean pairwise Euclidean distance of z-scored kinetic features between dances (Dist_k-like).

    With ``reference`` (e.g. the teacher's dances), features are z-scored with the mean/std of
    both sets pooled, so a model's and a teacher's diversity are measured on the same scale
    (and a feature that only one set varies cannot blow the scale up).
    """
    feats = np.stack([kinetic_features(d, fps) for d in dances])
    ref = (
        np.concatenate([feats, np.stack([kinetic_features(d, fps) for d in reference])])
        if reference is not None
        else feats
    )
    mu, sd = ref.mean(0), ref.std(0)
    sd = np.maximum(sd, 1e-3 * max(float(sd.mean()), 1e-12))
    z = (feats - mu) / sd
    if len(z) < 2:
        return 0.0
    d = np.linalg.norm(z[:, None] - z[None], axis=-1)
    iu = np.triu_indices(len(z), 1)
    return float(d[iu].mean())


__all__ = [
    "beat_align_score",
    "beat_alignment",
    "diversity",
    "kinetic_envelope",
    "kinetic_features",
    "mean_joint_speed",
    "motion_beats",
    "pfc",
    "resample",
]
