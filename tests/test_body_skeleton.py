"""Kinematic tree and forward kinematics in SMPL semantics."""

from __future__ import annotations

import math

import numpy as np
import torch

from stm2pe_core.body import skeleton as S
from stm2pe_core.body.rotations import axis_angle_to_matrix


def test_tree_tables():
    assert len(S.SMPL_JOINT_NAMES) == 24 and len(S.SMPL_PARENTS) == 24
    assert S.SMPL_PARENTS[0] == -1
    assert all(0 <= p < j for j, p in enumerate(S.SMPL_PARENTS) if j > 0)  # topological order
    assert S.SMPL_JOINT_NAMES[S.SMPL_PARENTS[18]] == "left_shoulder"
    assert all(S.SMPL_MIRROR[S.SMPL_MIRROR[j]] == j for j in range(24))


def test_rest_joints_plausible_proportions():
    r = S.rest_joints()
    assert r.shape == (24, 3)
    np.testing.assert_allclose(r[0], [0.0, -0.22, 0.03])
    # left side has +x, mirrored right side
    assert r[16, 0] > 0.15 and r[17, 0] < -0.15
    np.testing.assert_allclose(r[1:, 0][np.array(S.SMPL_MIRROR[1:]) - 1], -r[1:, 0], atol=1e-12)
    height = r[15, 1] - r[7, 1]
    assert 1.3 < height < 1.6  # head joint to ankle of a ~1.7 m adult
    assert r[10, 2] > r[7, 2]  # toes point forward (+z)
    assert abs(S.skeleton_height() - height) < 1e-12


def test_fk_identity_pose_is_rest():
    poses = np.zeros((3, 24, 3))
    trans = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [-0.5, 0.1, 0.0]])
    j = S.forward_kinematics(poses, trans)
    np.testing.assert_allclose(j, S.rest_joints()[None] + trans[:, None], atol=1e-12)


def test_fk_root_rotation_about_pelvis_joint():
    poses = np.zeros((1, 24, 3))
    poses[0, 0] = [0.0, math.pi, 0.0]  # turn around
    trans = np.array([[0.3, 0.0, -1.0]])
    j = S.forward_kinematics(poses, trans)[0]
    rest = S.rest_joints()
    np.testing.assert_allclose(j[0], rest[0] + trans[0], atol=1e-12)  # pelvis = J0 + transl
    rot = axis_angle_to_matrix(poses[0, 0])
    np.testing.assert_allclose(j, (rest - rest[0]) @ rot.T + rest[0] + trans[0], atol=1e-12)
    assert j[16, 0] < j[0, 0]  # the left shoulder is now on the -x side


def test_fk_elbow_bend_moves_only_forearm_chain():
    poses = np.zeros((1, 24, 3))
    poses[0, 18] = [0.0, 0.0, math.pi / 2]  # left elbow, 90 deg about +z
    j = S.forward_kinematics(poses)[0]
    rest = S.rest_joints()
    np.testing.assert_allclose(j[:20][[i for i in range(20) if i != 18]], rest[:20][[i for i in range(20) if i != 18]])
    fore = rest[20] - rest[18]
    expect = np.array([-fore[1], fore[0], fore[2]])  # rotate (x,y) by +90 deg about z
    np.testing.assert_allclose(j[20] - j[18], expect, atol=1e-12)
    # bone lengths never change
    for c in range(1, 24):
        p = S.SMPL_PARENTS[c]
        assert abs(np.linalg.norm(j[c] - j[p]) - np.linalg.norm(rest[c] - rest[p])) < 1e-12


def test_fk_accepts_flat_poses_custom_rest_and_torch_grad():
    rng = np.random.default_rng(0)
    poses = rng.normal(scale=0.3, size=(2, 72))
    rest = S.rest_joints() * 1.1
    a = S.forward_kinematics(poses, None, rest)
    pt = torch.tensor(poses, requires_grad=True)
    tt = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    b = S.forward_kinematics(pt, tt, torch.tensor(rest))
    assert isinstance(b, torch.Tensor) and b.shape == (2, 24, 3)
    np.testing.assert_allclose(b.detach().numpy(), a, atol=1e-12)
    b[:, 20].sum().backward()
    assert pt.grad.abs().sum() > 0 and torch.allclose(tt.grad, torch.ones(2, 3, dtype=torch.float64))
    np.testing.assert_allclose(a[:, 0], np.broadcast_to(rest[0], (2, 3)), atol=1e-12)


def test_global_rotations_compose_down_the_chain():
    rng = np.random.default_rng(1)
    poses = rng.normal(scale=0.4, size=(4, 24, 3))
    rot, pos = S.global_transforms(poses)
    local = axis_angle_to_matrix(poses)
    chain = [20, 18, 16, 13, 9, 6, 3, 0]  # left wrist up to the root
    expect = np.broadcast_to(np.eye(3), (4, 3, 3))
    for j in reversed(chain):
        expect = expect @ local[:, j]
    np.testing.assert_allclose(rot[:, 20], expect, atol=1e-12)
    np.testing.assert_allclose(pos, S.forward_kinematics(poses))
