"""Preview frames from a motion (skeleton without GL, GL maps) and the prefetching thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from stm2pe_core.errors import InputError
from stm2pe_core.types import Motion
from stm2pe_core.video.preview import BACKGROUND, prefetch, preview_frames


def _motion(n: int = 6) -> Motion:
    poses = np.zeros((n, 24, 3), np.float32)
    poses[:, 16, 2] = np.linspace(-1.2, 1.2, n)  # left shoulder: the arm sweeps
    trans = np.tile(np.array([0.0, 0.9, 0.0], np.float32), (n, 1))
    return Motion(poses=poses, trans=trans, betas=np.zeros(10, np.float32), fps=15.0)


def test_skeleton_frames_follow_the_motion():
    frames = list(preview_frames(_motion(), 96, "skeleton"))
    assert len(frames) == 6 and frames[0].shape == (96, 96, 3) and frames[0].dtype == np.uint8
    assert np.all(frames[0][0, 0] == BACKGROUND)
    drawn = [(np.abs(f.astype(int) - BACKGROUND).sum(-1) > 60) for f in frames]
    assert all(d.mean() > 0.01 for d in drawn)
    assert (drawn[0] != drawn[-1]).mean() > 0.002  # the arm moved


@pytest.mark.slow
def test_gl_grid_has_four_maps():
    from stm2pe_core.video.preview import _gl_available

    if not _gl_available():
        pytest.skip("no offscreen OpenGL here (install libosmesa6)")
    (frame,) = list(preview_frames(_motion(1), 128, "grid"))
    assert frame.shape == (128, 128, 3)
    tiles = [frame[:64, :64], frame[:64, 64:], frame[64:, :64], frame[64:, 64:]]
    assert all(t.max() > 50 for t in tiles)  # depth, normal, semantic, skeleton all drew something
    assert np.ptp(tiles[0][..., 0].astype(int) - tiles[0][..., 1]) == 0  # depth is grey


def test_bad_style_and_size():
    with pytest.raises(InputError, match="preview style"):
        next(preview_frames(_motion(), 64, "cartoon"))
    with pytest.raises(InputError, match="too small"):
        next(preview_frames(_motion(), 8, "skeleton"))


def test_prefetch_keeps_order_passes_errors_and_stops_the_worker():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("render failed")

    it = prefetch(failing())
    assert next(it) == 1
    with pytest.raises(ValueError, match="render failed"):
        next(it)

    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = prefetch(endless(), depth=2)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()  # the consumer stops (e.g. cancelled): the worker closes the generator
    assert closed.wait(2.0)
    assert not [t for t in threading.enumerate() if t.name == "stm2pe-preview"]
