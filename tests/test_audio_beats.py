"""The numpy beat tracker (stm2pe_core.audio.beats) against librosa.beat.beat_track."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from stm2pe_core.audio import beats


def _envelope(rng: np.random.Generator, n: int, period: float, silent_intro: bool) -> np.ndarray:
    env = (np.abs(rng.standard_normal(n)) ** 3).astype(np.float32)
    grid = np.arange(0, n, period)
    idx = np.clip(grid + rng.normal(0, 1, len(grid)), 0, n - 1).astype(int)
    env[idx] += rng.uniform(1, 10, len(idx)).astype(np.float32)
    if silent_intro:
        env[: n // 5] = 0
    return env


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_beats_as_librosa(dtype):
    librosa_beat = pytest.importorskip("librosa.beat")
    rng = np.random.default_rng(3)
    for k in range(12):
        n = int(rng.integers(300, 3000))
        period = float(rng.uniform(15, 50))  # 72-240 BPM at 60 Hz
        env = _envelope(rng, n, period, silent_intro=k % 3 == 0).astype(dtype)
        bpm = 3600.0 / period * float(rng.uniform(0.92, 1.08))  # a slightly wrong tempo too
        _, want = librosa_beat.beat_track(onset_envelope=env, sr=15360, hop_length=256, bpm=bpm, tightness=100)
        got = beats.beat_track(env, 60.0, bpm, tightness=100.0)
        np.testing.assert_array_equal(got, want)


def test_clean_pulse_train_gives_every_beat():
    env = np.zeros(1800, np.float32)
    env[30::36] = 1.0  # 100 BPM at 60 Hz, first beat at 0.5 s
    got = beats.beat_track(env, 60.0, 100.0)
    np.testing.assert_array_equal(got, np.arange(30, 1800, 36))


def test_silence_and_bad_arguments():
    assert len(beats.beat_track(np.zeros(500, np.float32), 60.0, 120.0)) == 0
    with pytest.raises(ValueError):
        beats.beat_track(np.ones(500), 60.0, 0.0)
    with pytest.raises(ValueError):
        beats.beat_track(np.ones((2, 500)), 60.0, 120.0)


def test_music_analysis_does_not_import_librosa_beat():
    """librosa.beat JIT-compiles an uncached numba kernel at import (~1.5 s per process)."""
    code = (
        "import sys, numpy as np\n"
        "from stm2pe_core.audio.analysis import analyse, analysis_grid\n"
        "g = analysis_grid(15)\n"
        "t = np.arange(4 * g.sample_rate) / g.sample_rate\n"
        "y = (np.sin(2 * np.pi * 880 * t) * (np.mod(t, 0.5) < 0.03)).astype(np.float32)\n"
        "m = analyse(y, g, 'x', 'clicks')\n"
        "assert abs(m.tempo - 120) < 2.4, m.tempo\n"
        "print('librosa.beat' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
