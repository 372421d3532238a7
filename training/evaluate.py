"""Scoring M2PEnc dances: held-out corpus songs (``eval``) or a folder of music files (``score``).

For every song: the model's dance (whole song, windows fused) and the teacher's dance are
turned into joint positions (built-in skeleton FK), then

- BAS in the FACT and Bailando variants (constants in seconds, see :mod:`training.metrics`)
  against the song's own beats, for the model and for the teacher;
- a mismatched control: the model's dance for song i scored against the beats of song i+1
  (it shows how much of the BAS comes from the music rather than from dancing at all);
- mean joint speed (m/s) and its ratio to the teacher's, PFC, and the diversity of the dances
  (mean pairwise distance of z-scored kinetic features, normalised on the teacher's dances).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from stm2pe_core.body.skeleton import forward_kinematics
from stm2pe_core.errors import InputError
from stm2pe_core.types import Motion, MusicFeatures

from . import metrics as M

log = logging.getLogger(__name__)


def motion_joints(motion: Motion) -> np.ndarray:
    return np.asarray(forward_kinematics(motion.poses.astype(np.float64), motion.trans.astype(np.float64)))


def score_dances(
    model_joints: list[np.ndarray],
    beats: list[np.ndarray],
    fps: float,
    teacher_joints: list[np.ndarray] | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """Per-song rows and a summary (means) of all metrics; see the module docstring."""
    n = len(model_joints)
    names = names or [str(i) for i in range(n)]
    rows = []
    for i in range(n):
        mj, b = model_joints[i], beats[i]
        row: dict[str, Any] = {"song": names[i], "frames": len(mj)}
        row["bas_fact"] = M.beat_align_score(mj, b, fps, "fact")
        row["bas_bailando"] = M.beat_align_score(mj, b, fps, "bailando")
        if n > 1:
            other = beats[(i + 1) % n]
            row["bas_fact_mismatch"] = M.beat_align_score(mj, other, fps, "fact")
            row["bas_bailando_mismatch"] = M.beat_align_score(mj, other, fps, "bailando")
        row["speed"] = M.mean_joint_speed(mj, fps)
        row["pfc"] = M.pfc(mj, fps)
        if teacher_joints is not None:
            tj = teacher_joints[i]
            row["teacher_bas_fact"] = M.beat_align_score(tj, b, fps, "fact")
            row["teacher_bas_bailando"] = M.beat_align_score(tj, b, fps, "bailando")
            row["teacher_speed"] = M.mean_joint_speed(tj, fps)
            row["teacher_pfc"] = M.pfc(tj, fps)
            row["speed_ratio"] = row["speed"] / max(row["teacher_speed"], 1e-9)
        rows.append(row)
    summary: dict[str, Any] = {"songs": n}
    keys = [k for k in rows[0] if k not in ("song", "frames")] if rows else []
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        summary[k] = float(np.mean(vals))
    if teacher_joints is not None and rows:
        summary["bas_fact_vs_teacher"] = summary["bas_fact"] / max(summary["teacher_bas_fact"], 1e-9)
        summary["bas_bailando_vs_teacher"] = summary["bas_bailando"] / max(summary["teacher_bas_bailando"], 1e-9)
        summary["speed_ratio_of_means"] = summary["speed"] / max(summary["teacher_speed"], 1e-9)
    if "bas_fact_mismatch" in summary:
        summary["bas_fact_over_mismatch"] = summary["bas_fact"] / max(summary["bas_fact_mismatch"], 1e-9)
        summary["bas_bailando_over_mismatch"] = summary["bas_bailando"] / max(summary["bas_bailando_mismatch"], 1e-9)
    if n > 1:
        summary["diversity"] = M.diversity(model_joints, fps, reference=teacher_joints)
        if teacher_joints is not None:
            summary["teacher_diversity"] = M.diversity(teacher_joints, fps, reference=model_joints)
    return {
        "summary": summary,
        "songs": rows,
        "bas_constants": "sigma 0.05 s, FACT order 1/6 s, Bailando smoothing 1/12 s (60-fps frame constants held in seconds)",
    }


def evaluate_songs(model, songs, fps: float | None = None, motion_gain: float | None = None) -> dict[str, Any]:
    """Score a model on corpus :class:`~training.stage1_data.Song` items (teacher = their motion)."""
    from stm2pe_core.motion_inference import music_to_motion

    fps = fps or model.config.fps
    was_training = model.training
    model.eval()
    mj, tj, beats, names = [], [], [], []
    try:
        for s in songs:
            feats = MusicFeatures(
                s.features, model.config.feature_kind, fps, (("features", s.features.shape[1]),), s.name
            )
            motion = music_to_motion(feats, model, motion_gain=motion_gain)
            mj.append(motion_joints(motion))
            tj.append(np.asarray(forward_kinematics(s.poses.astype(np.float64), s.trans.astype(np.float64))))
            beats.append(s.beat_times)
            names.append(s.name)
    finally:
        model.train(was_training)
    return score_dances(mj, beats, fps, tj, names)


def markdown_table(result: dict[str, Any], title: str) -> str:
    s = result["summary"]
    lines = [f"### {title}", "", f"BAS constants: {result.get('bas_constants', '')}.", ""]
    lines.append("| metric | model | teacher |")
    lines.append("|---|---|---|")
    pairs = [
        ("BAS FACT (mean over motion beats)", "bas_fact", "teacher_bas_fact"),
        ("BAS Bailando (mean over music beats)", "bas_bailando", "teacher_bas_bailando"),
        ("BAS FACT, mismatched music (control)", "bas_fact_mismatch", None),
        ("BAS Bailando, mismatched music (control)", "bas_bailando_mismatch", None),
        ("mean joint speed (m/s)", "speed", "teacher_speed"),
        ("PFC (EDGE, x1e4, at 30 fps)", "pfc", "teacher_pfc"),
        ("diversity (kinetic, teacher-normalised)", "diversity", "teacher_diversity"),
    ]
    for label, a, b in pairs:
        if a in s:
            lines.append(f"| {label} | {s[a]:.3f} | {s[b]:.3f} |" if b and b in s else f"| {label} | {s[a]:.3f} | |")
    for label, k in (
        ("BAS FACT model/teacher", "bas_fact_vs_teacher"),
        ("BAS Bailando model/teacher", "bas_bailando_vs_teacher"),
        ("BAS FACT matched/mismatched", "bas_fact_over_mismatch"),
        ("BAS Bailando matched/mismatched", "bas_bailando_over_mismatch"),
        ("speed ratio (model/teacher, mean of per-song ratios)", "speed_ratio"),
    ):
        if k in s:
            lines.append(f"| {label} | {s[k]:.3f} | |")
    lines.append(f"\n{s['songs']} songs.\n")
    return "\n".join(lines)


def _write(result: dict[str, Any], out: str | None, title: str) -> None:
    md = markdown_table(result, title)
    print(md)
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float) + "\n")
        p.with_suffix(".md").write_text(md + "\n")


def _load_model(checkpoint: str | None):
    from stm2pe_core.motion_inference import load_m2penc

    return load_m2penc(checkpoint)


def _cmd_eval(args: argparse.Namespace) -> int:
    from .stage1_data import load_songs, split_songs

    model = _load_model(args.checkpoint)
    songs = load_songs(args.corpus, model.config.fps)
    _, val = split_songs(songs, args.val_songs)
    if not val:
        raise InputError(f"{args.corpus}: no held-out songs to evaluate")
    result = evaluate_songs(model, val[: args.limit] if args.limit else val, motion_gain=args.motion_gain)
    _write(result, args.out, f"M2PEnc on held-out corpus songs ({args.checkpoint or 'default (bundled)'})")
    return 0


def teacher_motion_for(music, features: MusicFeatures) -> Motion | None:
    """The choreography teacher's dance for a song, when the teacher package is present."""
    try:
        from . import teacher
    except ImportError:
        return None
    fn = getattr(teacher, "choreograph", None) or getattr(teacher, "dance_for_music", None)
    if fn is None:
        return None
    out = fn(music, features) if fn.__code__.co_argcount >= 2 else fn(music)
    return getattr(out, "motion", out)


def _cmd_score(args: argparse.Namespace) -> int:
    from stm2pe_core.audio import AUDIO_EXTS, encode_music, load_music
    from stm2pe_core.motion_inference import music_to_motion

    model = _load_model(args.checkpoint)
    folder = Path(args.music)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTS) if folder.is_dir() else []
    if not files:
        raise InputError(f"{folder}: no music files (supported: {', '.join(sorted(AUDIO_EXTS))})")
    mj, tj, beats, names = [], [], [], []
    for f in files[: args.limit or None]:
        music = load_music(f, fps=model.config.fps).music
        feats = encode_music(music, "librosa", beat_channel=model.config.in_dim == 36)
        mj.append(motion_joints(music_to_motion(feats, model, motion_gain=args.motion_gain)))
        t = teacher_motion_for(music, feats)
        tj.append(motion_joints(t) if t is not None else None)
        beats.append(np.asarray(music.beat_times))
        names.append(f.name)
    teacher = tj if all(t is not None for t in tj) else None
    result = score_dances(mj, beats, model.config.fps, teacher, names)
    _write(result, args.out, f"M2PEnc on {folder} ({args.checkpoint or 'default (bundled)'})")
    return 0


GAIN_HELP = "override the weights' motion gain (1 = raw network output; default: the weights' own)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score an M2PEnc on the held-out songs of a corpus")
    p.add_argument("--checkpoint", default=None, help="M2PEnc .safetensors (default: the bundled one)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--val-songs", type=int, default=16)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    p.add_argument("--motion-gain", type=float, default=None, help=GAIN_HELP)
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser(
        "score", help="score an M2PEnc on a folder of music files (BAS vs teacher vs mismatched control)"
    )
    p.add_argument("--checkpoint", default=None, help="M2PEnc .safetensors (default: the bundled one)")
    p.add_argument("--music", required=True, help="folder of music files")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    p.add_argument("--motion-gain", type=float, default=None, help=GAIN_HELP)
    p.set_defaults(func=_cmd_score)
