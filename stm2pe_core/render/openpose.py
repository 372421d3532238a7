"""OpenPose-18 keypoints from SMPL bodies, the ControlNet/DWPose skeleton drawing, heatmaps.

CHAMP's skeleton guidance is DWPose drawn in ControlNet's OpenPose style on black: 17 limbs as
filled ellipses (half-width ``stickwidth`` = 4 px at 512) in the 18 standard colours, each
blended at 60 % over the canvas, then a filled circle of radius 4 per keypoint in full colour.
We draw the same picture from keypoints projected from the body instead of detecting them.
SMPL has no finger or face-landmark joints, so hands and face dots are not drawn.
"""

from __future__ import annotations

import numpy as np

# OpenPose body-18 order
OPENPOSE_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
# SMPL joint for each OpenPose point (-1: nose/eyes/ears come from the body's face points,
# the neck is the midpoint of the two SMPL shoulder joints)
_FROM_SMPL = (-1, -1, 17, 19, 21, 16, 18, 20, 2, 5, 8, 1, 4, 7, -1, -1, -1, -1)
_FACE_SLOT = {0: 0, 14: 1, 15: 2, 16: 3, 17: 4}  # OpenPose index -> body face point index

LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)
COLORS: np.ndarray = np.array(
    [
        [255, 0, 0],
        [255, 85, 0],
        [255, 170, 0],
        [255, 255, 0],
        [170, 255, 0],
        [85, 255, 0],
        [0, 255, 0],
        [0, 255, 85],
        [0, 255, 170],
        [0, 255, 255],
        [0, 170, 255],
        [0, 85, 255],
        [0, 0, 255],
        [85, 0, 255],
        [170, 0, 255],
        [255, 0, 255],
        [255, 0, 170],
        [255, 0, 85],
    ],
    dtype=np.uint8,
)
CONF_THRESHOLD = 0.3
FACE_IDS = (0, 14, 15, 16, 17)


def openpose_points(joints: np.ndarray, face_points: np.ndarray) -> np.ndarray:
    """(n,24,3) SMPL joints + (n,5,3) face points -> (n,18,3) OpenPose-order 3D points."""
    n = joints.shape[0]
    out = np.zeros((n, 18, 3), dtype=np.float64)
    for k, j in enumerate(_FROM_SMPL):
        if j >= 0:
            out[:, k] = joints[:, j]
    out[:, 1] = (joints[:, 16] + joints[:, 17]) / 2
    for k, slot in _FACE_SLOT.items():
        out[:, k] = face_points[:, slot]
    return out


def keypoint_confidence(
    uv: np.ndarray, z: np.ndarray, depth: np.ndarray | None, width: int, height: int, tolerance: float = 0.03
) -> np.ndarray:
    """1 for points inside the image (face points also need to be unoccluded in ``depth``), else 0."""
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= height - 1) & (z > 0)
    conf = inside.astype(np.float32)
    if depth is not None:
        for k in FACE_IDS:
            if not inside[k]:
                continue
            d = depth[int(round(uv[k, 1])), int(round(uv[k, 0]))]
            if d > 0 and z[k] > d + tolerance:  # something (the back of the head) is in front
                conf[k] = 0.0
    return conf


def draw_skeleton(
    keypoints: np.ndarray, width: int, height: int, canvas: np.ndarray | None = None, scale: float | None = None
) -> np.ndarray:
    """OpenPose-style RGB uint8 image (H,W,3) of one person's (18,3) [x, y, conf] keypoints."""
    import cv2

    if canvas is None:
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
    s = max(width, height) / 512.0 if scale is None else scale
    stick = max(1, int(round(4 * s)))
    radius = max(1, int(round(4 * s)))
    ok = keypoints[:, 2] >= CONF_THRESHOLD
    for i, (a, b) in enumerate(LIMBS):
        if not (ok[a] and ok[b]):
            continue
        pa, pb = keypoints[a, :2], keypoints[b, :2]
        mid = (pa + pb) / 2
        length = float(np.linalg.norm(pa - pb))
        angle = float(np.degrees(np.arctan2(pb[1] - pa[1], pb[0] - pa[0])))
        poly = cv2.ellipse2Poly(
            (int(round(mid[0])), int(round(mid[1]))), (int(length / 2), stick), int(round(angle)), 0, 360, 1
        )
        x0, y0 = np.maximum(poly.min(axis=0), 0)
        x1, y1 = np.minimum(poly.max(axis=0) + 1, [width, height])
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillConvexPoly(mask, poly - [x0, y0], 1)
        region = canvas[y0:y1, x0:x1]
        sel = mask.astype(bool)
        region[sel] = (0.4 * region[sel] + 0.6 * COLORS[i]).astype(np.uint8)
    for k in range(18):
        if ok[k]:
            c = tuple(int(v) for v in COLORS[k])
            cv2.circle(canvas, (int(round(keypoints[k, 0])), int(round(keypoints[k, 1]))), radius, c, thickness=-1)
    return canvas


def heatmaps(keypoints: np.ndarray, width: int, height: int, size: tuple[int, int], sigma: float = 1.5) -> np.ndarray:
    """(18, h, w) float32 Gaussian maps (peak 1) at ``size`` = (h, w); sigma in heatmap pixels.
    Keypoints below the confidence threshold give all-zero maps."""
    h, w = size
    sx, sy = w / width, h / height
    ys = (np.arange(h, dtype=np.float32) + 0.5)[:, None]
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
    out = np.zeros((keypoints.shape[0], h, w), dtype=np.float32)
    for k, (x, y, c) in enumerate(keypoints):
        if c < CONF_THRESHOLD:
            continue
        # pixel centres: image pixel i covers [i, i+1); keypoint coordinates are pixel-centre based
        cx, cy = (x + 0.5) * sx, (y + 0.5) * sy
        gx = np.exp(-((xs - cx) ** 2) / (2 * sigma * sigma))
        gy = np.exp(-((ys - cy) ** 2) / (2 * sigma * sigma))
        out[k] = gy * gx  # separable Gaussian
    return out
