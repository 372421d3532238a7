"""Rotation conversions: round trips, known rotations, numpy/torch parity and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stm2pe_core.body import rotations as R


def _random_aa(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0.0, math.pi - 1e-3, size=(n, 1))
    return axis * angle


def test_known_rotation_90_about_z():
    m = R.axis_angle_to_matrix(np.array([0.0, 0.0, math.pi / 2]))
    np.testing.assert_allclose(m @ np.array([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(m, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_known_rotation_90_about_x_quaternion():
    q = R.axis_angle_to_quat(np.array([math.pi / 2, 0.0, 0.0]))
    s = math.sqrt(0.5)
    np.testing.assert_allclose(q, [s, s, 0.0, 0.0], atol=1e-12)
    m = R.quat_to_matrix(q)
    np.testing.assert_allclose(m @ np.array([0.0, 1.0, 0.0]), [0.0, 0.0, 1.0], atol=1e-12)  # y-up -> z-up


def test_matrix_axis_angle_round_trip():
    aa = _random_aa(500)
    m = R.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    np.testing.assert_allclose(R.matrix_to_axis_angle(m), aa, atol=1e-9)


def test_round_trip_near_zero_and_near_pi():
    aa = np.array([[0.0, 0.0, 0.0], [1e-9, -2e-9, 0.0], [0.0, math.pi - 1e-7, 0.0], [0.0, 0.0, -math.pi + 1e-6]])
    back = R.axis_angle_to_matrix(R.matrix_to_axis_angle(R.axis_angle_to_matrix(aa)))
    np.testing.assert_allclose(back, R.axis_angle_to_matrix(aa), atol=1e-8)
    np.testing.assert_allclose(R.matrix_to_axis_angle(R.axis_angle_to_matrix(aa[:2])), aa[:2], atol=1e-12)


def test_rot6d_is_first_two_rows_and_round_trips():
    aa = _random_aa(200, seed=1)
    m = R.axis_angle_to_matrix(aa)
    d6 = R.matrix_to_rot6d(m)
    np.testing.assert_allclose(d6[:, :3], m[:, 0, :])
    np.testing.assert_allclose(d6[:, 3:], m[:, 1, :])
    np.testing.assert_allclose(R.rot6d_to_matrix(d6), m, atol=1e-12)
    np.testing.assert_allclose(R.rot6d_to_axis_angle(R.axis_angle_to_rot6d(aa)), aa, atol=1e-9)


def test_rot6d_gram_schmidt_projects_noisy_input():
    d6 = np.array([2.0, 0.0, 0.0, 0.5, 3.0, 0.0])  # scaled, non-orthogonal rows
    m = R.rot6d_to_matrix(d6)
    np.testing.assert_allclose(m, np.eye(3), atol=1e-12)


def test_quaternion_round_trip_and_sign():
    aa = _random_aa(300, seed=2)
    q = R.axis_angle_to_quat(aa)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(R.quat_to_axis_angle(q), aa, atol=1e-9)
    np.testing.assert_allclose(R.quat_to_axis_angle(-q), aa, atol=1e-9)  # q and -q: same rotation
    np.testing.assert_allclose(R.matrix_to_quat(R.axis_angle_to_matrix(aa)), q, atol=1e-9)


def test_slerp_endpoints_midpoint_and_short_path():
    q0 = R.axis_angle_to_quat(np.array([0.0, 0.0, 0.0]))
    q1 = R.axis_angle_to_quat(np.array([0.0, 1.2, 0.0]))
    np.testing.assert_allclose(R.slerp(q0, q1, 0.0), q0, atol=1e-12)
    np.testing.assert_allclose(R.slerp(q0, q1, 1.0), q1, atol=1e-12)
    np.testing.assert_allclose(R.quat_to_axis_angle(R.slerp(q0, q1, 0.25)), [0.0, 0.3, 0.0], atol=1e-12)
    # -q1 is the same rotation: slerp must still take the 0.3 rad path, not the long way
    np.testing.assert_allclose(R.quat_to_axis_angle(R.slerp(q0, -q1, 0.25)), [0.0, 0.3, 0.0], atol=1e-12)
    # batched t
    t = np.array([0.0, 0.5, 1.0])
    out = R.slerp(np.broadcast_to(q0, (3, 4)), np.broadcast_to(q1, (3, 4)), t)
    np.testing.assert_allclose(R.quat_to_axis_angle(out)[:, 1], [0.0, 0.6, 1.2], atol=1e-12)


def test_types_and_dtypes_preserved():
    aa32 = _random_aa(4).astype(np.float32)
    out = R.axis_angle_to_matrix(aa32)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (4, 3, 3)
    t = torch.from_numpy(aa32)
    out_t = R.axis_angle_to_matrix(t)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), out, atol=1e-6)
    assert R.matrix_to_rot6d(out_t).shape == (4, 6)
    assert R.slerp(R.axis_angle_to_quat(t), R.axis_angle_to_quat(t * 0.5), torch.tensor(0.5)).shape == (4, 4)


@pytest.mark.parametrize("fn", ["axis_angle_to_matrix", "axis_angle_to_quat", "axis_angle_to_rot6d"])
def test_torch_gradients_finite_at_zero(fn):
    aa = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    getattr(R, fn)(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()


def test_torch_gradcheck_round_trip():
    aa = torch.tensor(_random_aa(3, seed=5) * 0.8, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: R.matrix_to_axis_angle(R.axis_angle_to_matrix(x)), (aa,))
    d6 = torch.tensor(np.random.default_rng(0).normal(size=(3, 6)), requires_grad=True)
    assert torch.autograd.gradcheck(R.rot6d_to_matrix, (d6,))
