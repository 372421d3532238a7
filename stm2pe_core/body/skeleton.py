"""SMPL's 24-joint kinematic tree and forward kinematics, without needing an SMPL model file.

World frame: y-up, metres, +x = the body's left, +z = the direction the body faces in the rest
pose (SMPL's template frame).

``rest_joints()`` is an approximate neutral-body table made for the built-in preview body: a
symmetric, rounded set of bone offsets with adult proportions (about 1.70 m tall, pelvis joint
at y = -0.22 m like SMPL's template). When a real SMPL model is loaded, its ``J_regressor``
gives the exact joints for any betas (see :mod:`stm2pe_core.body.smpl`), and those can be
passed as ``rest=`` to :func:`forward_kinematics`.

FK follows SMPL's semantics exactly: every joint rotates about its own rest position, the root
rotation (``poses[:, 0]``, SMPL's ``global_orient``) rotates about J0, and ``trans`` (SMPL's
``transl``) is added afterwards. Hence the posed pelvis is ``rest[0] + trans`` whatever the
root rotation, and the posed joints equal what ``smplx.SMPL(...).joints[:, :24]`` returns for
the same rest joints.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .rotations import axis_angle_to_matrix

Array = Any  # np.ndarray | torch.Tensor

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)

SMPL_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

NUM_JOINTS = 24

# Index of the left/right counterpart of each joint (for mirroring motions).
SMPL_MIRROR: tuple[int, ...] = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)

# Pelvis position of the neutral template and each joint's offset from its parent (metres).
# Values for the left side; the right side mirrors x. Rounded adult proportions, our own table.
_PELVIS = (0.0, -0.22, 0.03)
_LEFT_OFFSETS: dict[int, tuple[float, float, float]] = {
    1: (0.060, -0.090, -0.010),  # left hip from pelvis
    3: (0.000, 0.110, -0.025),  # spine1 from pelvis
    4: (0.040, -0.380, 0.000),  # knee from hip (thigh)
    6: (0.000, 0.135, 0.020),  # spine2 from spine1
    7: (-0.015, -0.420, -0.035),  # ankle from knee (shin)
    9: (0.000, 0.055, 0.000),  # spine3 from spine2
    10: (0.040, -0.060, 0.125),  # toe base from ankle (foot)
    12: (0.000, 0.215, -0.030),  # neck from spine3
    13: (0.075, 0.115, -0.020),  # collar from spine3
    15: (0.000, 0.090, 0.050),  # head from neck
    16: (0.115, 0.045, -0.015),  # shoulder from collar
    18: (0.260, -0.015, -0.025),  # elbow from shoulder (upper arm)
    20: (0.265, 0.010, -0.007),  # wrist from elbow (forearm)
    22: (0.088, -0.010, -0.013),  # hand (finger base) from wrist
}


def _offset_table() -> np.ndarray:
    off = np.zeros((NUM_JOINTS, 3), dtype=np.float64)
    for j, v in _LEFT_OFFSETS.items():
        off[j] = v
        m = SMPL_MIRROR[j]
        if m != j:
            off[m] = (-v[0], v[1], v[2])
    return off


_OFFSETS = _offset_table()


def rest_joints(betas: Array | None = None) -> np.ndarray:
    """(24, 3) rest-pose joints of the built-in neutral template, metres, y-up.

    The preview template has no shape space; ``betas`` is accepted for API symmetry with SMPL
    and ignored (use :class:`stm2pe_core.body.smpl.SMPLBody` for shape-dependent joints).
    """
    del betas
    joints = np.zeros((NUM_JOINTS, 3), dtype=np.float64)
    joints[0] = _PELVIS
    for j in range(1, NUM_JOINTS):
        joints[j] = joints[SMPL_PARENTS[j]] + _OFFSETS[j]
    return joints


def _global_transforms(rot: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain local rotations (N,24,3,3) down the tree: global rotations and joint positions."""
    parents = SMPL_PARENTS
    rel = rest.clone()
    rel[..., 1:, :] = rest[..., 1:, :] - rest[..., list(parents[1:]), :]
    g_rot: list[torch.Tensor] = [rot[:, 0]]
    g_pos: list[torch.Tensor] = [rest[..., 0, :].expand(rot.shape[0], 3)]
    for j in range(1, NUM_JOINTS):
        p = parents[j]
        g_rot.append(g_rot[p] @ rot[:, j])
        g_pos.append(g_pos[p] + (g_rot[p] @ rel[..., j, :, None].expand(rot.shape[0], 3, 1))[..., 0])
    return torch.stack(g_rot, dim=1), torch.stack(g_pos, dim=1)


def global_transforms(poses: Array, trans: Array | None = None, rest: Array | None = None) -> tuple[Array, Array]:
    """Global joint rotations (N,24,3,3) and positions (N,24,3) for axis-angle ``poses`` (N,24,3).

    The skinning matrix of joint j maps a rest point x to ``R_j (x - rest_j) + pos_j``.
    """
    is_np = not isinstance(poses, torch.Tensor)
    if is_np:
        p = torch.from_numpy(np.asarray(poses, dtype=np.float64))
        dtype, device = p.dtype, p.device
    else:
        p = poses
        dtype = p.dtype if p.is_floating_point() else torch.get_default_dtype()
        device = p.device
        p = p.to(dtype)
    if p.ndim == 2:
        p = p.reshape(p.shape[0], NUM_JOINTS, 3)
    r = rest_joints() if rest is None else rest
    r_t = (
        r.to(device=device, dtype=dtype)
        if isinstance(r, torch.Tensor)
        else torch.as_tensor(np.asarray(r), dtype=dtype, device=device)
    )
    g_rot, g_pos = _global_transforms(axis_angle_to_matrix(p), r_t)
    if trans is not None:
        t = (
            trans.to(device=device, dtype=dtype)
            if isinstance(trans, torch.Tensor)
            else torch.as_tensor(np.asarray(trans), dtype=dtype, device=device)
        )
        g_pos = g_pos + t[:, None, :]
    if is_np:
        out_dtype = np.asarray(poses).dtype if np.issubdtype(np.asarray(poses).dtype, np.floating) else np.float64
        return g_rot.numpy().astype(out_dtype, copy=False), g_pos.numpy().astype(out_dtype, copy=False)
    return g_rot, g_pos


def forward_kinematics(poses: Array, trans: Array | None = None, rest: Array | None = None) -> Array:
    """Posed joint positions (N,24,3) in SMPL semantics (see the module docstring).

    ``poses``: (N,24,3) or (N,72) axis-angle, joint 0 = global orientation; ``trans``: (N,3) SMPL
    ``transl`` or None; ``rest``: (24,3) rest joints (default: :func:`rest_joints`).
    Returns the input's array type; the torch path is differentiable in poses, trans and rest.
    """
    return global_transforms(poses, trans, rest)[1]


def skeleton_height(rest: Array | None = None) -> float:
    """Head-joint to lowest-ankle height of a rest skeleton (metres), for scale estimates."""
    r = np.asarray(rest_joints() if rest is None else rest)
    return float(r[15, 1] - min(r[7, 1], r[8, 1]))
