"""Fit the de-averaging calibration of an M2PEnc on the TRAINING split (``python -m training calibrate``).

M2PEnc dances on the beat but partly averages the teacher's per-song move choice, so its joints
move less than the teacher's. The calibration is one scalar per model, ``motion_gain``: at
inference each joint's rotation deviation from its 1-s local mean is scaled by it
(:func:`stm2pe_core.motion_inference.apply_motion_gain`). It is fitted so that the model's mean
joint speed equals the teacher's on training songs only (held-out songs are for judging it), and
the per-joint angle caps are the largest angles the teacher uses in those songs. It is a
calibration, not learning: it cannot add moves the network does not predict; it only undoes
part of the shrinkage. The raw network output stays available (``motion_gain=1``).
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np

from stm2pe_core.errors import InputError
from stm2pe_core.types import MusicFeatures

from . import metrics as M

log = logging.getLogger(__name__)


def joint_angle_limits(songs) -> np.ndarray:
    """(24,) largest rotation angle from rest of each joint over the songs' teacher poses."""
    return np.max([np.linalg.norm(s.poses, axis=-1).max(axis=0) for s in songs], axis=0).astype(np.float64)


def fit_motion_gain(
    model,
    songs,
    target: float = 1.0,
    limits: np.ndarray | None = None,
    lo: float = 1.0,
    hi: float = 3.0,
    iters: int = 8,
) -> dict:
    """Bisect the gain so that mean(model speed / teacher speed) over ``songs`` reaches ``target``.

    The network runs once per song; each gain only re-applies the calibration and the FK.
    """
    from stm2pe_core.motion_inference import apply_motion_gain, check_features, outputs_to_motion, run_windows

    from .evaluate import motion_joints

    fps = model.config.fps
    lim = tuple(limits) if limits is not None else ()
    cached, teacher = [], []
    model.eval()
    for s in songs:
        feats = MusicFeatures(s.features, model.config.feature_kind, fps, (("features", s.features.shape[1]),), s.name)
        cached.append(run_windows(model, check_features(feats, model), ("smpl",)))
        teacher.append(M.mean_joint_speed(motion_joints_of(s), fps))

    def ratio(gain: float) -> float:
        r = []
        for out, ts in zip(cached, teacher):
            rot6d = apply_motion_gain(out["rot6d"], gain, fps, lim)
            m = outputs_to_motion(rot6d, out["root"], out["betas"], fps)
            r.append(M.mean_joint_speed(motion_joints(m), fps) / max(ts, 1e-9))
        return float(np.mean(r))

    trace = {1.0: ratio(1.0)}
    if trace[1.0] >= target:
        return {
            "motion_gain": 1.0,
            "train_speed_ratio_raw": trace[1.0],
            "train_speed_ratio": trace[1.0],
            "trace": trace,
        }
    r_hi = ratio(hi)
    trace[hi] = r_hi
    if r_hi < target:
        gain = hi
    else:
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            trace[mid] = ratio(mid)
            lo, hi = (mid, hi) if trace[mid] < target else (lo, mid)
        gain = hi
    return {
        "motion_gain": round(gain, 4),
        "train_speed_ratio_raw": trace[1.0],
        "train_speed_ratio": trace[hi] if hi in trace else ratio(gain),
        "trace": {round(k, 4): v for k, v in sorted(trace.items())},
    }


def motion_joints_of(song) -> np.ndarray:
    from stm2pe_core.body.skeleton import forward_kinematics

    return np.asarray(forward_kinematics(song.poses.astype(np.float64), song.trans.astype(np.float64)))


def _cmd(args: argparse.Namespace) -> int:
    import torch

    from stm2pe_core.models.m2penc import M2PEnc

    from .stage1_data import load_songs

    model = M2PEnc.from_pretrained(args.checkpoint)
    songs = [s for s in load_songs(args.corpus, model.config.fps) if s.split == "train"]
    if not songs:
        raise InputError(f"{args.corpus}: no songs of the training split to calibrate on")
    if args.limit:
        songs = songs[:: max(1, len(songs) // args.limit)][: args.limit]
    limits = joint_angle_limits(songs)
    model.config.motion_gain = 1.0
    model.config.joint_angle_limits = tuple(float(a) for a in limits)
    fit = fit_motion_gain(model, songs, args.target, limits)
    fit["train_songs"] = len(songs)
    model.config.motion_gain = float(fit["motion_gain"])
    if args.notes:
        model.config.notes = (model.config.notes + " | " if model.config.notes else "") + args.notes
    dtype = torch.float16 if args.fp16 else None
    model.save_pretrained(args.out, dtype=dtype)
    print(json.dumps(fit, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", help="fit an M2PEnc's motion gain (de-averaging calibration) on the corpus' training split"
    )
    p.add_argument("--checkpoint", required=True, help="exported M2PEnc .safetensors")
    p.add_argument("--corpus", required=True, help="corpus folder; only its 'train' split is used")
    p.add_argument("--out", required=True, help="output .safetensors (same weights, calibrated config)")
    p.add_argument("--target", type=float, default=1.0, help="model/teacher joint-speed ratio to reach (1.0)")
    p.add_argument("--limit", type=int, default=32, help="training songs used (evenly spaced; 0 = all)")
    p.add_argument("--fp16", action="store_true", help="store the weights in float16")
    p.add_argument("--notes", default="", help="appended to the config's notes")
    p.set_defaults(func=_cmd)
