"""Disk cache for music features (Jukebox takes ~1 s of GPU per second of music).

Entries are ``<root>/features/<key>.npz`` (no pickles), keyed by the audio content hash and
every parameter that changes the result. Writes go to a temporary file in the same folder and
are renamed into place, so a crash never leaves a half-written entry. Root: ``$STM2PE_CACHE``
or ``~/.cache/stm2pe``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..types import MusicFeatures

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def cache_root() -> Path:
    env = os.environ.get("STM2PE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stm2pe"


def cache_key(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``params`` (content hash + settings + cache version)."""
    blob = json.dumps({"v": CACHE_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class CacheInfo:
    path: Path
    entries: int
    bytes: int

    def __str__(self) -> str:
        return f"{self.path}: {self.entries} cached feature file(s), {self.bytes / 1e6:.1f} MB"


class FeatureCache:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.folder = self.root / "features"

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str) -> MusicFeatures | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                return MusicFeatures(
                    features=z["features"],
                    kind=meta["kind"],
                    fps=float(meta["fps"]),
                    columns=tuple((str(n), int(w)) for n, w in meta["columns"]),
                    source_hash=meta["source_hash"],
                )
        except Exception as exc:  # noqa: BLE001 - a damaged entry is recomputed, not fatal
            log.warning("STM2PE: ignoring unreadable cache entry %s (%s)", p, exc)
            return None

    def save(self, key: str, feats: MusicFeatures) -> Path | None:
        meta = {
            "kind": feats.kind,
            "fps": feats.fps,
            "columns": [list(c) for c in feats.columns],
            "source_hash": feats.source_hash,
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.path(key)) as tmp, open(tmp, "wb") as f:
                np.savez(f, features=feats.features, meta=np.array(json.dumps(meta)))
        except OSError as exc:
            log.warning("STM2PE: could not write the feature cache in %s (%s); continuing without it", self.folder, exc)
            return None
        return self.path(key)

    def info(self) -> CacheInfo:
        files = list(self.folder.glob("*.npz")) if self.folder.exists() else []
        return CacheInfo(self.folder, len(files), sum(f.stat().st_size for f in files))

    def clear(self) -> int:
        """Delete every cached feature file (and stale temporaries); returns how many entries went."""
        n = 0
        if not self.folder.exists():
            return 0
        for f in self.folder.iterdir():
            if f.suffix == ".npz" or f.name.endswith(".tmp"):
                f.unlink(missing_ok=True)
                n += f.suffix == ".npz"
        return n
