"""MOTION values: conversions, resampling, trimming, and loaders for the dance-motion formats.

A :class:`~stm2pe_core.types.Motion` is SMPL motion in a y-up world in metres: ``poses``
(N,24,3) axis-angle with joint 0 = global orientation, ``trans`` (N,3) SMPL ``transl``,
``betas`` (10,), ``fps``.

Formats read by :func:`load_motion` (pickles through :mod:`.safe_pickle`, never plain pickle):

- **AIST++** ``motions/<seq>.pkl``: ``smpl_poses`` (N,72), ``smpl_trans`` (N,3) in the dataset's
  scaled units, ``smpl_scaling`` (1,); 60 fps, y-up. ``transl = smpl_trans / smpl_scaling``.
- **EDGE** output ``.pkl``: ``smpl_poses`` (N,72), ``smpl_trans`` (N,3), ``full_pose`` (N,24,3);
  30 fps, z-up (EDGE turned AIST++ by +90 deg about X, ignoring SMPL's J0 offset); the loader
  applies the exact inverse (-90 deg about X to the root orientation and the translation), which
  gives back AIST++'s y-up ``transl``.
- **AMASS** ``.npz``: ``poses`` (N,156 SMPL-H / 165 SMPL-X / 72 SMPL), ``trans``, ``betas``,
  ``mocap_framerate``; z-up. Body joints 0-21 are shared with SMPL; SMPL's hand joints 22/23
  are set to zero. The z-up -> y-up turn is applied about the pelvis joint J0 of the rest
  skeleton (SMPL semantics: pelvis = J0 + transl), so the body does not jump.
- **STM2PE** ``.npz`` written by :func:`save_motion` (``poses``, ``trans``, ``betas``, ``fps``).
"""

from __future__ import annotations

import logging
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..errors import InputError, bad_file
from ..types import Motion, frame_count
from .rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quat,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    quat_to_axis_angle,
    rot6d_to_matrix,
    slerp,
)
from .safe_pickle import safe_load
from .skeleton import rest_joints

log = logging.getLogger("STM2PE")

AIST_FPS = 60.0
EDGE_FPS = 30.0
MOTION_FORMATS = ("auto", "aist", "edge", "amass", "stm2pe")

# world turn that takes a z-up frame to y-up: -90 deg about +X, (x, y, z) -> (x, z, -y)
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


# ----------------------------------------------------------------------------- conversions


def to_matrices(motion: Motion) -> np.ndarray:
    """(N,24,3,3) local rotation matrices."""
    return axis_angle_to_matrix(motion.poses)


def to_rot6d(motion: Motion) -> np.ndarray:
    """(N,24,6) 6D rotations (first two rows of each matrix, EDGE/pytorch3d layout)."""
    return matrix_to_rot6d(axis_angle_to_matrix(motion.poses))


def from_matrices(rotations: Any, trans: Any, fps: float, betas: Any = None, source: str = "") -> Motion:
    """Build a Motion from (N,24,3,3) local rotations."""
    poses = matrix_to_axis_angle(np.asarray(rotations, dtype=np.float64))
    return make_motion(poses, trans, fps, betas, source)


def from_rot6d(rot6d: Any, trans: Any, fps: float, betas: Any = None, source: str = "") -> Motion:
    """Build a Motion from (N,24,6) or (N,144) 6D rotations (Gram-Schmidt makes them valid)."""
    r = np.asarray(rot6d, dtype=np.float64).reshape(-1, 24, 6)
    return from_matrices(rot6d_to_matrix(r), trans, fps, betas, source)


def make_motion(poses: Any, trans: Any, fps: float, betas: Any = None, source: str = "") -> Motion:
    """Validate shapes/values and build a float32 Motion."""
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 72:
        p = p.reshape(-1, 24, 3)
    t = np.asarray(trans, dtype=np.float64).reshape(-1, 3) if trans is not None else np.zeros((p.shape[0], 3))
    if p.ndim != 3 or p.shape[1:] != (24, 3):
        raise InputError(f"{source or 'motion'}: poses must be (N, 72) or (N, 24, 3) axis-angle, got {p.shape}")
    if t.shape[0] != p.shape[0]:
        raise InputError(f"{source or 'motion'}: {p.shape[0]} pose frames but {t.shape[0]} translation frames")
    if p.shape[0] == 0:
        raise InputError(f"{source or 'motion'}: the motion has no frames")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise InputError(f"{source or 'motion'}: poses/translation contain NaN or infinite values")
    b = np.zeros(10) if betas is None else np.asarray(betas, dtype=np.float64).reshape(-1)[:10]
    b = np.pad(b, (0, 10 - b.size))
    if not fps or fps <= 0 or not math.isfinite(fps):
        raise InputError(f"{source or 'motion'}: frame rate must be positive, got {fps}")
    return Motion(
        poses=p.astype(np.float32),
        trans=t.astype(np.float32),
        betas=b.astype(np.float32),
        fps=float(fps),
        source=source,
    )


def resample(motion: Motion, fps: float) -> Motion:
    """Re-time a motion to ``fps``: rotations by slerp, translation linearly.

    Output frame k shows time k/fps; the duration N/fps_in is kept, so 300 frames at 60 fps
    become 150 at 30 fps (exact decimation when the ratio is an integer).
    """
    if fps <= 0:
        raise InputError(f"target frame rate must be positive, got {fps}")
    if abs(fps - motion.fps) < 1e-9:
        return motion
    n_in = motion.n_frames
    n_out = max(1, frame_count(n_in / motion.fps, fps))
    pos = np.arange(n_out, dtype=np.float64) * (motion.fps / fps)
    i0 = np.clip(np.floor(pos + 1e-9).astype(np.int64), 0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = np.clip(pos - i0, 0.0, 1.0)
    q = axis_angle_to_quat(motion.poses.astype(np.float64))  # (N,24,4)
    qi = slerp(q[i0], q[i1], np.broadcast_to(w[:, None], (n_out, 24)))
    poses = quat_to_axis_angle(qi)
    trans = motion.trans[i0] * (1.0 - w[:, None]) + motion.trans[i1] * w[:, None]
    return make_motion(poses, trans, fps, motion.betas, motion.source)


def trim(motion: Motion, start: float = 0.0, duration: float | None = None) -> Motion:
    """Frames whose time lies in ``[start, start + duration)`` seconds (all to the end if None)."""
    a = int(round(max(0.0, start) * motion.fps))
    b = (
        motion.n_frames
        if duration is None or duration <= 0
        else min(motion.n_frames, a + frame_count(duration, motion.fps))
    )
    if a >= motion.n_frames or b <= a:
        raise InputError(
            f"{motion.source or 'motion'}: trimming at {start:.2f}s leaves no frames (the motion lasts {motion.n_frames / motion.fps:.2f}s)"
        )
    return slice_frames(motion, a, b)


def slice_frames(motion: Motion, start: int, stop: int) -> Motion:
    return Motion(motion.poses[start:stop], motion.trans[start:stop], motion.betas, motion.fps, motion.source)


def turn_world(
    motion_poses: np.ndarray, trans: np.ndarray, rotation: np.ndarray, pivot: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a whole motion by world rotation ``rotation`` (3,3).

    With ``pivot`` = the rest pelvis joint J0 the turn is exact for SMPL (the body turns about the
    world origin); with None the translation is just rotated (EDGE's convention).
    """
    poses = np.array(motion_poses, dtype=np.float64, copy=True)
    root = axis_angle_to_matrix(poses[:, 0])
    poses[:, 0] = matrix_to_axis_angle(rotation[None] @ root)
    t = np.asarray(trans, dtype=np.float64)
    if pivot is None:
        return poses, t @ rotation.T
    return poses, (t + pivot) @ rotation.T - pivot


# ----------------------------------------------------------------------------- loaders


def _array(d: dict, key: str, path: Path) -> np.ndarray:
    if key not in d:
        raise bad_file(
            path, f"missing '{key}' (keys found: {sorted(map(str, d))})", "Use an AIST++, EDGE or AMASS motion file."
        )
    try:
        return np.asarray(d[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise bad_file(path, f"'{key}' is not a numeric array", "Use an AIST++, EDGE or AMASS motion file.") from exc


def _poses_72(p: np.ndarray, path: Path, key: str = "smpl_poses") -> np.ndarray:
    p = p.reshape(p.shape[0], -1) if p.ndim >= 2 else p
    if p.ndim != 2 or p.shape[1] not in (72, 156, 165, 66, 63 + 3):
        raise bad_file(
            path,
            f"'{key}' has shape {p.shape}; expected (N, 72) SMPL or (N, 156/165) SMPL-H/X axis-angle",
            "Check the file format.",
        )
    if p.shape[1] == 72:
        return p
    out = np.zeros((p.shape[0], 72))
    out[:, :66] = p[:, :66]  # joints 0-21 are SMPL's; SMPL hands 22/23 stay at rest
    return out


def _detect(d: dict, suffix: str) -> str:
    keys = set(map(str, d))
    if suffix == ".npz":
        if {"mocap_framerate"} & keys or {"mocap_frame_rate"} & keys:
            return "amass"
        if {"poses", "trans", "fps"} <= keys:
            return "stm2pe"
        if {"poses", "trans"} <= keys:
            return "amass"
    if "full_pose" in keys and "smpl_poses" in keys:
        return "edge"
    if "smpl_poses" in keys:
        return "aist"
    return "unknown"


def load_motion(
    path: str | Path,
    fps: float | None = None,
    *,
    fmt: str = "auto",
    start: float = 0.0,
    duration: float | None = None,
) -> Motion:
    """Read a motion file (format detected from its keys unless ``fmt`` says), optionally
    trimmed to ``[start, start+duration)`` seconds and resampled to ``fps``."""
    p = Path(path)
    if fmt not in MOTION_FORMATS:
        raise InputError(f"unknown motion format {fmt!r}; choose one of {MOTION_FORMATS}")
    if not p.is_file():
        raise bad_file(p, "file not found", "Check the path (ComfyUI: put it in the input folder).")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        try:
            d: dict[str, Any] = {}
            skipped = []
            with np.load(p, allow_pickle=False) as z:
                for k in z.files:
                    try:
                        d[k] = z[k]
                    except ValueError:  # a pickled (object) entry: never unpickled, just left out
                        skipped.append(k)
            if skipped:
                log.info("STM2PE: %s: ignored pickled entries %s", p.name, skipped)
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:  # a damaged .npz is a damaged zip
            raise bad_file(p, f"not a readable .npz ({exc})", "Re-export the file.") from exc
    elif suffix in (".pkl", ".pickle"):
        d = safe_load(p, what="motion file")
        if not isinstance(d, dict):
            raise bad_file(
                p,
                f"the pickle holds a {type(d).__name__}, not a dict of arrays",
                "Use an AIST++ or EDGE motion pickle.",
            )
    else:
        raise bad_file(p, f"unsupported extension {suffix!r}", "Use .pkl (AIST++/EDGE) or .npz (AMASS/STM2PE).")

    kind = _detect(d, suffix) if fmt == "auto" else fmt
    src = p.name
    if kind == "aist":
        poses = _poses_72(_array(d, "smpl_poses", p), p)
        trans = _array(d, "smpl_trans", p).reshape(-1, 3)
        scaling = float(np.asarray(d.get("smpl_scaling", 1.0), dtype=np.float64).reshape(-1)[0])
        if not scaling > 0:
            raise bad_file(p, f"smpl_scaling is {scaling}", "Use an unmodified AIST++ motion file.")
        if "smpl_scaling" not in d:
            log.warning("STM2PE: %s has no smpl_scaling; assuming metres (scale 1)", src)
        m = make_motion(poses, trans / scaling, AIST_FPS, None, src)
    elif kind == "edge":
        poses = _poses_72(_array(d, "smpl_poses", p), p).reshape(-1, 24, 3)
        trans = _array(d, "smpl_trans", p).reshape(-1, 3)
        poses, trans = turn_world(poses, trans, Z_UP_TO_Y_UP, pivot=None)
        m = make_motion(poses, trans, EDGE_FPS, None, src)
    elif kind == "amass":
        poses = _poses_72(_array(d, "poses", p), p, "poses").reshape(-1, 24, 3)
        trans = _array(d, "trans", p).reshape(-1, 3)
        rate = d.get("mocap_framerate", d.get("mocap_frame_rate"))
        if rate is None:
            raise bad_file(
                p, "no 'mocap_framerate' in the AMASS file", "Use an AMASS .npz (it stores the capture rate)."
            )
        betas = np.asarray(d["betas"], dtype=np.float64).reshape(-1)[:10] if "betas" in d else None
        poses, trans = turn_world(poses, trans, Z_UP_TO_Y_UP, pivot=rest_joints()[0])
        m = make_motion(poses, trans, float(np.asarray(rate).reshape(-1)[0]), betas, src)
    elif kind == "stm2pe":
        m = make_motion(
            _array(d, "poses", p),
            _array(d, "trans", p),
            float(np.asarray(d["fps"]).reshape(-1)[0]),
            d.get("betas"),
            src,
        )
    else:
        raise bad_file(
            p, f"not a known motion format (keys: {sorted(map(str, d))})", "Use an AIST++ / EDGE .pkl or an AMASS .npz."
        )

    if start > 0 or (duration is not None and duration > 0):
        m = trim(m, start, duration)
    if fps:
        m = resample(m, fps)
    return m


def save_motion(motion: Motion, path: str | Path) -> Path:
    """Write the STM2PE ``.npz`` form (no pickles inside); written to a temp name then renamed."""
    p = Path(path)
    with atomic_write(p) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            poses=motion.poses.astype(np.float32),
            trans=motion.trans.astype(np.float32),
            betas=motion.betas.astype(np.float32),
            fps=np.float64(motion.fps),
            up=np.array("y"),
        )
    return p
