"""The one window planner.

M2PEnc inference windows over a song, the denoising UNet's context windows inside a segment
and the song's 5-second segments are the same arithmetic: cover ``total`` frames with windows
of ``size`` frames that overlap by at least ``overlap`` frames, then fuse per-frame results
with weights that fall off towards each window's inner edges so that neighbours cross-fade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

Fuse = Literal["linear", "uniform"]
A = TypeVar("A")


@dataclass(frozen=True)
class Window:
    """Half-open frame range ``[start, stop)``."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start

    def slice(self) -> slice:
        return slice(self.start, self.stop)


def plan_windows(total: int, size: int, overlap: int) -> list[Window]:
    """Windows of ``size`` frames covering ``[0, total)``; consecutive ones share >= ``overlap``.

    Windows never wrap around (unlike CHAMP's closed loop) and are all full length when
    ``total >= size``: the fewest windows that fit are spread evenly from the first frame to
    the last, so overlaps are ``overlap`` or slightly more, never a sliver.
    ``total <= size`` gives one window of ``total`` frames.
    """
    if total < 0 or size < 1:
        raise ValueError(f"plan_windows needs total >= 0 and size >= 1, got {total}, {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, size), got overlap={overlap}, size={size}")
    if total == 0:
        return []
    if total <= size:
        return [Window(0, total)]
    stride = size - overlap
    count = -(-(total - overlap) // stride)  # fewest windows that keep every overlap >= overlap
    starts = np.round(np.linspace(0, total - size, count)).astype(int)
    return [Window(int(s), int(s) + size) for s in starts]


def window_weights(windows: Sequence[Window], total: int, mode: Fuse = "linear") -> list[np.ndarray]:
    """Per-frame weights for each window; at every frame they sum to 1 across windows.

    ``linear`` ramps each window up over the frames it shares with its left neighbour and down
    over those shared with its right neighbour (a cross-fade with no jump); ``uniform`` is
    CHAMP's plain average.
    """
    raw: list[np.ndarray] = []
    for i, w in enumerate(windows):
        wt = np.ones(w.length, dtype=np.float64)
        if mode == "linear":
            if i > 0:
                shared = windows[i - 1].stop - w.start
                if shared > 0:
                    wt[:shared] = np.minimum(wt[:shared], np.arange(1, shared + 1) / (shared + 1))
            if i + 1 < len(windows):
                shared = w.stop - windows[i + 1].start
                if shared > 0:
                    ramp = np.arange(shared, 0, -1) / (shared + 1)
                    wt[w.length - shared :] = np.minimum(wt[w.length - shared :], ramp)
        elif mode != "uniform":
            raise ValueError(f"unknown fuse mode {mode!r}; use 'linear' or 'uniform'")
        raw.append(wt)
    norm = np.zeros(total, dtype=np.float64)
    for w, wt in zip(windows, raw):
        norm[w.slice()] += wt
    if np.any(norm <= 0):
        raise ValueError("windows do not cover every frame")
    return [(wt / norm[w.slice()]).astype(np.float32) for w, wt in zip(windows, raw)]


def fuse_windows(
    windows: Sequence[Window], outputs: Sequence[A], total: int, mode: Fuse = "linear", axis: int = 0
) -> A:
    """Blend per-window outputs (numpy arrays or torch tensors, frames on ``axis``) into one."""
    weights = window_weights(windows, total, mode)
    first = outputs[0]
    shape = list(first.shape)  # type: ignore[attr-defined]
    shape[axis] = total
    is_torch = type(first).__module__.startswith("torch")
    if is_torch:
        import torch

        out = torch.zeros(shape, dtype=first.dtype, device=first.device)  # type: ignore[attr-defined]
    else:
        out = np.zeros(shape, dtype=np.result_type(first, np.float32))  # type: ignore[arg-type]
    for w, o, wt in zip(windows, outputs, weights):
        bshape = [1] * len(shape)
        bshape[axis] = w.length
        if is_torch:
            wt_t = torch.as_tensor(wt, dtype=first.dtype, device=first.device).reshape(bshape)  # type: ignore[attr-defined]
            idx = [slice(None)] * len(shape)
            idx[axis] = w.slice()
            out[tuple(idx)] += o * wt_t
        else:
            idx = [slice(None)] * len(shape)
            idx[axis] = w.slice()
            out[tuple(idx)] += o * wt.reshape(bshape)
    return out  # type: ignore[return-value]
