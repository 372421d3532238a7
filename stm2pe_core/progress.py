"""Progress reporting shared by the CLI (tqdm) and ComfyUI (ProgressBar).

Long library functions take ``progress: Progress | None``. The callback receives
``(done, total)``; it may raise to cancel (ComfyUI's ProgressBar raises on "Cancel"),
so library code must call it inside its loops and clean up in ``finally`` blocks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Progress = Callable[[int, int], None]
T = TypeVar("T")


def track(items: Iterable[T], total: int, progress: Progress | None) -> Iterator[T]:
    """Yield ``items`` and report each one done; report 0 first so cancel is checked early."""
    if progress is not None:
        progress(0, total)
    for i, item in enumerate(items):
        yield item
        if progress is not None:
            progress(i + 1, total)


def tqdm_progress(desc: str, *, disable: bool | None = None) -> Progress:
    """A :data:`Progress` that draws a tqdm bar on stderr (hidden when not a terminal)."""
    from tqdm import tqdm

    state: dict[str, tqdm] = {}
    if disable is None:
        disable = not sys.stderr.isatty()

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None or bar.total != total:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(total=total, desc=desc, disable=disable, leave=False)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            state.pop("bar", None)

    return update


def announce_compile(module: object, key: tuple, what: str) -> bool:
    """Warn once per input shape before a ``torch.compile``d module compiles it.

    Compiling takes a minute or more with no step finished, so a progress bar would sit at 0
    and look hung. Returns True when the message was given (a new shape of a compiled module).
    """
    if getattr(module, "_orig_mod", None) is None:  # not compiled
        return False
    seen = getattr(module, "_stm2pe_compiled_shapes", None)
    if seen is None:
        seen = set()
        object.__setattr__(module, "_stm2pe_compiled_shapes", seen)
    if key in seen:
        return False
    seen.add(key)
    import logging

    logging.getLogger("STM2PE").warning("STM2PE: compiling %s (once per size; the progress bar waits meanwhile)", what)
    return True
