"""Rotation conversions between the forms SMPL tools use.

Every function accepts a numpy array or a torch tensor and returns the same type. Numpy inputs
are computed in float64 and returned in the input's float dtype (float64 for integer input);
torch inputs stay on their device/dtype and the maths is differentiable (small-angle branches
use Taylor expansions instead of dividing by zero).

Conventions:
- axis-angle ``[..., 3]``: direction = axis, norm = angle in radians (SMPL's pose parameters).
- matrices ``[..., 3, 3]`` rotate column vectors: ``x' = R @ x``.
- 6D ``[..., 6]``: the first two ROWS of R, flattened (pytorch3d's ``matrix_to_rotation_6d``,
  which EDGE uses), so EDGE-style 6D features convert without a transpose.
- quaternions ``[..., 4]`` are (w, x, y, z).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

Array = Any  # np.ndarray | torch.Tensor

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_rot6d",
    "rot6d_to_matrix",
    "axis_angle_to_quat",
    "quat_to_axis_angle",
    "matrix_to_quat",
    "quat_to_matrix",
    "axis_angle_to_rot6d",
    "rot6d_to_axis_angle",
    "slerp",
]

_SMALL = 1e-6


def _dispatch(fn: Callable[..., torch.Tensor]) -> Callable[..., Array]:
    """Run the torch implementation ``fn`` on numpy inputs too, returning numpy."""

    def wrapper(*args: Array) -> Array:
        if any(isinstance(a, torch.Tensor) for a in args):
            ref = next(a for a in args if isinstance(a, torch.Tensor))
            dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
            targs = [
                (
                    a.to(dtype)
                    if isinstance(a, torch.Tensor)
                    else torch.as_tensor(np.asarray(a), dtype=dtype, device=ref.device)
                )
                for a in args
            ]
            return fn(*targs)
        first = np.asarray(args[0])
        out_dtype = first.dtype if np.issubdtype(first.dtype, np.floating) else np.float64
        targs = [torch.tensor(np.asarray(a, dtype=np.float64)) for a in args]
        return fn(*targs).numpy().astype(out_dtype, copy=False)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _aa_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    theta2 = (aa * aa).sum(-1, keepdim=True)
    small = theta2 < _SMALL**2
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    # sin(t)/t and (1-cos(t))/t^2 with their Taylor series near zero (keeps gradients finite)
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / safe2)
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def _quat_to_aa(q: torch.Tensor) -> torch.Tensor:
    # the shorter of the two equivalent rotations: w >= 0
    q = torch.where(q[..., :1] < 0, -q, q)
    w = q[..., :1]
    v = q[..., 1:]
    n2 = (v * v).sum(-1, keepdim=True)
    small = n2 < _SMALL**2
    n = torch.where(small, torch.ones_like(n2), n2).sqrt()
    angle = 2.0 * torch.atan2(n, w)
    # angle / n = 2 atan(n / w) / n -> (2 / w) (1 - n^2 / (3 w^2)) as n -> 0
    w_safe = w.clamp_min(_SMALL)
    scale = torch.where(small, 2.0 / w_safe * (1.0 - n2 / (3.0 * w_safe * w_safe)), angle / n)
    return v * scale


def _matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4|q_i|^2 for i = w, x, y, z; the largest one gives the best-conditioned formula
    sq = torch.stack(
        [1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22, 1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22], dim=-1
    )
    r = sq.clamp_min(1e-12).sqrt()  # 2|q_i|
    cand = torch.stack(
        [
            torch.stack([r[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1) / (2.0 * r[..., 0:1]),
            torch.stack([m21 - m12, r[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1) / (2.0 * r[..., 1:2]),
            torch.stack([m02 - m20, m10 + m01, r[..., 2] ** 2, m21 + m12], dim=-1) / (2.0 * r[..., 2:3]),
            torch.stack([m10 - m01, m02 + m20, m21 + m12, r[..., 3] ** 2], dim=-1) / (2.0 * r[..., 3:4]),
        ],
        dim=-2,
    )  # [..., 4 candidates, 4]
    best = sq.argmax(dim=-1)
    q = torch.gather(cand, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.where(q[..., :1] < 0, -q, q)


def _quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z),
        2 * (x * y - w * z),
        2 * (x * z + w * y),
        2 * (x * y + w * z),
        1 - 2 * (x * x + z * z),
        2 * (y * z - w * x),
        2 * (x * z - w * y),
        2 * (y * z + w * x),
        1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def _aa_to_quat(aa: torch.Tensor) -> torch.Tensor:
    theta2 = (aa * aa).sum(-1, keepdim=True)
    small = theta2 < _SMALL**2
    theta = torch.where(small, torch.ones_like(theta2), theta2).sqrt()
    half = 0.5 * theta
    s = torch.where(small, 0.5 - theta2 / 48.0, torch.sin(half) / theta)
    w = torch.where(small, 1.0 - theta2 / 8.0, torch.cos(half))
    return torch.cat([w, aa * s], dim=-1)


def _rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-2)


def _slerp(q0: torch.Tensor, q1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    q0 = q0 / q0.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    q1 = q1 / q1.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)  # take the short way round
    dot = dot.abs().clamp(max=1.0)
    if t.ndim < q0.ndim or t.shape[-1:] != (1,):
        t = t[..., None]
    near = dot > 0.9995
    omega = torch.acos(torch.where(near, torch.zeros_like(dot), dot))
    sin_omega = torch.where(near, torch.ones_like(omega), torch.sin(omega))
    w0 = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * omega) / sin_omega)
    w1 = torch.where(near, t, torch.sin(t * omega) / sin_omega)
    out = w0 * q0 + w1 * q1
    return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@_dispatch
def axis_angle_to_matrix(aa: Array) -> Array:
    """Rodrigues' formula: ``[..., 3]`` axis-angle -> ``[..., 3, 3]`` rotation matrices."""
    return _aa_to_matrix(aa)


@_dispatch
def matrix_to_axis_angle(m: Array) -> Array:
    """``[..., 3, 3]`` -> axis-angle ``[..., 3]`` with angle in [0, pi] (via quaternions, stable at pi)."""
    return _quat_to_aa(_matrix_to_quat(m))


@_dispatch
def matrix_to_quat(m: Array) -> Array:
    """``[..., 3, 3]`` -> unit quaternion (w, x, y, z) with w >= 0."""
    return _matrix_to_quat(m)


@_dispatch
def quat_to_matrix(q: Array) -> Array:
    """Unit quaternion (w, x, y, z) ``[..., 4]`` -> ``[..., 3, 3]`` (normalised first)."""
    return _quat_to_matrix(q)


@_dispatch
def matrix_to_rot6d(m: Array) -> Array:
    """First two rows of R, flattened: ``[..., 3, 3]`` -> ``[..., 6]`` (EDGE / pytorch3d layout)."""
    return m[..., :2, :].reshape(*m.shape[:-2], 6)


@_dispatch
def rot6d_to_matrix(d6: Array) -> Array:
    """Gram-Schmidt on the two stored rows: any ``[..., 6]`` -> the nearest-in-spirit rotation."""
    return _rot6d_to_matrix(d6)


@_dispatch
def axis_angle_to_quat(aa: Array) -> Array:
    """``[..., 3]`` axis-angle -> ``[..., 4]`` quaternion (w, x, y, z)."""
    return _aa_to_quat(aa)


@_dispatch
def quat_to_axis_angle(q: Array) -> Array:
    """``[..., 4]`` (w, x, y, z) -> axis-angle with angle in [0, pi]."""
    return _quat_to_aa(q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12))


@_dispatch
def axis_angle_to_rot6d(aa: Array) -> Array:
    """Shortcut ``[..., 3]`` -> ``[..., 6]``."""
    m = _aa_to_matrix(aa)
    return m[..., :2, :].reshape(*m.shape[:-2], 6)


@_dispatch
def rot6d_to_axis_angle(d6: Array) -> Array:
    """Shortcut ``[..., 6]`` -> ``[..., 3]``."""
    return _quat_to_aa(_matrix_to_quat(_rot6d_to_matrix(d6)))


@_dispatch
def slerp(q0: Array, q1: Array, t: Array) -> Array:
    """Spherical interpolation between unit quaternions (w, x, y, z), the short way round.

    ``t`` is a scalar or broadcasts against ``q0[..., 0]``; t=0 gives q0, t=1 gives q1 (up to sign).
    """
    return _slerp(q0, q1, t)
