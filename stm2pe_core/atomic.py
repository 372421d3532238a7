"""Atomic file output: the one way the pack writes a file a person or a later step will read.

The content goes to a hidden temporary file in the destination folder; only when writing
succeeded is it renamed over the destination (``os.replace`` is atomic on one file system).
On any error or cancel the temporary file is removed, so no half-written output ever appears
and an older file at the destination survives.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temporary_sibling(path: Path) -> Path:
    """A new, empty, hidden file beside ``path`` that keeps its suffix (writers key on it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path) -> None:
    """Give ``tmp`` a plain new file's mode (mkstemp makes 0600) and rename it over ``path``."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """``with atomic_write(dst) as tmp: write(tmp)`` — ``dst`` appears only if the block succeeds."""
    dst = Path(path)
    tmp = temporary_sibling(dst)
    try:
        yield tmp
        publish(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
