"""Pinhole cameras for guidance rendering: fit-the-dance framing, explicit cameras, and
alignment to the person in a reference photo.

Conventions: world is SMPL's (y-up, metres, the rest body faces +z). A :class:`Camera` stores
OpenCV-style extrinsics (``x_cam = R @ x_world + t``; camera x right, y down, z forward) and
pixel intrinsics (fx, fy, cx, cy with the origin at the top-left pixel corner).
The default focal length follows CHAMP's data (HMR2's ``5000/256 * max(W, H)``): a long lens,
so the body looks almost orthographic, as in the renders CHAMP was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

CHAMP_FOCAL_PER_PIXEL = 5000.0 / 256.0


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    rotation: np.ndarray = field(default_factory=lambda: np.diag([1.0, -1.0, -1.0]))  # world -> camera
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def centre(self) -> np.ndarray:
        """Camera position in the world."""
        return -self.rotation.T @ self.translation

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) -> pixel coordinates (..., 2) and camera depth z (...)."""
        pc = self.to_camera(points)
        z = pc[..., 2]
        zs = np.where(np.abs(z) < 1e-9, 1e-9, z)
        uv = np.stack([self.fx * pc[..., 0] / zs + self.cx, self.fy * pc[..., 1] / zs + self.cy], axis=-1)
        return uv, z

    def gl_pose(self) -> np.ndarray:
        """4x4 camera-to-world pose in OpenGL's convention (camera looks down -z, y up), for pyrender."""
        pose = np.eye(4)
        pose[:3, :3] = self.rotation.T @ np.diag([1.0, -1.0, -1.0])
        pose[:3, 3] = self.centre
        return pose

    def resized(self, width: int, height: int) -> Camera:
        """The same view at another resolution (scales intrinsics)."""
        sx, sy = width / self.width, height / self.height
        return Camera(
            width, height, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, self.rotation, self.translation
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "width": self.width,
                "height": self.height,
                "fx": self.fx,
                "fy": self.fy,
                "cx": self.cx,
                "cy": self.cy,
                "rotation": np.asarray(self.rotation).tolist(),
                "translation": np.asarray(self.translation).tolist(),
            }
        )


def default_focal(width: int, height: int) -> float:
    return CHAMP_FOCAL_PER_PIXEL * max(width, height)


def look_at(eye, target, width: int, height: int, focal: float | None = None, up=(0.0, 1.0, 0.0)) -> Camera:
    """Camera at ``eye`` looking at ``target`` (world points), principal point at the centre."""
    eye = np.asarray(eye, dtype=np.float64)
    fwd = np.asarray(target, dtype=np.float64) - eye
    if np.linalg.norm(fwd) < 1e-9:
        raise InputError("camera eye and target are the same point")
    z = fwd / np.linalg.norm(fwd)
    x = np.cross(-np.asarray(up, dtype=np.float64), z)  # camera x = right on screen, y = down
    if np.linalg.norm(x) < 1e-9:
        raise InputError("camera looks straight along the up direction; move the eye")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])
    f = default_focal(width, height) if focal is None else float(focal)
    return Camera(width, height, f, f, width / 2.0, height / 2.0, rot, -rot @ eye)


def _frontal_rotation(yaw_deg: float = 0.0) -> np.ndarray:
    """Looking toward -z (at a body facing +z), turned by ``yaw_deg`` about the world up axis."""
    base = np.diag([1.0, -1.0, -1.0])
    a = np.deg2rad(yaw_deg)
    ry = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    return base @ ry.T


def fit_camera(
    points: np.ndarray,
    width: int,
    height: int,
    *,
    margin: float = 0.06,
    focal: float | None = None,
    yaw_deg: float = 0.0,
) -> Camera:
    """Frontal camera whose view holds every point (e.g. the body's vertices over all frames)
    with ``margin`` (fraction of the image) free on each side; the points are centred."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    f = default_focal(width, height) if focal is None else float(focal)
    rot = _frontal_rotation(yaw_deg)
    local = pts @ rot.T  # camera axes, before translation
    lo, hi = local.min(axis=0), local.max(axis=0)
    usable_w, usable_h = width * (1 - 2 * margin), height * (1 - 2 * margin)
    # distance so that the extents fit at the nearest depth of the box (conservative)
    dist = max(f * (hi[0] - lo[0]) / usable_w, f * (hi[1] - lo[1]) / usable_h, 1e-3)
    centre = (lo + hi) / 2
    t = np.array([-centre[0], -centre[1], dist - lo[2]])
    cam = Camera(width, height, f, f, width / 2.0, height / 2.0, rot, t)
    # perspective: the nearest points project larger; grow the distance until everything fits
    for _ in range(8):
        uv, z = cam.project(pts)
        if z.min() <= 0:
            t = t + np.array([0.0, 0.0, 1.0])
        else:
            over = max(
                (uv[:, 0].max() - uv[:, 0].min()) / usable_w,
                (uv[:, 1].max() - uv[:, 1].min()) / usable_h,
            )
            mid = (uv.min(axis=0) + uv.max(axis=0)) / 2 - [width / 2.0, height / 2.0]
            zc = float(np.median(z))
            t = t + np.array([-mid[0] * zc / f, -mid[1] * zc / f, 0.0])
            if over <= 1.0 + 1e-6 and np.abs(mid).max() < 0.5:
                return Camera(width, height, f, f, width / 2.0, height / 2.0, rot, t)
            t = t + np.array([0.0, 0.0, max(over - 1.0, 0.0) * zc])
        cam = Camera(width, height, f, f, width / 2.0, height / 2.0, rot, t)
    return cam


def align_camera(
    points: np.ndarray,
    box: tuple[float, float, float, float],
    width: int,
    height: int,
    *,
    focal: float | None = None,
    yaw_deg: float = 0.0,
) -> Camera:
    """Frontal camera that puts the projected box of ``points`` (one frame's vertices) onto the
    person ``box`` = (x0, y0, x1, y1) in pixels of a ``width`` x ``height`` image: same height,
    same centre. (Width is left free: it depends on the pose, not on where the person stands.)"""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise InputError(f"person box {box} is empty; expected x0 < x1 and y0 < y1 in pixels")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    f = default_focal(width, height) if focal is None else float(focal)
    rot = _frontal_rotation(yaw_deg)
    local = pts @ rot.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    target_c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    target_h = y1 - y0
    dist = f * (hi[1] - lo[1]) / target_h
    t = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, dist - (lo[2] + hi[2]) / 2])
    t[:2] += (target_c - [width / 2.0, height / 2.0]) * dist / f
    cam = Camera(width, height, f, f, width / 2.0, height / 2.0, rot, t)
    for _ in range(12):  # correct for perspective: scale by the height ratio, then re-centre
        uv, z = cam.project(pts)
        h = uv[:, 1].max() - uv[:, 1].min()
        zc = float(np.median(z))
        t = t + np.array([0.0, 0.0, zc * (h / target_h - 1.0)])
        cam = Camera(width, height, f, f, width / 2.0, height / 2.0, rot, t)
        uv, z = cam.project(pts)
        mid = (uv.min(axis=0) + uv.max(axis=0)) / 2
        zc = float(np.median(z))
        t = t + np.array([(target_c[0] - mid[0]) * zc / f, (target_c[1] - mid[1]) * zc / f, 0.0])
        cam = Camera(width, height, f, f, width / 2.0, height / 2.0, rot, t)
        uv, _ = cam.project(pts)
        err = max(
            abs(uv[:, 1].max() - uv[:, 1].min() - target_h), *np.abs((uv.min(axis=0) + uv.max(axis=0)) / 2 - target_c)
        )
        if err < 0.05:
            break
    return cam


def camera_from_json(text: str, width: int, height: int) -> Camera:
    """Explicit camera from JSON: either full intrinsics/extrinsics (``fx, fy, cx, cy, rotation,
    translation`` [+ ``width, height`` of the image they refer to]) or ``eye``/``target``
    [+ ``focal`` in pixels at this size, or ``fov_deg`` vertical]."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"camera JSON is not valid JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(d, dict):
        raise InputError("camera JSON must be an object")
    try:
        if "eye" in d:
            focal = d.get("focal")
            if focal is None and "fov_deg" in d:
                focal = height / 2.0 / np.tan(np.deg2rad(float(d["fov_deg"])) / 2.0)
            return look_at(
                d["eye"], d.get("target", [0.0, 0.0, 0.0]), width, height, focal, d.get("up", (0.0, 1.0, 0.0))
            )
        cam = Camera(
            int(d.get("width", width)),
            int(d.get("height", height)),
            float(d["fx"]),
            float(d.get("fy", d["fx"])),
            float(d.get("cx", d.get("width", width) / 2.0)),
            float(d.get("cy", d.get("height", height) / 2.0)),
            np.asarray(d.get("rotation", np.diag([1.0, -1.0, -1.0])), dtype=np.float64).reshape(3, 3),
            np.asarray(d["translation"], dtype=np.float64).reshape(3),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"camera JSON is missing or has a bad field ({exc}); give eye/target[/focal|fov_deg] or fx/translation[/fy/cx/cy/rotation]"
        ) from exc
    return cam.resized(width, height) if (cam.width, cam.height) != (width, height) else cam
