"""Context windows inside a segment: the motion modules see at most 32 frames (24 by default).

Uses the project's one window planner (stm2pe_core.windows); noise predictions are fused per
frame, with a linear cross-fade (default) or CHAMP's uniform average. Unlike CHAMP, windows do
not wrap around from the last frames to the first.
"""

from __future__ import annotations

from ..windows import Fuse, Window, fuse_windows, plan_windows

DEFAULT_CONTEXT = 24  # CHAMP stage-2 training length
DEFAULT_OVERLAP = 4


def context_windows(num_frames: int, size: int = DEFAULT_CONTEXT, overlap: int = DEFAULT_OVERLAP) -> list[Window]:
    size = max(1, min(size, num_frames))
    return plan_windows(num_frames, size, min(overlap, size - 1))


def fuse_predictions(windows: list[Window], preds: list, num_frames: int, mode: Fuse = "linear"):
    """Per-window predictions (V, C, f, h, w) → (V, C, F, h, w)."""
    if len(windows) == 1:
        return preds[0]
    return fuse_windows(windows, preds, num_frames, mode=mode, axis=2)
