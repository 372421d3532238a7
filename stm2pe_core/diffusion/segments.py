"""Song segments: the paper's 5-second diffusion segments over music of any length.

A song of N frames is cut into segments of S frames (default 75 = 5 s at 15 fps) that overlap
their neighbours by at least m frames, with :func:`stm2pe_core.windows.plan_windows` (the same
planner as M2PEnc windows and UNet context windows). Each segment's latents are blended into
the song with :func:`stm2pe_core.windows.window_weights` (linear cross-fade over overlaps).

Two streaming helpers keep memory flat for long songs:

* :class:`GuidanceFeed` computes per-frame guidance (maps or features) once per frame and hands
  each segment its slice, reusing the frames it shares with the previous segment, so at most one
  segment of guidance is alive.
* :class:`LatentStitcher` accumulates weighted segment latents and releases each frame as soon
  as no later segment touches it, so at most one segment of partial sums is alive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..types import DEFAULT_FPS, SEGMENT_SECONDS
from ..windows import Window, plan_windows, window_weights

DEFAULT_SEGMENT_FRAMES = int(round(SEGMENT_SECONDS * DEFAULT_FPS))  # 75
DEFAULT_OVERLAP = 8  # frames shared by neighbouring segments (~0.5 s at 15 fps)


@dataclass(frozen=True)
class Segment:
    """One segment of the song: frames ``[start, stop)`` plus what it shares with its neighbours."""

    index: int
    start: int
    stop: int
    overlap_prev: int  # frames [start, start + overlap_prev) were also made by the previous segment
    overlap_next: int  # frames [stop - overlap_next, stop) are also made by the next segment
    release_stop: int  # after this segment, frames < release_stop are final (no later segment touches them)
    weights: np.ndarray  # (length,) float32 blend weights in the song

    @property
    def length(self) -> int:
        return self.stop - self.start

    @property
    def window(self) -> Window:
        return Window(self.start, self.stop)


@dataclass(frozen=True)
class SegmentPlan:
    """All segments of one song."""

    total: int
    size: int
    overlap: int
    segments: tuple[Segment, ...]

    def __len__(self) -> int:
        return len(self.segments)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def __getitem__(self, i: int) -> Segment:
        return self.segments[i]

    @property
    def windows(self) -> list[Window]:
        return [s.window for s in self.segments]

    def coverage(self) -> np.ndarray:
        """Sum of blend weights per frame (1 everywhere for a valid plan)."""
        cov = np.zeros(self.total, dtype=np.float64)
        for s in self.segments:
            cov[s.start : s.stop] += s.weights
        return cov


def plan_segments(total: int, size: int = DEFAULT_SEGMENT_FRAMES, overlap: int = DEFAULT_OVERLAP) -> SegmentPlan:
    """Plan segments of ``size`` frames overlapping by >= ``overlap`` over ``total`` frames.

    ``overlap`` is clamped to ``size - 1`` for tiny segment sizes. A song shorter than one
    segment is one (shorter) segment; an empty song has no segments.
    """
    if size < 1:
        raise ValueError(f"segment size must be >= 1 frame, got {size}")
    overlap = max(0, min(int(overlap), size - 1))
    plan = plan_from_windows(plan_windows(int(total), int(size), overlap), int(total), overlap)
    return replace(plan, size=int(size))


def plan_from_windows(windows: list[Window], total: int, overlap: int | None = None) -> SegmentPlan:
    """A plan for given windows (e.g. segments made elsewhere); they must be sorted and cover [0, total)."""
    for a, b in zip(windows, windows[1:]):
        if not (a.start < b.start and b.start <= a.stop and a.stop <= b.stop):
            raise ValueError(
                f"segments must be in order and touch or overlap: [{a.start},{a.stop}) then [{b.start},{b.stop})"
            )
    if windows and (windows[0].start != 0 or windows[-1].stop != total):
        raise ValueError(f"segments cover [{windows[0].start}, {windows[-1].stop}), not the whole [0, {total})")
    weights = window_weights(windows, int(total), "linear") if windows else []
    segs = []
    for i, (w, wt) in enumerate(zip(windows, weights)):
        prev = windows[i - 1] if i > 0 else None
        nxt = windows[i + 1] if i + 1 < len(windows) else None
        # every later window starts at or after the next one, so frames before it are final
        release = nxt.start if nxt is not None else w.stop
        segs.append(
            Segment(
                index=i,
                start=w.start,
                stop=w.stop,
                overlap_prev=max(0, prev.stop - w.start) if prev else 0,
                overlap_next=max(0, w.stop - nxt.start) if nxt else 0,
                release_stop=release,
                weights=wt,
            )
        )
    size = max((w.length for w in windows), default=0)
    if overlap is None:
        overlap = min((a.stop - b.start for a, b in zip(windows, windows[1:])), default=0)
    return SegmentPlan(total=int(total), size=size, overlap=int(overlap), segments=tuple(segs))


def _cat(parts: list[Any], axis: int) -> Any:
    if len(parts) == 1:
        return parts[0]
    if type(parts[0]).__module__.startswith("torch"):
        import torch

        return torch.cat(parts, dim=axis)
    return np.concatenate(parts, axis=axis)


def _take(x: Any, sl: slice, axis: int) -> Any:
    idx = [slice(None)] * x.ndim
    idx[axis] = sl
    return x[tuple(idx)]


class GuidanceFeed:
    """Per-frame guidance for each segment, each frame computed exactly once.

    ``compute(start, stop)`` returns guidance for frames ``[start, stop)`` with frames on
    ``axis``. Calls come in increasing, disjoint ranges; the frames a segment shares with the
    previous one are reused from the previous call's result.
    """

    def __init__(self, plan: SegmentPlan, compute: Callable[[int, int], Any], axis: int = 0) -> None:
        self.plan, self.compute, self.axis = plan, compute, axis
        self._cached: Any = None  # guidance of the previous segment
        self._cached_window: Window | None = None

    def for_segment(self, seg: Segment) -> Any:
        prev, pw = self._cached, self._cached_window
        if prev is not None and pw is not None and pw.start <= seg.start < pw.stop:
            keep = _take(prev, slice(seg.start - pw.start, pw.length), self.axis)
            new_start = pw.stop
        else:
            keep, new_start = None, seg.start
        parts = [keep] if keep is not None else []
        if new_start < seg.stop:
            parts.append(self.compute(new_start, seg.stop))
        out = _cat(parts, self.axis)
        self._cached, self._cached_window = out, seg.window
        return out

    def __iter__(self) -> Iterator[tuple[Segment, Any]]:
        for seg in self.plan:
            yield seg, self.for_segment(seg)


class LatentStitcher:
    """Blend segment outputs into the song, releasing final frames as soon as they are known.

    ``add(segment, values)`` takes the segment's outputs (frames on ``axis``) and returns the
    frames that became final, as ``(start, values)`` with ``start`` the song frame of the first
    one (or None when nothing is final yet). After the last segment every frame has been
    returned exactly once, blended with the plan's weights (identical to
    :func:`stm2pe_core.windows.fuse_windows` over all segments).
    """

    def __init__(self, plan: SegmentPlan, axis: int = 0) -> None:
        self.plan, self.axis = plan, axis
        self._acc: Any = None  # weighted sums for frames [self._acc_start, self._acc_stop)
        self._acc_start = 0
        self._acc_stop = 0
        self.released = 0

    def _weights_like(self, seg: Segment, values: Any) -> Any:
        shape = [1] * values.ndim
        shape[self.axis] = seg.length
        if type(values).__module__.startswith("torch"):
            import torch

            return torch.as_tensor(seg.weights, dtype=values.dtype, device=values.device).reshape(shape)
        return seg.weights.reshape(shape).astype(values.dtype, copy=False)

    def add(self, seg: Segment, values: Any) -> tuple[int, Any] | tuple[None, None]:
        if values.shape[self.axis] != seg.length:
            raise ValueError(f"segment {seg.index} has {seg.length} frames, got {values.shape[self.axis]}")
        if seg.start < self.released:
            raise ValueError(f"segment {seg.index} starts at {seg.start}, before released frame {self.released}")
        weighted = values * self._weights_like(seg, values)
        if self._acc is None:
            self._acc, self._acc_start, self._acc_stop = weighted, seg.start, seg.stop
        else:
            # accumulator covers [acc_start, acc_stop); the segment starts inside or right after it
            lo = seg.start - self._acc_start
            shared = max(0, self._acc_stop - seg.start)
            head = _take(weighted, slice(0, shared), self.axis)
            tail = _take(weighted, slice(shared, None), self.axis)
            acc = self._acc  # owned by the stitcher (a product of values * weights), safe to update
            if shared:
                region = [slice(None)] * acc.ndim
                region[self.axis] = slice(lo, lo + shared)
                acc[tuple(region)] = acc[tuple(region)] + head
            self._acc = _cat([acc, tail], self.axis) if tail.shape[self.axis] else acc
            self._acc_stop = max(self._acc_stop, seg.stop)
        n_final = seg.release_stop - self._acc_start
        if n_final <= 0:
            return None, None
        out = _take(self._acc, slice(0, n_final), self.axis)
        start = self._acc_start
        rest = _take(self._acc, slice(n_final, None), self.axis)
        self._acc = rest if rest.shape[self.axis] else None
        self._acc_start = seg.release_stop
        self.released = seg.release_stop
        if self._acc is None:
            self._acc_stop = self._acc_start
        return start, out
