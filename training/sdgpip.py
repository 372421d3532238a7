"""SDGPip: the synthetic data generation pipeline for M2PEnc stage 1.

music (files or the procedural synth) + motion (the choreography teacher, or motion files with
the same stem: AIST++ / EDGE pickles, npz, read by ``stm2pe_core.body.motion.load_motion`` and
resampled to 15 fps) -> per-song arrays at 15 fps, written as shards. Music and motion are paired
by identical file stem and assumed to start together, as in EDGE's ``wavs/<seq>.wav`` +
``motions/<seq>.pkl`` layout (raw AIST++ names one music file per many sequences: copy or link
the music per sequence first).

Shard layout (``shard_00000.safetensors`` + ``shard_00000.json``; documented again in the
manifest). Songs are stored whole (their frames stacked), not as overlapping 5-second slices,
so a corpus is 2-10x smaller; :class:`ShardDataset` cuts the 5-second slices (75 frames, any
stride) or returns whole songs.

=================  ==================  =======  =============================================
array              shape               dtype    meaning
=================  ==================  =======  =============================================
features           (F, D)              float16  music features per frame (librosa 35 + beat = 36)
poses              (F, 24, 3)          float32  SMPL axis-angle, joint 0 = global orientation
trans              (F, 3)              float32  SMPL transl, metres, y up (floor at y = 0)
keypoints          (F, 18, 3)          float16  OpenPose-18 x, y (pixels of a 512x512 frontal
                                                camera, ``manifest.camera``) and confidence
contacts           (F, 4)              uint8    foot contact L-ankle, R-ankle, L-toe, R-toe
betas              (S, 10)             float32  shape per song (zeros for the teacher)
song_offsets       (S + 1,)            int64    song s = frames [off[s], off[s+1])
beat_times         (B,)                float32  all songs' beats (seconds from song start)
beat_offsets       (S + 1,)            int64    song s = beat_times[boff[s]:boff[s+1]]
map_<name>         (F, M, M, 3)        uint8    only with CHAMP guidance-encoder weights (or
                                                ``--maps-size M``): depth / normal /
                                                semantic_map / dwpose rendered at M x M (default
                                                128) with the same camera scaled, for computing
                                                guidance-feature targets in training
=================  ==================  =======  =============================================

F = total frames in the shard, S = songs. Derived by :class:`ShardDataset` on read: ``rot6d``
(F, 24, 6) (first two rows of R, EDGE/pytorch3d layout) and FK ``joints`` (F, 24, 3) of the
built-in skeleton. Contacts follow EDGE: joint speed below 0.3 m/s (0.02 m per frame at 15 fps).
Resumable: a shard counts as done when its ``.json`` exists (written after the atomic rename of
its ``.safetensors``); re-running skips it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from stm2pe_core.atomic import atomic_write
from stm2pe_core.errors import InputError
from stm2pe_core.types import DEFAULT_FPS

log = logging.getLogger(__name__)

SDGPIP_VERSION = "sdgpip/1"
IMAGE_SIZE = 512
CLIP_FRAMES = 75
CONTACT_SPEED = 0.3  # m/s (EDGE: 0.01 m/frame at 30 fps)
CONTACT_JOINTS = (7, 8, 10, 11)
ARRAYS = {
    "features": "(F, D) float16 music features per frame",
    "poses": "(F, 24, 3) float32 SMPL axis-angle, joint 0 = global orientation",
    "trans": "(F, 3) float32 SMPL transl, metres, y up, floor y = 0",
    "keypoints": "(F, 18, 3) float16 OpenPose-18 x, y pixels in the manifest camera, confidence",
    "contacts": "(F, 4) uint8 foot contacts L-ankle, R-ankle, L-toe, R-toe",
    "betas": "(S, 10) float32",
    "song_offsets": "(S + 1,) int64 frame ranges of the songs",
    "beat_times": "(B,) float32 seconds from each song's start",
    "beat_offsets": "(S + 1,) int64 beat ranges of the songs",
    "map_<name>": "(F, M, M, 3) uint8 guidance maps (only when stored; manifest guidance_maps)",
}


def default_camera(size: int = IMAGE_SIZE) -> Any:
    """One fixed frontal camera for the whole corpus (so keypoints are a function of the motion
    only): it frames a 2.4 m x 2.3 m box around the origin, floor near the bottom."""
    from stm2pe_core.render.camera import fit_camera

    box = np.array([[x, y, z] for x in (-1.2, 1.2) for y in (-0.05, 2.25) for z in (-0.6, 0.6)])
    return fit_camera(box, size, size, margin=0.02)


def foot_contacts(joints: np.ndarray, fps: float) -> np.ndarray:
    """(N, 4) uint8: joints 7, 8, 10, 11 moving slower than 0.3 m/s (last frame copies the one before)."""
    j = joints[:, CONTACT_JOINTS]
    v = np.linalg.norm(np.diff(j, axis=0), axis=-1) * fps
    v = np.concatenate([v, v[-1:]], 0) if len(v) else np.zeros((len(j), 4))
    return (v < CONTACT_SPEED).astype(np.uint8)


def keypoints_2d(poses: np.ndarray, trans: np.ndarray, camera: Any) -> np.ndarray:
    """(N, 18, 3) OpenPose-18 keypoints of the built-in body seen by ``camera``."""
    from stm2pe_core.body.model import load_body
    from stm2pe_core.render.openpose import keypoint_confidence, openpose_points

    body = load_body("preview")
    out = np.zeros((len(poses), 18, 3), np.float32)
    for a in range(0, len(poses), 256):
        posed = body.pose(poses[a : a + 256], trans[a : a + 256])
        op3d = openpose_points(posed.joints, posed.face_points)
        for k in range(len(op3d)):
            uv, z = camera.project(op3d[k])
            conf = keypoint_confidence(uv, z, None, camera.width, camera.height)
            out[a + k, :, :2] = uv
            out[a + k, :, 2] = conf
    return out


# ----------------------------------------------------------------------------- sources


def _song_sources(args: dict) -> list[dict]:
    """Every song of the job as a small picklable description, in a fixed order."""
    if args.get("synth"):
        from training.music_synth import corpus_specs

        dur = (float(args.get("min_seconds", 20.0)), float(args.get("max_seconds", 60.0)))
        specs = corpus_specs(int(args["synth"]), args.get("split", "train"), int(args.get("seed", 0)), dur)
        return [{"kind": "synth", "spec": asdict(s), "name": s.name} for s in specs]
    root = Path(args["music"])
    from stm2pe_core.audio import AUDIO_EXTS

    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTS)
    if not files:
        raise InputError(
            f"{root}: no audio files ({', '.join(sorted(AUDIO_EXTS))}). Point --music at a folder of songs"
        )
    return [{"kind": "file", "path": str(p), "name": p.stem} for p in files]


def _find_motion(motions: str | None, stem: str) -> Path | None:
    if not motions:
        return None
    for ext in (".pkl", ".pickle", ".npz"):
        p = Path(motions) / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _make_song(src: dict, args: dict, camera: Any) -> dict:
    """Music analysis, features, motion, keypoints and contacts of one song."""
    from stm2pe_core.audio import encode_music, load_music, music_from_waveform
    from stm2pe_core.body.skeleton import forward_kinematics

    from .teacher import choreograph

    fps = float(args.get("fps", DEFAULT_FPS))
    split = args.get("split", "train")
    meta: dict[str, Any] = {"name": src["name"]}
    if src["kind"] == "synth":
        from training.music_synth import SongSpec, generate_song, split_of, write_song

        spec = SongSpec(**{**src["spec"], "progression": tuple(src["spec"]["progression"])})
        song = generate_song(spec)
        if args.get("write_audio"):
            write_song(song, Path(args["out"]) / "music" / f"{spec.name}.ogg")
        music = music_from_waveform(song.waveform, song.sample_rate, fps=fps, name=spec.name).music
        split = split_of(spec)
        meta.update(style=spec.style, true_tempo=spec.tempo, seed=spec.seed)
    else:
        music = load_music(src["path"], fps=fps).music
        meta["file"] = src["path"]
    feats = encode_music(
        music, args.get("features", "librosa"), beat_channel=not args.get("no_beat", False), use_cache=False
    )
    mpath = _find_motion(args.get("motions"), src["name"])
    if mpath is not None:
        from stm2pe_core.body.motion import load_motion

        motion = load_motion(mpath, fps=fps)
        meta["motion"] = str(mpath)
    else:
        motion = choreograph(music)
        meta["motion"] = "teacher"
    n = min(music.n_frames, motion.n_frames, feats.features.shape[0])
    poses = np.asarray(motion.poses[:n], np.float32)
    trans = np.asarray(motion.trans[:n], np.float32)
    joints = forward_kinematics(poses.astype(np.float64), trans.astype(np.float64))
    meta.update(split=split, n_frames=int(n), tempo=float(music.tempo))
    maps = _guidance_maps(poses, trans, motion.betas, fps, args) if args.get("maps_size") else {}
    return {
        **maps,
        "features": feats.features[:n].astype(np.float16),
        "poses": poses,
        "trans": trans,
        "keypoints": keypoints_2d(poses, trans, camera).astype(np.float16),
        "contacts": foot_contacts(joints, fps),
        "betas": np.asarray(motion.betas, np.float32).reshape(-1)[:10],
        "beat_times": np.asarray(music.beat_times, np.float32),
        "meta": meta,
        "columns": [list(c) for c in feats.columns],
        "kind": feats.kind,
    }


def guidance_weights_present(models: str | None) -> bool:
    """CHAMP guidance-encoder weights under ``models/champ`` (then maps are worth storing)."""
    return bool(models) and any((Path(models) / "champ").glob("guidance_encoder_*"))


def _guidance_maps(poses: np.ndarray, trans: np.ndarray, betas: np.ndarray, fps: float, args: dict) -> dict:
    """CHAMP guidance maps of the motion at a reduced size (``maps_size``), uint8, same fixed
    camera as the keypoints (scaled), stored as ``map_<name>`` (F, S, S, 3)."""
    from stm2pe_core.render.api import render_motion
    from stm2pe_core.types import Motion

    size = int(args["maps_size"])
    smpl_dir = Path(args["models"]) / "smpl" if args.get("models") else None
    res = render_motion(
        Motion(poses, trans, np.asarray(betas, np.float32), fps),
        width=size,
        height=size,
        maps=tuple(args.get("maps") or ("depth", "normal", "semantic_map", "dwpose")),
        camera_mode="json",
        camera_json=default_camera(size).to_json(),
        smpl_dir=smpl_dir if smpl_dir is not None and smpl_dir.is_dir() else None,
    )
    return {f"map_{k}": np.clip(np.round(v * 255.0), 0, 255).astype(np.uint8) for k, v in res.maps.maps.items()}


def _shard_name(i: int) -> str:
    return f"shard_{i:05d}"


def _write_shard(job: tuple[int, list[dict], dict]) -> dict:
    """Generate and atomically write one shard; returns its record (also written as .json)."""
    from safetensors.numpy import save_file

    index, sources, args = job
    out = Path(args["out"])
    camera = default_camera()
    t0 = time.time()
    songs = [_make_song(s, args, camera) for s in sources]
    frames = np.cumsum([0] + [len(s["poses"]) for s in songs]).astype(np.int64)
    beats = np.cumsum([0] + [len(s["beat_times"]) for s in songs]).astype(np.int64)
    keys = ["features", "poses", "trans", "keypoints", "contacts", "beat_times"]
    keys += sorted(k for k in songs[0] if k.startswith("map_"))
    arrays = {k: np.ascontiguousarray(np.concatenate([s[k] for s in songs], 0)) for k in keys}
    arrays["betas"] = np.stack([s["betas"] for s in songs]).astype(np.float32)
    arrays["song_offsets"] = frames
    arrays["beat_offsets"] = beats
    name = _shard_name(index)
    with atomic_write(out / f"{name}.safetensors") as tmp:
        save_file(arrays, str(tmp))
    record = {
        "file": f"{name}.safetensors",
        "songs": [s["meta"] for s in songs],
        "frames": int(frames[-1]),
        "clips": int(sum(_clip_count(len(s["poses"]), CLIP_FRAMES, args["stride_frames"]) for s in songs)),
        "feature_kind": songs[0]["kind"],
        "feature_columns": songs[0]["columns"],
        "feature_dim": int(arrays["features"].shape[1]),
        "map_names": [k for k in arrays if k.startswith("map_")],
        "seconds": round(time.time() - t0, 2),
    }
    with atomic_write(out / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    return record


def _clip_count(n: int, clip: int, stride: int) -> int:
    return 0 if n < clip else 1 + (n - clip) // stride


def generate(
    out: str | Path,
    *,
    music: str | None = None,
    synth: int = 0,
    motions: str | None = None,
    split: str = "train",
    seed: int = 0,
    workers: int = 1,
    songs_per_shard: int = 16,
    stride: float = 2.5,
    features: str = "librosa",
    no_beat: bool = False,
    write_audio: bool = False,
    fps: float = DEFAULT_FPS,
    min_seconds: float = 20.0,
    max_seconds: float = 60.0,
    models: str | None = None,
    maps_size: int | None = None,
    progress: Any = None,
) -> dict:
    """Build (or finish) a corpus in ``out``; returns the manifest."""
    if bool(music) == bool(synth):
        raise InputError("give exactly one of --music DIR or --synth N")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    args = {
        "out": str(out),
        "music": music,
        "synth": synth,
        "motions": motions,
        "split": split,
        "seed": seed,
        "features": features,
        "no_beat": no_beat,
        "write_audio": write_audio,
        "fps": fps,
        "models": models,
        "maps_size": (128 if guidance_weights_present(models) else 0) if maps_size is None else int(maps_size),
        "min_seconds": min_seconds,
        "max_seconds": max_seconds,
        "stride_frames": max(1, int(round(stride * fps))),
    }
    sources = _song_sources(args)
    jobs = [(i, sources[a : a + songs_per_shard], args) for i, a in enumerate(range(0, len(sources), songs_per_shard))]
    todo = [j for j in jobs if not (out / f"{_shard_name(j[0])}.json").is_file()]
    log.info("SDGPip: %d shards, %d already done", len(jobs), len(jobs) - len(todo))
    done = len(jobs) - len(todo)
    if progress is not None:
        progress(done, len(jobs))
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:
            for _ in pool.imap_unordered(_write_shard, todo):
                done += 1
                if progress is not None:
                    progress(done, len(jobs))
    else:
        for j in todo:
            _write_shard(j)
            done += 1
            if progress is not None:
                progress(done, len(jobs))
    return write_manifest(out, args, len(jobs))


def write_manifest(out: Path, args: dict, n_shards: int) -> dict:
    records = [json.loads((out / f"{_shard_name(i)}.json").read_text()) for i in range(n_shards)]
    from training.music_synth import GENERATOR_VERSION

    from .teacher import TEACHER_VERSION

    first = records[0] if records else {}
    manifest = {
        "format": SDGPIP_VERSION,
        "generator": {"sdgpip": SDGPIP_VERSION, "teacher": TEACHER_VERSION, "music_synth": GENERATOR_VERSION},
        "parameters": {k: v for k, v in args.items() if k != "out"},
        "fps": args["fps"],
        "clip_frames": CLIP_FRAMES,
        "clip_stride_frames": args["stride_frames"],
        "feature_kind": first.get("feature_kind"),
        "feature_dim": first.get("feature_dim"),
        "feature_columns": first.get("feature_columns"),
        "image_size": [IMAGE_SIZE, IMAGE_SIZE],
        "camera": json.loads(default_camera().to_json()),
        "keypoint_format": "openpose18",
        "guidance_maps": {"size": args.get("maps_size", 0), "names": [k[4:] for k in first.get("map_names", [])]},
        "arrays": ARRAYS,
        "derived_on_read": {
            "rot6d": "(F, 24, 6) first two rows of R",
            "joints": "(F, 24, 3) FK of the built-in skeleton",
        },
        "songs": sum(len(r["songs"]) for r in records),
        "frames": sum(r["frames"] for r in records),
        "clips": sum(r["clips"] for r in records),
        "splits": {s: sum(1 for r in records for m in r["songs"] if m["split"] == s) for s in ("train", "heldout")},
        "shards": [
            {"file": r["file"], "songs": len(r["songs"]), "frames": r["frames"], "clips": r["clips"]} for r in records
        ],
    }
    with atomic_write(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


# ----------------------------------------------------------------------------- reading


def _torch_dataset_base() -> type:
    try:
        from torch.utils.data import Dataset

        return Dataset
    except ImportError:  # reading shards does not need torch
        return object


class ShardDataset(_torch_dataset_base()):  # type: ignore[misc]
    """A torch Dataset over a corpus folder (one or more SDGPip outputs).

    ``clip_frames=None`` (default): one item per whole song; otherwise 5-second slices
    (``clip_frames`` frames every ``stride`` frames). Items are dicts of numpy arrays (float32
    except ``contacts``) plus ``name``, ``split`` and ``start``: ``features``, ``poses``,
    ``rot6d``, ``trans``, ``joints``, ``keypoints``, ``contacts``, ``betas``, ``beat_times``
    (seconds from the item's first frame), ``image_size``. Shards are opened lazily and cached.
    ``split`` keeps only songs of that split. Every folder under ``root`` holding a
    ``manifest.json`` is included (so train and held-out corpora can live side by side).
    """

    def __init__(
        self, root: str | Path, clip_frames: int | None = None, stride: int | None = None, split: str | None = None
    ) -> None:
        root = Path(root)
        manifests = sorted(root.rglob("manifest.json")) if root.is_dir() else []
        if not manifests:
            raise InputError(
                f"{root}: no SDGPip manifest.json found. Build a corpus with `python -m training sdgpip --synth N --out {root}`"
            )
        self.root = root
        self.clip_frames = clip_frames
        self.manifests = []
        self.songs: list[tuple[Path, int, dict]] = []  # (shard file, index in shard, meta)
        for mf in manifests:
            man = json.loads(mf.read_text())
            self.manifests.append(man)
            for sh in man["shards"]:
                rec = json.loads((mf.parent / sh["file"].replace(".safetensors", ".json")).read_text())
                for k, meta in enumerate(rec["songs"]):
                    if split is None or meta["split"] == split:
                        self.songs.append((mf.parent / sh["file"], k, meta))
        man0 = self.manifests[0]
        self.fps = float(man0["fps"])
        self.image_size = tuple(man0["image_size"])
        self.stride = int(stride or man0.get("clip_stride_frames", 38))
        self.items: list[tuple[int, int]] = []  # (song, start frame)
        for si, (_, _, meta) in enumerate(self.songs):
            if clip_frames is None:
                self.items.append((si, 0))
            else:
                self.items.extend((si, st) for st in range(0, meta["n_frames"] - clip_frames + 1, self.stride))
        self._cache: dict[Path, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _shard(self, path: Path) -> dict[str, np.ndarray]:
        arr = self._cache.get(path)
        if arr is None:
            from safetensors.numpy import load_file

            if len(self._cache) > 8:
                self._cache.pop(next(iter(self._cache)))
            arr = self._cache[path] = load_file(str(path))
        return arr

    def __getitem__(self, i: int) -> dict[str, Any]:
        from stm2pe_core.body.rotations import axis_angle_to_rot6d
        from stm2pe_core.body.skeleton import forward_kinematics

        si, start = self.items[i]
        path, k, meta = self.songs[si]
        a = self._shard(path)
        f0, f1 = int(a["song_offsets"][k]), int(a["song_offsets"][k + 1])
        b0, b1 = int(a["beat_offsets"][k]), int(a["beat_offsets"][k + 1])
        n = f1 - f0 if self.clip_frames is None else self.clip_frames
        sl = slice(f0 + start, f0 + start + n)
        poses = a["poses"][sl].astype(np.float32)
        trans = a["trans"][sl].astype(np.float32)
        beats = a["beat_times"][b0:b1].astype(np.float64) - start / self.fps
        beats = beats[(beats >= 0) & (beats < n / self.fps)]
        return {
            "features": a["features"][sl].astype(np.float32),
            "poses": poses,
            "rot6d": axis_angle_to_rot6d(poses).astype(np.float32),
            "trans": trans,
            "joints": forward_kinematics(poses, trans).astype(np.float32),
            "keypoints": a["keypoints"][sl].astype(np.float32),
            "contacts": a["contacts"][sl],
            "betas": a["betas"][k].astype(np.float32),
            "beat_times": beats,
            **{k: a[k][sl] for k in a if k.startswith("map_")},  # uint8 (n, S, S, 3) when stored
            "image_size": np.array(self.image_size),
            "name": meta["name"],
            "split": meta["split"],
            "start": start,
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch equal-length items (clips) as torch tensors; ``beat_times``, ``name``, ``split``
    stay lists (their lengths differ). Use as ``DataLoader(ds, collate_fn=collate)``."""
    import torch

    out: dict[str, Any] = {}
    for k in items[0]:
        if k in ("beat_times", "name", "split"):
            out[k] = [it[k] for it in items]
        else:
            out[k] = torch.as_tensor(np.stack([np.asarray(it[k]) for it in items]))
    return out


# ----------------------------------------------------------------------------- CLI


def _cmd(args: argparse.Namespace) -> int:
    from stm2pe_core.progress import tqdm_progress

    t0 = time.time()
    man = generate(
        args.out,
        music=args.music,
        synth=args.synth,
        motions=args.motions,
        split=args.split,
        seed=args.seed,
        workers=args.workers,
        songs_per_shard=args.songs_per_shard,
        stride=args.stride,
        features=args.features,
        no_beat=args.no_beat_channel,
        write_audio=args.write_audio,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
        models=args.models,
        maps_size=args.maps_size,
        progress=tqdm_progress("SDGPip shards", disable=False),
    )
    print(
        f"{args.out}: {man['songs']} songs, {man['frames']} frames, {man['clips']} clips of {CLIP_FRAMES} frames in {len(man['shards'])} shards ({time.time() - t0:.0f} s)"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sdgpip", help="generate the synthetic training corpus (music + teacher dance -> shards)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--music", help="folder of music files")
    src.add_argument("--synth", type=int, help="generate N procedural songs instead")
    p.add_argument("--out", required=True, help="output folder (re-running resumes: finished shards are skipped)")
    p.add_argument(
        "--motions", default=None, help="folder of motion files named like the songs (else the teacher dances)"
    )
    p.add_argument("--split", choices=("train", "heldout"), default="train", help="which synth split to draw (--synth)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (--synth)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--songs-per-shard", type=int, default=16)
    p.add_argument(
        "--stride", type=float, default=2.5, help="seconds between 5-s slices (recorded; slicing happens on read)"
    )
    p.add_argument("--features", choices=("librosa", "jukebox"), default="librosa")
    p.add_argument("--no-beat-channel", action="store_true")
    p.add_argument(
        "--models", default=None, help="models folder; with champ/guidance_encoder_* present, guidance maps are stored"
    )
    p.add_argument(
        "--maps-size",
        type=int,
        default=None,
        help="store CHAMP guidance maps at SxS uint8 (default: 128 when guidance-encoder weights are found, else none; 0 = never)",
    )
    p.add_argument("--min-seconds", type=float, default=20.0, help="synth song length range")
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--write-audio", action="store_true", help="also write the synth songs as ogg under OUT/music")
    p.set_defaults(func=_cmd)
