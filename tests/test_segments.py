"""Song segment plans: every frame made once after blending, for songs of 1 frame to 10 minutes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stm2pe_core.diffusion.segments import GuidanceFeed, LatentStitcher, plan_segments
from stm2pe_core.windows import fuse_windows

TEN_MINUTES = 10 * 60 * 15  # frames at 15 fps

LENGTHS = sorted(
    set(range(1, 400)) | set(np.random.default_rng(0).integers(400, TEN_MINUTES, 60).tolist()) | {TEN_MINUTES}
)


def _check_plan(total: int, size: int, overlap: int) -> None:
    plan = plan_segments(total, size, overlap)
    # blend weights sum to one at every frame: each frame is made exactly once after blending
    np.testing.assert_allclose(plan.coverage(), 1.0, atol=1e-5)
    # releases partition [0, total): each frame leaves the stitcher exactly once, in order
    released = [0] + [s.release_stop for s in plan]
    assert released[-1] == total and all(b >= a for a, b in zip(released, released[1:]))
    for prev, cur in zip(plan.segments, plan.segments[1:]):
        assert cur.overlap_prev == prev.overlap_next == prev.stop - cur.start
        assert cur.overlap_prev >= min(overlap, size - 1)  # neighbours share at least the overlap
        assert prev.release_stop == cur.start
    if total >= size:
        assert all(s.length == size for s in plan)
    else:
        assert [(s.start, s.stop) for s in plan] == [(0, total)]


@pytest.mark.parametrize("size,overlap", [(75, 8), (75, 15), (24, 4)])
def test_plans_cover_every_frame_once_from_1_frame_to_10_minutes(size, overlap):
    for total in LENGTHS:
        _check_plan(total, size, overlap)


def test_ten_minute_plan_numbers():
    plan = plan_segments(TEN_MINUTES, 75, 8)
    assert len(plan) == -(-(TEN_MINUTES - 8) // 67) == 135
    assert plan[0].start == 0 and plan[-1].stop == TEN_MINUTES
    assert plan[0].overlap_prev == 0 and plan[-1].overlap_next == 0
    assert plan_segments(0).segments == ()
    assert plan_segments(5, size=1, overlap=8).overlap == 0  # clamped


@pytest.mark.parametrize("total", [1, 60, 75, 76, 136, 200, 1001])
def test_streaming_stitch_equals_fuse_windows(total):
    plan = plan_segments(total, 75, 8)
    rng = np.random.default_rng(total)
    outputs = [rng.standard_normal((2, s.length, 3)).astype(np.float32) for s in plan]
    expected = fuse_windows(plan.windows, outputs, total, mode="linear", axis=1)
    st = LatentStitcher(plan, axis=1)
    pieces, held_max = [], 0
    for seg, out in zip(plan, outputs):
        start, vals = st.add(seg, torch.from_numpy(out))
        if start is not None:
            assert start == sum(p.shape[1] for p in pieces)  # in order, no gaps
            pieces.append(vals.numpy())
        held_max = max(held_max, 0 if st._acc is None else st._acc.shape[1])
    got = np.concatenate(pieces, axis=1)
    assert got.shape == (2, total, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert held_max <= 75  # never more than one segment of partial sums


def test_stitch_of_constant_is_constant_and_overlaps_crossfade():
    plan = plan_segments(200, 75, 8)
    st = LatentStitcher(plan)
    chunks = [st.add(s, np.full((s.length,), float(s.index), np.float32))[1] for s in plan]
    song = np.concatenate(chunks)
    # inside a single segment the value is that segment's index; in overlaps it moves monotonically
    s0, s1 = plan[0], plan[1]
    assert song[0] == 0.0 and song[s1.start - 1] == 0.0 and song[s0.stop] == 1.0
    ramp = song[s1.start : s0.stop]
    assert np.all(np.diff(ramp) > 0) and 0 < ramp[0] < ramp[-1] < 1


def test_guidance_feed_computes_each_frame_once():
    plan = plan_segments(500, 75, 20)
    calls = []

    def compute(a: int, b: int) -> np.ndarray:
        calls.append((a, b))
        return np.arange(a, b, dtype=np.float32)[:, None]

    for seg, g in GuidanceFeed(plan, compute):
        np.testing.assert_array_equal(g[:, 0], np.arange(seg.start, seg.stop))
    starts = [a for a, _ in calls]
    assert calls[0][0] == 0 and calls[-1][1] == 500
    assert all(b == a2 for (_, b), a2 in zip(calls, starts[1:]))  # disjoint, contiguous ranges
    assert sum(b - a for a, b in calls) == 500
