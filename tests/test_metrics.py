"""Dance metrics against cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from training import metrics as M

FPS = 15.0


def bouncing(n: int, beat_frames: np.ndarray) -> np.ndarray:
    """Joints whose per-frame step (frame i -> i+1) is smallest exactly at ``beat_frames``."""
    i = np.arange(n - 1)
    dist = np.abs(i[:, None] - beat_frames[None, :]).min(1)
    step = 0.002 + 0.01 * np.minimum(dist, 5)
    y = np.concatenate([[0.0], np.cumsum(step * np.where((i // 3) % 2 == 0, 1.0, -1.0))])
    joints = np.zeros((n, 24, 3))
    joints[:, :, 1] = y[:, None]
    joints[:, :, 0] = np.arange(24)[None] * 0.1
    return joints


def test_bas_from_beat_times_known_values():
    beats = np.array([1.0, 2.0, 3.0])
    assert M.beat_alignment(beats, beats, "fact") == pytest.approx(1.0)
    assert M.beat_alignment(beats, beats, "bailando") == pytest.approx(1.0)
    d = 0.05  # one sigma late
    assert M.beat_alignment(beats + d, beats, "fact") == pytest.approx(np.exp(-0.5))
    # FACT averages over motion beats, Bailando over music beats: one extra music beat far away
    music = np.array([1.0, 2.0, 3.0, 10.0])
    assert M.beat_alignment(beats, music, "fact") == pytest.approx(1.0)
    assert M.beat_alignment(beats, music, "bailando") == pytest.approx(0.75)
    assert M.beat_alignment(np.array([]), music, "fact") == 0.0


def test_bas_on_motion_known_values():
    n = 120
    beat_frames = np.arange(6, n - 6, 10)  # 90 BPM at 15 fps
    joints = bouncing(n, beat_frames)
    found = M.motion_beats(joints, FPS, "fact")
    np.testing.assert_array_equal(np.round(found * FPS).astype(int), beat_frames)
    music = beat_frames / FPS
    # motion beats exactly on the music beats: FACT score 1
    assert M.beat_align_score(joints, music, FPS, "fact") == pytest.approx(1.0)
    # music two frames later (0.133 s): exp(-d^2 / 2 sigma^2) with sigma = 0.05 s
    shifted = M.beat_align_score(joints, music + 2 / FPS, FPS, "fact")
    assert shifted == pytest.approx(np.exp(-((2 / FPS) ** 2) / (2 * 0.05**2)), rel=1e-6)
    # frame-constant variant (sigma = 3 frames = 0.2 s at 15 fps) is far more lenient
    lenient = M.beat_alignment(found, music + 2 / FPS, "fact", sigma=3 / FPS)
    assert lenient == pytest.approx(np.exp(-4 / 18), rel=1e-6)
    # and its extrema window of 10 frames (0.67 s) finds no beat 10 frames apart (ties)
    assert M.beat_align_score(joints, music, FPS, "fact", sigma_scale="frames") == 0.0
    # Bailando smooths the envelope; its minima still land on the beats here
    assert M.beat_align_score(joints, music, FPS, "bailando") > 0.9


def test_mean_joint_speed_and_resample():
    n = 31
    joints = np.zeros((n, 24, 3))
    joints[:, :, 0] = np.arange(n)[:, None] / FPS * 1.5  # 1.5 m/s
    assert M.mean_joint_speed(joints, FPS) == pytest.approx(1.5)
    up = M.resample(joints, FPS, 30.0)
    assert len(up) == 61 and M.mean_joint_speed(up, 30.0) == pytest.approx(1.5)


def test_pfc_sanity():
    n = 60
    t = np.arange(n) / FPS
    base = np.zeros((n, 24, 3))
    base[:, :, 1] = 1.0
    # accelerating root, feet planted: no foot-contact violation
    planted = base.copy()
    planted[:, 0, 0] = 0.5 * t**2
    assert M.pfc(planted, FPS) == pytest.approx(0.0, abs=1e-12)
    # same root, both feet sliding: positive score; faster sliding: larger
    slide = planted.copy()
    for j in (7, 10, 8, 11):
        slide[:, j, 0] = 0.5 * t**2
    fast = planted.copy()
    for j in (7, 10, 8, 11):
        fast[:, j, 0] = 1.0 * t**2
    a, b = M.pfc(slide, FPS), M.pfc(fast, FPS)
    assert a > 0 and b > a
    # scale is quadratic in length units (EDGE's pitfall)
    assert M.pfc(slide * 2, FPS) == pytest.approx(4 * a, rel=1e-6)


def test_diversity():
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.normal(0, 0.02, (50, 24, 3)), 0)
    b = np.cumsum(rng.normal(0, 0.05, (50, 24, 3)), 0)
    assert M.diversity([a, a, a], FPS) == pytest.approx(0.0, abs=1e-6)
    assert M.diversity([a, b], FPS) > 1.0
    assert M.kinetic_features(a, FPS).shape == (72,)
