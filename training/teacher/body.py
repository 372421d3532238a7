"""The teacher's puppet: a small set of named degrees of freedom (DOFs) mapped onto SMPL joint
rotations, joint limits applied in DOF space, and the ground contact pass (pelvis height so the
lowest foot touches the floor, root translation that keeps the stance foot still).

DOFs are angles in degrees (and ``hop`` in metres). Left-side joint rotations are built from
the DOFs; the right side uses the same formulas mirrored through the body's sagittal plane
(x -> -x), so a symmetric DOF vector gives a symmetric pose. SMPL frame: y up, +x = body left,
+z = facing direction in the rest pose.
"""

from __future__ import annotations

import numpy as np

from stm2pe_core.body.rotations import matrix_to_axis_angle
from stm2pe_core.body.skeleton import forward_kinematics, rest_joints

# name -> (low, high, neutral)
_SIDE = {
    "sh_abd": (-5.0, 175.0, 12.0),  # arm raised sideways: 0 = hanging, 90 = T, 170 = overhead
    "sh_flex": (-50.0, 170.0, 5.0),  # arm raised forwards
    "sh_twist": (-60.0, 100.0, 0.0),  # internal rotation about the upper arm
    "shrug": (-10.0, 30.0, 0.0),  # collar raise (shoulder pop)
    "elbow": (0.0, 145.0, 15.0),
    "wrist": (-40.0, 40.0, 0.0),
    "hip_flex": (-30.0, 110.0, 3.0),
    "hip_abd": (-15.0, 50.0, 3.0),
    "hip_rot": (-30.0, 35.0, 5.0),
    "knee": (0.0, 140.0, 6.0),
    "ankle": (-30.0, 45.0, -3.0),  # + = toes down
}
_CENTRE = {
    "yaw": (-1e9, 1e9, 0.0),  # root turn, unlimited (turns accumulate)
    "pitch": (-20.0, 30.0, 0.0),  # root tilt forwards
    "roll": (-20.0, 20.0, 0.0),  # root tilt to the body's left
    "lean": (-25.0, 45.0, 3.0),  # spine bend forwards (split over spine1-3)
    "side": (-30.0, 30.0, 0.0),  # spine bend to the left
    "twist": (-45.0, 45.0, 0.0),  # spine turn to the left
    "nod": (-30.0, 30.0, 0.0),  # head down
    "tilt": (-25.0, 25.0, 0.0),  # head to the left
    "turn": (-50.0, 50.0, 0.0),  # head to the left
    "hop": (0.0, 0.6, 0.0),  # metres of extra lift (jumps)
}
DOF_NAMES: tuple[str, ...] = tuple(_CENTRE) + tuple(f"l_{k}" for k in _SIDE) + tuple(f"r_{k}" for k in _SIDE)
DOF_INDEX = {n: i for i, n in enumerate(DOF_NAMES)}
_ALL = {**_CENTRE, **{f"l_{k}": v for k, v in _SIDE.items()}, **{f"r_{k}": v for k, v in _SIDE.items()}}
DOF_LOW = np.array([_ALL[n][0] for n in DOF_NAMES])
DOF_HIGH = np.array([_ALL[n][1] for n in DOF_NAMES])
NEUTRAL = np.array([_ALL[n][2] for n in DOF_NAMES])

# Largest rotation angle (degrees) each SMPL joint may take; poses inside the DOF limits stay
# inside these (checked in the tests). Joint 0 (global orientation) is unlimited.
JOINT_MAX_DEG = np.array(
    [360, 125, 125, 25, 145, 145, 25, 50, 50, 25, 10, 10, 40, 35, 35, 40, 180, 180, 145, 145, 45, 45, 10, 10],
    dtype=np.float64,
)

_MIRROR_JOINTS = {1: 2, 4: 5, 7: 8, 13: 14, 16: 17, 18: 19, 20: 21}
_M = np.diag([-1.0, 1.0, 1.0])

FOOT_JOINTS = (7, 10, 8, 11)  # left ankle, left toe, right ankle, right toe (EDGE's contact joints)
TOE_CLEARANCE = 0.03  # toe joint height above the floor when standing flat (metres)


def clamp(dofs: np.ndarray) -> np.ndarray:
    return np.clip(dofs, DOF_LOW, DOF_HIGH)


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _side_rotations(d: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Left-side joint rotations (N,3,3) for one side's DOFs (degrees -> radians inside)."""
    r = {k: np.deg2rad(v) for k, v in d.items()}
    return {
        13: _rz(r["shrug"]),
        16: _rx(-r["sh_flex"]) @ _rz(r["sh_abd"] - np.pi / 2) @ _rx(r["sh_twist"]),
        18: _ry(-r["elbow"]),
        20: _rz(r["wrist"]),
        1: _rx(-r["hip_flex"]) @ _rz(r["hip_abd"]) @ _ry(-r["hip_rot"]),
        4: _rx(r["knee"]),
        7: _rx(r["ankle"]),
    }


def dofs_to_poses(dofs: np.ndarray) -> np.ndarray:
    """(N, D) DOFs in degrees -> (N, 24, 3) SMPL axis-angle poses."""
    dofs = clamp(np.asarray(dofs, dtype=np.float64))
    n = dofs.shape[0]
    col = {name: dofs[:, i] for i, name in enumerate(DOF_NAMES)}
    mats = np.tile(np.eye(3), (n, 24, 1, 1))
    rad = {k: np.deg2rad(v) for k, v in col.items()}
    mats[:, 0] = _ry(rad["yaw"]) @ _rx(rad["pitch"]) @ _rz(-rad["roll"])
    spine = _rx(rad["lean"] / 3) @ _rz(-rad["side"] / 3) @ _ry(rad["twist"] / 3)
    for j in (3, 6, 9):
        mats[:, j] = spine
    head = _rx(rad["nod"] / 2) @ _rz(-rad["tilt"] / 2) @ _ry(rad["turn"] / 2)
    mats[:, 12] = head
    mats[:, 15] = head
    for prefix, mirror in (("l_", False), ("r_", True)):
        rots = _side_rotations({k: col[prefix + k] for k in _SIDE})
        for j, rot in rots.items():
            if mirror:
                mats[:, _MIRROR_JOINTS[j]] = _M @ rot @ _M
            else:
                mats[:, j] = rot
    return matrix_to_axis_angle(mats).astype(np.float64)


def ground_and_lock(
    poses: np.ndarray,
    stance: np.ndarray,
    hop: np.ndarray,
    fps: float,
    rest: np.ndarray | None = None,
    recentre_speed: float = 0.03,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Root translation (N,3) that grounds the feet and keeps the stance foot still.

    ``stance`` per frame: 0 = left foot planted, 1 = right, 2 = both (keep the foot that was
    planted before), 3 = airborne. Height: the lowest foot point (toe or heel side of the ankle)
    touches y = 0, plus ``hop``. Horizontal: while a foot is planted, the root moves opposite to
    that foot's motion relative to the pelvis, so the foot stays put in the world; a slow
    re-centring (``recentre_speed`` m/s, far below a visible slide) keeps the dancer near the
    origin. Returns ``(trans, joints, locked)``; ``locked`` (N,) is the foot held still per frame
    (0 left, 1 right, 3 airborne).
    """
    rest = rest_joints() if rest is None else rest
    joints = forward_kinematics(poses, None, rest)  # pelvis at rest[0]
    toe_h = TOE_CLEARANCE
    ankle_h = rest[7, 1] - rest[10, 1] + TOE_CLEARANCE
    heights = np.stack(
        [joints[:, 7, 1] - ankle_h, joints[:, 10, 1] - toe_h, joints[:, 8, 1] - ankle_h, joints[:, 11, 1] - toe_h], 1
    )
    y = -heights.min(1) + hop
    feet = np.stack([(joints[:, 7] + joints[:, 10]) / 2, (joints[:, 8] + joints[:, 11]) / 2], 1)[
        ..., [0, 2]
    ]  # (N,2,xz)
    n = len(poses)
    t_xz = np.zeros((n, 2))
    current = -1
    locked = np.full(n, 3, dtype=np.int64)
    anchor = np.zeros(2)
    prev = np.zeros(2)
    for t in range(n):
        s = int(stance[t])
        if s == 2:
            s = current if current >= 0 else int(np.argmin(heights[t].reshape(2, 2).min(1)))
        if s == 3:
            t_xz[t] = prev
            current = -1
            continue
        if s != current:
            anchor = feet[t, s] + prev
            current = s
        t_xz[t] = anchor - feet[t, s]
        prev = t_xz[t]
        locked[t] = s
    # slow re-centring towards the origin (caps the wander of long dances)
    step = recentre_speed / fps
    corr = np.zeros(2)
    out = np.empty_like(t_xz)
    for t in range(n):
        pos = t_xz[t] + corr
        corr = corr + np.clip(-0.2 * pos, -step, step)
        out[t] = t_xz[t] + corr
    trans = np.stack([out[:, 0], y, out[:, 1]], 1)
    return trans, joints + trans[:, None, :], locked
