import numpy as np
import pytest
import torch

from stm2pe_core.windows import Window, fuse_windows, plan_windows, window_weights


@pytest.mark.parametrize("total", [1, 5, 24, 25, 44, 75, 100, 451, 9000])
@pytest.mark.parametrize("size,overlap", [(24, 4), (75, 8), (150, 75)])
def test_plan_covers_every_frame_with_min_overlap(total, size, overlap):
    wins = plan_windows(total, size, overlap)
    assert wins[0].start == 0 and wins[-1].stop == total
    covered = np.zeros(total, int)
    for w in wins:
        assert w.length == min(size, total)
        covered[w.slice()] += 1
    assert covered.min() >= 1
    for a, b in zip(wins, wins[1:]):
        assert a.start < b.start and a.stop - b.start >= overlap


def test_known_plan():
    assert plan_windows(44, 24, 4) == [Window(0, 24), Window(20, 44)]
    assert plan_windows(50, 24, 4) == [Window(0, 24), Window(13, 37), Window(26, 50)]
    assert plan_windows(64, 24, 4) == [Window(0, 24), Window(20, 44), Window(40, 64)]
    assert plan_windows(0, 24, 4) == []


def test_bad_arguments():
    with pytest.raises(ValueError):
        plan_windows(10, 4, 4)
    with pytest.raises(ValueError):
        plan_windows(10, 0, 0)


@pytest.mark.parametrize("mode", ["linear", "uniform"])
def test_weights_partition_unity(mode):
    wins = plan_windows(137, 24, 6)
    acc = np.zeros(137)
    for w, wt in zip(wins, window_weights(wins, 137, mode)):
        acc[w.slice()] += wt
    np.testing.assert_allclose(acc, 1.0, atol=1e-6)


def test_linear_fuse_cross_fades_without_jump():
    total, size, overlap = 60, 24, 8
    wins = plan_windows(total, size, overlap)
    # each window predicts a constant: fused signal must move monotonically between them
    outs = [np.full((w.length, 2), float(i)) for i, w in enumerate(wins)]
    fused = fuse_windows(wins, outs, total)
    assert fused.shape == (total, 2)
    diffs = np.diff(fused[:, 0])
    assert np.all(diffs >= -1e-9)
    assert diffs.max() <= 2.0 / (overlap + 1) + 1e-6  # spread over the overlaps, no step


def test_fuse_identity_and_torch():
    total = 50
    wins = plan_windows(total, 24, 4)
    signal = torch.randn(2, total, 3)
    outs = [signal[:, w.slice()] for w in wins]
    for mode in ("linear", "uniform"):
        fused = fuse_windows(wins, outs, total, mode=mode, axis=1)
        torch.testing.assert_close(fused, signal, atol=1e-6, rtol=1e-6)
