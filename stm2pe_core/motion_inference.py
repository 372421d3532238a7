"""Music features -> M2PEnc outputs for a whole song: Motion, keypoint heatmaps, PoseGuidance.

Songs are longer than the window M2PEnc was trained on, so the network runs over overlapping
windows from :func:`stm2pe_core.windows.plan_windows` and the per-window outputs are fused
with the cross-fade weights of :func:`stm2pe_core.windows.window_weights` (``fuse_windows``'s
arithmetic, accumulated window by window so no per-window copy is held). How each output fuses:

- rotations: each window's 6D output is first made a proper rotation (Gram-Schmidt), the 6D
  values are cross-faded and the result is re-orthonormalised, so the fused pose at a join is
  a rotation between the two windows' poses and there is no jump;
- root: heading rate, heading-frame velocity and height are cross-faded, then integrated over
  the whole song (path and heading are continuous by construction);
- betas: the windows' shapes are averaged (one body per song);
- heatmaps / guidance: cross-faded as they are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .body.rotations import matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix
from .errors import InputError, MissingModelError
from .models.m2penc import M2PEnc, decode_root
from .progress import Progress
from .types import Motion, MusicFeatures, PoseGuidance
from .weights.paths import ASSETS
from .windows import plan_windows, window_weights

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = ASSETS / "m2penc_default.safetensors"
DEFAULT_NAME = "default (bundled)"

_cache: dict[tuple[str, float, str], M2PEnc] = {}
_cache_lock = threading.Lock()


def resolve_weights(weights: str | Path | None) -> Path:
    """``None`` / ``"default (bundled)"`` -> the bundled file; otherwise the path itself."""
    if weights is None or str(weights) in (DEFAULT_NAME, "default", ""):
        if not DEFAULT_WEIGHTS.is_file():
            raise MissingModelError(
                f"The bundled M2PEnc ({DEFAULT_WEIGHTS}) is missing from this install. Reinstall the pack "
                "or train one: `python -m training train --config training/configs/stage1_default.yaml`."
            )
        return DEFAULT_WEIGHTS
    p = Path(weights)
    if not p.is_file():
        raise MissingModelError(
            f"M2PEnc weights {p} not found. Put the .safetensors file in models/stm2pe or choose '{DEFAULT_NAME}'."
        )
    return p


def load_m2penc(weights: str | Path | None = None, device: str | torch.device = "cpu") -> M2PEnc:
    """Load (and cache by path + mtime) an M2PEnc; ``None`` gives the bundled default."""
    path = resolve_weights(weights)
    key = (str(path.resolve()), path.stat().st_mtime, str(device))
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            model = M2PEnc.from_pretrained(path, device=device)
            _cache.clear()  # one model at a time: they are small, but stale ones pile up
            _cache[key] = model
    return model


def check_features(features: MusicFeatures, model: M2PEnc) -> np.ndarray:
    """The (N, D) float32 array after checking kind, width and frame rate against the model."""
    cfg = model.config
    feats = np.asarray(features.features, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise InputError(f"music features must be a non-empty (N, D) array, got shape {feats.shape}")
    if feats.shape[1] != cfg.in_dim or (cfg.feature_kind and features.kind != cfg.feature_kind):
        raise InputError(
            f"this M2PEnc was trained on {cfg.in_dim}-d '{cfg.feature_kind}' features but got "
            f"{feats.shape[1]}-d '{features.kind}' features. Use the matching feature extractor "
            "(librosa with beat channel for the bundled default) or weights trained on these features."
        )
    if abs(float(features.fps) - float(cfg.fps)) > 1e-3:
        raise InputError(
            f"features are at {features.fps} fps but this M2PEnc runs at {cfg.fps} fps; extract features at {cfg.fps} fps."
        )
    if not np.all(np.isfinite(feats)):
        raise InputError("music features contain NaN or infinite values; re-extract them from the audio file.")
    return feats


@torch.inference_mode()
def run_windows(
    model: M2PEnc,
    feats: np.ndarray,
    heads: Iterable[str],
    progress: Progress | None = None,
    frames: slice | None = None,
    batch: int = 8,
) -> dict[str, np.ndarray]:
    """Run ``heads`` over overlapping windows and fuse them over the song (or ``frames`` of it).

    Returns numpy arrays: ``rot6d`` (N,24,6) orthonormalised, ``root`` (N,4), ``betas`` (10,),
    ``heatmap`` (N,C,64,64), ``guidance`` (N,320,64,64) for the heads asked for.
    """
    heads = tuple(heads)
    cfg = model.config
    total = feats.shape[0]
    start, stop = (
        (0, total) if frames is None else (frames.start or 0, total if frames.stop is None else min(frames.stop, total))
    )
    if not 0 <= start < stop:
        raise InputError(f"frame range {start}:{stop} is outside the song's {total} frames")
    # windows over the whole song (so a segment's results equal the whole song's), then keep
    # only those that touch [start, stop)
    windows = plan_windows(total, cfg.window, cfg.window_overlap)
    weights = window_weights(windows, total, "linear")
    param = next(model.parameters())
    todo = [(w, wt) for w, wt in zip(windows, weights) if w.stop > start and w.start < stop]
    # results are added into the output as each window finishes (nothing per window is kept),
    # weighted by the whole-song plan's cross-fade weights, so a frame's value does not depend
    # on which range was asked for; guidance maps accumulate in float16 (1.3 MB a frame)
    fused: dict[str, np.ndarray] = {}
    betas_sum, betas_len = None, 0
    done = 0
    if progress is not None:
        progress(0, len(todo))
    for i in range(0, len(todo), batch):
        chunk = todo[i : i + batch]
        groups = [chunk] if len({w.length for w, _ in chunk}) == 1 else [[c] for c in chunk]
        for group in groups:
            x = torch.from_numpy(np.stack([feats[w.slice()] for w, _ in group])).to(param.device, param.dtype)
            res = model(x, heads=heads)
            for j, (w, wt) in enumerate(group):
                a, b = max(w.start, start), min(w.stop, stop)
                for k, v in res.items():
                    v = v[j].float()
                    if k == "betas":
                        betas_sum = v * w.length if betas_sum is None else betas_sum + v * w.length
                        betas_len += w.length
                        continue
                    if k == "rot6d":
                        v = matrix_to_rot6d(rot6d_to_matrix(v))  # each window's own rotations first
                    part = (
                        (
                            v[a - w.start : b - w.start]
                            * torch.from_numpy(wt[a - w.start : b - w.start])
                            .to(v.device)
                            .reshape(-1, *[1] * (v.ndim - 1))
                        )
                        .cpu()
                        .numpy()
                    )
                    if k not in fused:
                        fused[k] = np.zeros(
                            (stop - start, *part.shape[1:]), np.float16 if k == "guidance" else np.float32
                        )
                    fused[k][a - start : b - start] += part.astype(fused[k].dtype)
        done += len(chunk)
        if progress is not None:
            progress(done, len(todo))
    if "rot6d" in fused:
        fused["rot6d"] = matrix_to_rot6d(rot6d_to_matrix(fused["rot6d"].astype(np.float64))).astype(np.float32)
    if betas_sum is not None:
        fused["betas"] = (betas_sum / betas_len).cpu().numpy()
    return fused


GAIN_WINDOW_S = 1.0  # the local mean the calibration amplifies deviations from (about two beats)


def apply_motion_gain(
    rot6d: np.ndarray,
    gain: float,
    fps: float,
    limits: tuple[float, ...] | np.ndarray = (),
    window_s: float = GAIN_WINDOW_S,
) -> np.ndarray:
    """De-averaging calibration: scale each joint's rotation away from its local temporal mean.

    M2PEnc partly averages moves it cannot tell apart, which leaves the right rhythm but too
    little motion. For every joint below the root, the local mean rotation M_t (a ``window_s``
    moving average of the matrices, re-orthonormalised by SVD) is kept and the deviation
    D_t = M_t^T R_t is raised to ``gain`` in rotation space (axis-angle scaled), so the slow
    posture is untouched and the motion around it grows. Where ``limits`` (rad per joint) would be
    exceeded, the gain is lowered for that joint and frame (never below the raw output). The root
    (rotation 0) and the path are not changed. ``gain == 1`` returns the input.
    """
    from .body.rotations import axis_angle_to_matrix

    rot6d = np.asarray(rot6d, dtype=np.float32)
    if abs(gain - 1.0) < 1e-6 or len(rot6d) < 3:
        return rot6d
    rot = rot6d_to_matrix(rot6d.astype(np.float64))[:, 1:]  # (N, 23, 3, 3)
    n = len(rot)
    half = max(1, int(round(window_s * fps / 2)))
    # moving average with the window shrinking at the ends (edge frames are not pulled toward 0)
    csum = np.concatenate([np.zeros((1, *rot.shape[1:])), np.cumsum(rot, axis=0)], axis=0)
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    mean = (csum[hi] - csum[lo]) / (hi - lo)[:, None, None, None]
    u, _, vt = np.linalg.svd(mean)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]
    mean = u @ vt  # nearest rotation
    dev = matrix_to_axis_angle(np.swapaxes(mean, -1, -2) @ rot)  # (N, 23, 3)
    lim = np.asarray(limits, dtype=np.float64).reshape(-1)
    out = None
    # try the full gain, then gains closer to 1 where a joint would pass its limit
    for s in (1.0, 0.75, 0.5, 0.25, 0.0):
        g = 1.0 + (gain - 1.0) * s
        cand = mean @ axis_angle_to_matrix(dev * g)
        if out is None:
            out = cand
        if lim.size != 24:
            break
        ang = np.linalg.norm(matrix_to_axis_angle(cand), axis=-1)
        raw = np.linalg.norm(matrix_to_axis_angle(rot), axis=-1)
        ok = ang <= np.maximum(lim[None, 1:], raw)
        if s == 1.0:
            bad = ~ok
        else:
            out[bad & ok] = cand[bad & ok]
            bad &= ~ok
        if not bad.any():
            break
    if lim.size == 24 and bad.any():
        out[bad] = rot[bad]
    res = rot6d.copy()
    res[:, 1:] = matrix_to_rot6d(out).astype(np.float32)
    return res


def outputs_to_motion(
    rot6d: np.ndarray, root: np.ndarray, betas: np.ndarray, fps: float, source: str = "m2penc"
) -> Motion:
    """Fused network outputs -> :class:`Motion` (axis-angle poses, integrated translation)."""
    rot = torch.from_numpy(rot6d_to_matrix(np.asarray(rot6d, dtype=np.float64)))
    root_rot, trans = decode_root(rot[:, 0], torch.from_numpy(np.asarray(root, dtype=np.float64)))
    rot = torch.cat([root_rot[:, None], rot[:, 1:]], dim=1)
    poses = matrix_to_axis_angle(rot).numpy().astype(np.float32)
    return Motion(
        poses=poses,
        trans=trans.numpy().astype(np.float32),
        betas=np.asarray(betas, dtype=np.float32).reshape(-1)[:10],
        fps=float(fps),
        source=source,
    )


def calibrated_rot6d(out: dict[str, np.ndarray], model: M2PEnc, fps: float, motion_gain: float | None) -> np.ndarray:
    """The fused rotations with the model's motion gain (``motion_gain`` overrides it; 1 = raw)."""
    cfg = model.config
    gain = cfg.motion_gain if motion_gain is None else float(motion_gain)
    return apply_motion_gain(out["rot6d"], gain, fps, cfg.joint_angle_limits)


def music_to_motion(
    features: MusicFeatures,
    model: M2PEnc | None = None,
    progress: Progress | None = None,
    motion_gain: float | None = None,
) -> Motion:
    """The SMPL dance M2PEnc makes for ``features`` (whole song, windows fused), with the
    weights' de-averaging calibration (``motion_gain=1.0`` gives the raw network output)."""
    model = model if model is not None else load_m2penc()
    if "smpl" not in model.config.heads:
        raise InputError(
            "these M2PEnc weights have no SMPL head; choose weights trained with one (e.g. the bundled default)."
        )
    feats = check_features(features, model)
    out = run_windows(model, feats, ("smpl",), progress)
    return outputs_to_motion(
        calibrated_rot6d(out, model, features.fps, motion_gain),
        out["root"],
        out["betas"],
        features.fps,
        source=f"m2penc:{features.source_hash[:12]}",
    )


def music_to_heatmaps(
    features: MusicFeatures, model: M2PEnc | None = None, progress: Progress | None = None, frames: slice | None = None
) -> np.ndarray:
    """(N, C_heat, 64, 64) keypoint heatmaps (values roughly in [0, 1])."""
    model = model if model is not None else load_m2penc()
    if "heatmap" not in model.config.heads:
        raise InputError("these M2PEnc weights have no heatmap head.")
    feats = check_features(features, model)
    return run_windows(model, feats, ("heatmap",), progress, frames)["heatmap"]


def has_trained_guidance(model: M2PEnc) -> bool:
    return "guidance" in model.config.heads and "guidance" in model.config.trained_heads


def music_to_guidance(
    features: MusicFeatures,
    model: M2PEnc | None = None,
    progress: Progress | None = None,
    frames: slice | None = None,
    allow_untrained: bool = False,
) -> PoseGuidance:
    """PoseGuidance (N, 320, 64, 64) for the song or for ``frames`` of it (one segment).

    Raises when the weights' guidance head was never trained (the bundled default: it needs
    CHAMP's guidance encoders for targets) unless ``allow_untrained``.
    """
    model = model if model is not None else load_m2penc()
    if not has_trained_guidance(model) and not allow_untrained:
        raise MissingModelError(
            "these M2PEnc weights have no trained pose-guidance head (the bundled default ships without "
            "one: training it needs CHAMP's guidance encoders). Use the SMPL path instead (MOTION -> Render "
            "SMPL Guidance -> Guidance Encoder), or train with guidance targets: see README 'Training'."
        )
    feats = check_features(features, model)
    g = run_windows(model, feats, ("guidance",), progress, frames)["guidance"]
    return PoseGuidance(features=torch.from_numpy(g), fps=features.fps, origin="m2penc")


def heatmap_peaks(heatmaps: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """(N, K, h, w) heatmaps -> (N, K, 3) keypoints: x, y (pixels of ``size`` = (H, W)), peak value."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    idx = flat.argmax(-1)
    conf = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    ys, xs = np.divmod(idx, w)
    H, W = size or (h, w)
    # inverse of the heatmap convention in stm2pe_core.render.openpose.heatmaps (pixel centres)
    x = (xs.astype(np.float32) + 0.5) * (W / w) - 0.5
    y = (ys.astype(np.float32) + 0.5) * (H / h) - 0.5
    return np.stack([x, y, np.clip(conf, 0.0, 1.0)], axis=-1)


def heatmap_preview(heatmaps: np.ndarray, size: int = 256) -> np.ndarray:
    """(N, H=size, W=size, 3) float images in [0, 1]: OpenPose-style skeletons drawn from the
    heatmap peaks (18-channel OpenPose heatmaps), else the channels' maximum as grey."""
    import cv2

    from .render.openpose import draw_skeleton

    hm = np.asarray(heatmaps, dtype=np.float32)
    n, k = hm.shape[:2]
    out = np.zeros((n, size, size, 3), np.float32)
    if k == 18:
        kp = heatmap_peaks(hm, (size, size))
        for i in range(n):
            out[i] = draw_skeleton(kp[i], size, size).astype(np.float32) / 255.0
    else:
        for i in range(n):
            g = cv2.resize(np.clip(hm[i].max(0), 0, 1), (size, size), interpolation=cv2.INTER_LINEAR)
            out[i] = g[..., None]
    return out


@dataclass
class M2PEncResult:
    motion: Motion
    preview: np.ndarray  # (N, size, size, 3) float in [0, 1]
    guidance: PoseGuidance | None


def m2penc_outputs(
    features: MusicFeatures,
    weights: str | Path | None = None,
    guidance: bool | str = False,
    preview_size: int = 256,
    progress: Progress | None = None,
) -> M2PEncResult:
    """Everything the M2PEnc Pose Guidance node shows, from one pass of the network per window.

    ``guidance=True`` also returns the (N, 320, 64, 64) pose guidance (float16, ~1.3 MB per
    frame) and raises :class:`MissingModelError` when the weights have no trained guidance head;
    ``"auto"`` returns it exactly when the weights have a trained guidance head (else None).
    """
    model = load_m2penc(weights)
    if guidance == "auto":
        guidance = has_trained_guidance(model)
    elif guidance and not has_trained_guidance(model):
        music_to_guidance(features, model)  # raises the explanatory error
    feats = check_features(features, model)
    heads = [h for h in ("smpl", "heatmap") if h in model.config.heads]
    if guidance:
        heads.append("guidance")
    out = run_windows(model, feats, heads, progress)
    if "rot6d" not in out:
        raise InputError(
            "these M2PEnc weights have no SMPL head; choose weights trained with one (e.g. the bundled default)."
        )
    motion = outputs_to_motion(
        calibrated_rot6d(out, model, features.fps, None),
        out["root"],
        out["betas"],
        features.fps,
        source=f"m2penc:{features.source_hash[:12]}",
    )
    preview = (
        heatmap_preview(out["heatmap"], preview_size)
        if "heatmap" in out
        else np.zeros((motion.n_frames, preview_size, preview_size, 3), np.float32)
    )
    pg = (
        PoseGuidance(features=torch.from_numpy(out["guidance"]).half(), fps=features.fps, origin="m2penc")
        if guidance
        else None
    )
    return M2PEncResult(motion=motion, preview=preview, guidance=pg)


__all__ = [
    "M2PEncResult",
    "apply_motion_gain",
    "heatmap_preview",
    "m2penc_outputs",
    "DEFAULT_NAME",
    "DEFAULT_WEIGHTS",
    "check_features",
    "has_trained_guidance",
    "heatmap_peaks",
    "load_m2penc",
    "music_to_guidance",
    "music_to_heatmaps",
    "music_to_motion",
    "outputs_to_motion",
    "resolve_weights",
    "run_windows",
]
