"""The built-in PREVIEW body: SMPL's 24-joint tree dressed in capsules and ellipsoids.

It needs no downloaded model, so the pack renders guidance maps out of the box. Each shape is
attached rigidly to one SMPL joint and labelled with that joint's index, which is the label
SMPL's own mesh gets from ``argmax`` of its skinning weights (thigh -> hip joint 1/2, shin ->
knee 4/5, upper arm -> shoulder 16/17, ...). Capsules end in spheres centred on the joints, so
bending leaves no gaps. It is not a human surface: renders made with it are labelled
"PREVIEW BODY" and should not be used where CHAMP expects real SMPL renders.
"""

from __future__ import annotations

import numpy as np

from .model import BodyModel, NormalSolver, PosedBody
from .skeleton import global_transforms, rest_joints

# head-ellipsoid frame (offsets from the head joint 15 in the rest pose)
_HEAD_CENTRE = np.array([0.0, 0.07, 0.02])
_HEAD_RADII = np.array([0.08, 0.105, 0.095])
# nose, right eye, left eye, right ear, left ear (+x is the body's left)
_FACE_OFFSETS = np.array(
    [
        [0.0, 0.055, 0.128],
        [-0.032, 0.095, 0.105],
        [0.032, 0.095, 0.105],
        [-0.080, 0.070, 0.020],
        [0.080, 0.070, 0.020],
    ]
)


def _frame_from_axis(axis: np.ndarray) -> np.ndarray:
    """Rotation whose third column is ``axis`` (unit)."""
    z = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def _grid_faces(rings: int, segs: int, offset: int) -> np.ndarray:
    """Quads between consecutive rings (each ring ``segs`` vertices), split into triangles."""
    faces = []
    for r in range(rings - 1):
        for s in range(segs):
            a = offset + r * segs + s
            b = offset + r * segs + (s + 1) % segs
            c = offset + (r + 1) * segs + s
            d = offset + (r + 1) * segs + (s + 1) % segs
            faces.append((a, b, c))  # outward for rings advancing along +z
            faces.append((b, d, c))
    return np.array(faces, dtype=np.int64)


def _closed_surface(
    profile: list[tuple[float, float]], poles: tuple[float, float], frame: np.ndarray, origin: np.ndarray, segs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Revolve a (z, rho) ``profile`` (z increasing) about local z; close it with pole fans at
    ``poles`` = (z_south, z_north). Faces wind counter-clockwise seen from outside."""
    ang = np.linspace(0.0, 2 * np.pi, segs, endpoint=False)
    ring = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    local = np.concatenate([np.concatenate([ring * rho, np.full((segs, 1), z)], axis=1) for z, rho in profile], axis=0)
    n_ring = len(profile)
    south, north = local.shape[0], local.shape[0] + 1
    local = np.concatenate([local, [[0.0, 0.0, poles[0]], [0.0, 0.0, poles[1]]]], axis=0)
    last = (n_ring - 1) * segs
    fan = []
    for s in range(segs):
        fan.append((south, (s + 1) % segs, s))
        fan.append((north, last + s, last + (s + 1) % segs))
    faces = np.concatenate([_grid_faces(n_ring, segs, 0), np.array(fan)], axis=0)
    return local @ frame.T + origin, faces


def capsule(
    a: np.ndarray, b: np.ndarray, r0: float, r1: float, segs: int = 16, cap_rings: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Tapered capsule from sphere (a, r0) to sphere (b, r1)."""
    length = float(np.linalg.norm(b - a))
    prof: list[tuple[float, float]] = []
    for k in range(1, cap_rings + 1):  # start cap, pole excluded
        phi = np.pi / 2 * k / cap_rings
        prof.append((-r0 * np.cos(phi), r0 * np.sin(phi)))
    for k in range(1, cap_rings):
        phi = np.pi / 2 * k / cap_rings
        prof.append((length + r1 * np.sin(phi), r1 * np.cos(phi)))
    return _closed_surface(prof, (-r0, length + r1), _frame_from_axis(b - a), a, segs)


def ellipsoid(centre: np.ndarray, radii: np.ndarray, segs: int = 20, rings: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned ellipsoid (rest pose axes), y is the polar axis."""
    prof = []
    for k in range(1, rings):
        th = np.pi * k / rings
        prof.append((-np.cos(th), np.sin(th)))
    unit, faces = _closed_surface(prof, (-1.0, 1.0), np.eye(3), np.zeros(3), segs)
    # local z is the polar axis: map local (x, y, z) -> world (x, z, y) scaled, keeping winding
    swap = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    pts = unit @ swap.T
    faces = faces[:, [0, 2, 1]]  # the axis swap mirrors; flip winding back to outward
    return pts * radii + centre, faces


class PreviewBody(BodyModel):
    """SMPL-tree capsule body (see the module docstring)."""

    name = "preview"
    is_preview = True

    def __init__(self, segs: int = 16) -> None:
        j = rest_joints()
        self._rest = j
        shapes: list[tuple[int, tuple[np.ndarray, np.ndarray]]] = []
        up = np.array([0.0, 1.0, 0.0])

        def cap(part: int, a: np.ndarray, b: np.ndarray, r0: float, r1: float) -> None:
            shapes.append((part, capsule(a, b, r0, r1, segs=segs)))

        def ell(part: int, centre: np.ndarray, radii: tuple[float, float, float]) -> None:
            shapes.append((part, ellipsoid(centre, np.array(radii), segs=segs + 4)))

        # torso: overlapping ellipsoids, tall enough that the seams between them stay smooth
        ell(0, j[0] + [0.0, -0.015, -0.01], (0.150, 0.125, 0.105))
        ell(3, (j[3] + j[6]) / 2, (0.140, 0.130, 0.095))
        ell(6, (j[6] + j[9]) / 2 + [0.0, 0.015, 0.005], (0.150, 0.120, 0.100))
        ell(9, j[9] + [0.0, 0.10, -0.01], (0.165, 0.140, 0.105))
        cap(12, j[12] - up * 0.02, j[15], 0.052, 0.048)
        # head (+ nose so the facing direction shows in depth/normal maps)
        ell(15, j[15] + _HEAD_CENTRE, tuple(_HEAD_RADII))
        ell(15, j[15] + [0.0, 0.06, 0.112], (0.016, 0.022, 0.022))
        for side in (0, 1):  # left, right
            col, sh, el, wr, ha = (13, 16, 18, 20, 22) if side == 0 else (14, 17, 19, 21, 23)
            hip, kn, an, toe = (1, 4, 7, 10) if side == 0 else (2, 5, 8, 11)
            cap(col, j[col], j[sh], 0.050, 0.058)
            cap(sh, j[sh], j[el], 0.052, 0.042)
            cap(el, j[el], j[wr], 0.040, 0.030)
            hand_dir = (j[ha] - j[wr]) / np.linalg.norm(j[ha] - j[wr])
            cap(wr, j[wr], j[ha], 0.030, 0.028)
            cap(ha, j[ha], j[ha] + hand_dir * 0.07, 0.024, 0.014)
            cap(hip, j[hip], j[kn], 0.080, 0.055)
            cap(kn, j[kn], j[an], 0.054, 0.040)
            cap(an, j[an], j[toe], 0.042, 0.034)
            cap(toe, j[toe], j[toe] + [0.0, -0.005, 0.055], 0.034, 0.026)

        verts, faces, parts = [], [], []
        offset = 0
        for part, (v, f) in shapes:
            verts.append(v)
            faces.append(f + offset)
            parts.append(np.full(v.shape[0], part, dtype=np.int64))
            offset += v.shape[0]
        self.rest_vertices = np.concatenate(verts).astype(np.float64)
        self.faces = np.concatenate(faces).astype(np.int32)
        self.parts = np.concatenate(parts)
        self.rest_normals = NormalSolver(self.faces, self.rest_vertices.shape[0])(self.rest_vertices)
        # rest vertices relative to the joint each one rides on
        self._local = self.rest_vertices - j[self.parts]
        self._face_local = _FACE_OFFSETS.copy()

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        return self._rest.copy()

    def pose(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray | None = None) -> PosedBody:
        g_rot, g_pos = global_transforms(
            np.asarray(poses, dtype=np.float64), np.asarray(trans, dtype=np.float64), self._rest
        )
        n = g_rot.shape[0]
        v_count = self.parts.shape[0]
        verts = np.empty((n, v_count, 3), dtype=np.float64)
        norms = np.empty((n, v_count, 3), dtype=np.float64)
        # rigid skinning, one matrix product per part (vectorised over frames)
        for part in np.unique(self.parts):
            idx = np.nonzero(self.parts == part)[0]
            r = g_rot[:, part]  # (n,3,3)
            verts[:, idx] = np.einsum("nij,vj->nvi", r, self._local[idx]) + g_pos[:, part, None, :]
            norms[:, idx] = np.einsum("nij,vj->nvi", r, self.rest_normals[idx])
        face = np.einsum("nij,kj->nki", g_rot[:, 15], self._face_local) + g_pos[:, 15, None, :]
        return PosedBody(
            verts.astype(np.float32),
            norms.astype(np.float32),
            g_pos.astype(np.float32),
            face.astype(np.float32),
            g_rot.astype(np.float32),
        )
