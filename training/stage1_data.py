"""Stage-1 data: whole songs of (music features, teacher motion, 2D keypoints) in memory, and
random training clips cut from them.

Sources, tried in this order for a corpus folder:
1. SDGPip shards (every ``manifest.json`` under the folder; layout in ``training/sdgpip.py``);
2. ``*.npz`` files, one song each, with arrays ``features`` (N, D), ``poses`` (N, 24, 3)
   axis-angle, ``trans`` (N, 3), optional ``betas`` (10,), ``keypoints`` (N, K, 3) pixels +
   confidence with ``image_size`` (H, W), ``beat_times`` (B,) seconds, ``split`` ("train"/"val").

The whole corpus lives in memory (a few hundred MB at most for hours of music at 15 fps), so a
training step cuts its clips with tensor indexing and needs no worker processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stm2pe_core.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class Song:
    features: np.ndarray  # (N, D) float32
    poses: np.ndarray  # (N, 24, 3) float32 axis-angle
    trans: np.ndarray  # (N, 3) float32
    betas: np.ndarray  # (10,)
    beat_times: np.ndarray  # (B,) seconds
    keypoints: np.ndarray | None = None  # (N, K, 3): x, y in pixels, confidence
    image_size: tuple[int, int] = (512, 512)  # (H, W) of the keypoint pixel grid
    split: str = "train"
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.features.shape[0])


def _get(d: Any, *names: str) -> Any:
    for n in names:
        if isinstance(d, dict) and n in d:
            return d[n]
        if hasattr(d, "files") and n in d.files:
            return d[n]
    return None


def song_from_arrays(d: Any, name: str = "", split: str | None = None, fps: float = 15.0) -> Song:
    """Build a :class:`Song` from a mapping of arrays (npz, shard record)."""
    feats = _get(d, "features", "music_features", "feats")
    poses = _get(d, "poses", "smpl_poses", "pose")
    trans = _get(d, "trans", "smpl_trans", "transl")
    if feats is None or poses is None or trans is None:
        keys = list(d.keys()) if isinstance(d, dict) else list(getattr(d, "files", []))
        raise InputError(f"{name}: a song needs features, poses and trans arrays; it has {keys}")
    feats = np.asarray(feats, dtype=np.float32)
    poses = np.asarray(poses, dtype=np.float32).reshape(len(poses), 24, 3)
    trans = np.asarray(trans, dtype=np.float32).reshape(len(trans), 3)
    n = min(len(feats), len(poses), len(trans))
    betas = _get(d, "betas", "smpl_betas")
    betas = np.zeros(10, np.float32) if betas is None else np.asarray(betas, np.float32).reshape(-1)[:10]
    beats = _get(d, "beat_times", "beats")
    if beats is None:
        beats = beats_from_channel(feats, fps)
    kp = _get(d, "keypoints", "keypoints2d", "kp2d")
    size = _get(d, "image_size", "size")
    sp = split if split is not None else _get(d, "split")
    sp = str(np.asarray(sp).item()) if sp is not None else "train"
    return Song(
        features=feats[:n],
        poses=poses[:n],
        trans=trans[:n],
        betas=betas,
        beat_times=np.asarray(beats, dtype=np.float64).reshape(-1),
        keypoints=None if kp is None else np.asarray(kp, dtype=np.float32)[:n],
        image_size=(512, 512) if size is None else tuple(int(v) for v in np.asarray(size).reshape(-1)[:2]),
        split=sp,
        name=name,
    )


def beats_from_channel(feats: np.ndarray, fps: float) -> np.ndarray:
    """Beat times from the beat channel (the features' last column): its local maxima above 0.5."""
    ch = np.asarray(feats, dtype=np.float64)[:, -1]
    if ch.max() <= 0:
        return np.zeros(0)
    c = ch / ch.max()
    idx = [
        i for i in range(len(c)) if c[i] > 0.5 and (i == 0 or c[i] >= c[i - 1]) and (i + 1 == len(c) or c[i] > c[i + 1])
    ]
    return np.asarray(idx, dtype=np.float64) / fps


def load_songs(corpus: str | Path, fps: float = 15.0) -> list[Song]:
    root = Path(corpus)
    if not root.exists():
        raise InputError(
            f"{root}: corpus folder not found. Build it with `python -m training sdgpip --out {root}` (see README 'Training')."
        )
    songs = _from_shards(root)
    if songs is None:
        files = sorted(root.glob("*.npz"))
        if not files:
            raise InputError(
                f"{root}: no shard manifest and no *.npz songs in it. Build the corpus first (README 'Training')."
            )
        songs = []
        for f in files:
            with np.load(f, allow_pickle=False) as z:
                songs.append(song_from_arrays(z, name=f.stem, fps=fps))
    if not songs:
        raise InputError(f"{root}: the corpus holds no songs")
    return songs


def _from_shards(root: Path) -> list[Song] | None:
    """Read SDGPip shards (every ``manifest.json`` under ``root``) straight from their documented
    layout (see ``training/sdgpip.py``): whole songs sliced out of each shard by
    ``song_offsets`` / ``beat_offsets``. Reading the raw arrays skips the derived ones
    (rot6d, FK joints) that ``ShardDataset`` computes per item and that training recomputes on
    the GPU anyway, so a corpus of hours loads in seconds."""
    import json

    manifests = sorted(root.rglob("manifest.json")) if root.is_dir() else []
    if not manifests:
        return None
    from safetensors.numpy import load_file

    songs: list[Song] = []
    for mf in manifests:
        man = json.loads(mf.read_text())
        size = tuple(int(v) for v in man.get("image_size", (512, 512)))
        fps = float(man.get("fps", 15.0))
        for sh in man["shards"]:
            path = mf.parent / sh["file"]
            meta = json.loads(path.with_suffix(".json").read_text())["songs"]
            a = load_file(str(path))
            off, boff = a["song_offsets"], a["beat_offsets"]
            for k, m in enumerate(meta):
                f0, f1 = int(off[k]), int(off[k + 1])
                kp = a.get("keypoints")
                songs.append(
                    Song(
                        features=a["features"][f0:f1].astype(np.float32),
                        poses=a["poses"][f0:f1].astype(np.float32).reshape(f1 - f0, 24, 3),
                        trans=a["trans"][f0:f1].astype(np.float32),
                        betas=a["betas"][k].astype(np.float32) if "betas" in a else np.zeros(10, np.float32),
                        beat_times=a["beat_times"][int(boff[k]) : int(boff[k + 1])].astype(np.float64)
                        if "beat_times" in a
                        else beats_from_channel(a["features"][f0:f1], fps),
                        keypoints=None if kp is None else kp[f0:f1].astype(np.float32),
                        image_size=size,
                        split=str(m.get("split", "train")),
                        name=str(m.get("name", f"{path.stem}:{k}")),
                    )
                )
    return songs


def split_songs(songs: list[Song], val_songs: int) -> tuple[list[Song], list[Song]]:
    """Use the corpus' own val split when it has one; otherwise hold out the last songs."""
    val = [s for s in songs if s.split != "train"]
    train = [s for s in songs if s.split == "train"]
    if not val and val_songs > 0 and len(songs) > 1:
        k = min(val_songs, max(1, len(songs) // 5))
        train, val = songs[:-k], songs[-k:]
    return train, val


class ClipSampler:
    """Random fixed-length clips from in-memory songs, as tensors on one device."""

    def __init__(self, songs: list[Song], clip_frames: int, device: torch.device | str = "cpu", seed: int = 0) -> None:
        songs = [s for s in songs if s.n_frames >= clip_frames]
        if not songs:
            raise InputError(
                f"no song is at least {clip_frames} frames long; make longer songs or lower data.clip_frames"
            )
        self.clip = clip_frames
        self.device = torch.device(device)
        lens = np.array([s.n_frames for s in songs])
        offsets = np.concatenate([[0], np.cumsum(lens)[:-1]])
        self.starts = offsets
        self.lengths = lens
        self.weights = (lens - clip_frames + 1) / (lens - clip_frames + 1).sum()
        cat = lambda xs: torch.from_numpy(np.concatenate(xs)).to(self.device)  # noqa: E731
        self.features = cat([s.features for s in songs])
        self.poses = cat([s.poses for s in songs])
        self.trans = cat([s.trans for s in songs])
        self.betas = torch.from_numpy(np.stack([s.betas for s in songs])).to(self.device)
        self.has_keypoints = all(s.keypoints is not None for s in songs)
        if self.has_keypoints:
            self.keypoints = cat([s.keypoints for s in songs])
            self.image_size = songs[0].image_size
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        song = self.rng.choice(len(self.lengths), size=batch, p=self.weights)
        off = self.rng.integers(0, self.lengths[song] - self.clip + 1)
        return self.gather(song, off)

    def gather(self, song: np.ndarray, off: np.ndarray) -> dict[str, torch.Tensor]:
        idx = torch.from_numpy((self.starts[song] + off)[:, None] + np.arange(self.clip)[None]).to(self.device)
        out = {
            "features": self.features[idx],
            "poses": self.poses[idx],
            "trans": self.trans[idx],
            "betas": self.betas[torch.from_numpy(song).to(self.device)],
        }
        if self.has_keypoints:
            out["keypoints"] = self.keypoints[idx]
        return out

    def fixed_batches(self, count: int, batch: int, seed: int = 1234) -> list[dict[str, torch.Tensor]]:
        """The same clips every time (held-out loss comparable across evaluations)."""
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(count):
            song = rng.choice(len(self.lengths), size=batch, p=self.weights)
            off = rng.integers(0, self.lengths[song] - self.clip + 1)
            out.append(self.gather(song, off))
        return out


def feature_stats(songs: list[Song]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([s.features for s in songs]).astype(np.float64)
    return x.mean(0).astype(np.float32), x.std(0).astype(np.float32)
