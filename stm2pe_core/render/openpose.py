"""OpenPose-18 keypoints from SMPL bodies, the ControlNet/DWPose skeleton drawing, heatmaps.

CHAMP's skeleton guidance is DWPose drawn in ControlNet's OpenPose style on black: 17 limbs as
filled ellipses (half-width ``stickwidth`` = 4 px at 512) in the 18 standard colours, the limb
layer dimmed to 60 %, then a filled circle of radius 4 per keypoint in full colour; hands
(rainbow edges, red dots) and face (white dots) on top.
We draw the same picture from keypoints projected from the body instead of detecting them.
SMPL has no finger or face-landmark joints: hands and face come from templates carried by the
wrist and head joints (see :func:`hand_face_points`).
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
    polys = []
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
        polys.append((i, poly))
    if polys:
        # DWPose: limbs painted opaque in order (later ones cover earlier ones), then the limb
        # layer is dimmed to 60 %; joints go on top at full colour. The layer is composited, so a
        # non-black canvas (a map under the skeleton) keeps its pixels outside the limbs.
        allp = np.concatenate([p for _, p in polys])
        x0, y0 = np.maximum(allp.min(axis=0), 0)
        x1, y1 = np.minimum(allp.max(axis=0) + 1, [width, height])
        if x1 > x0 and y1 > y0:
            layer = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
            cover = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
            for i, poly in polys:
                cv2.fillConvexPoly(layer, poly - [x0, y0], tuple(int(v) for v in COLORS[i]))
                cv2.fillConvexPoly(cover, poly - [x0, y0], 1)
            sel = cover.astype(bool)
            canvas[y0:y1, x0:x1][sel] = (layer[sel] * 0.6).astype(np.uint8)
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


# ------------------------------------------------------------------ hands and face (DWPose extras)
# SMPL has no finger or face joints. DWPose (CHAMP's skeleton maps) also draws 21 points per
# hand and 68 face landmarks, so we attach canonical templates to the wrist and head joints:
# a relaxed open hand and an average face. They carry where the hands/face are and how they
# turn, not finger articulation or expressions.

HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    (a, b)
    for f in range(5)
    for a, b in zip([0, 1 + 4 * f, 2 + 4 * f, 3 + 4 * f], [1 + 4 * f, 2 + 4 * f, 3 + 4 * f, 4 + 4 * f])
)


def _left_hand_template() -> np.ndarray:
    """(21, 3) OpenPose hand points of the LEFT hand in the wrist's rest frame (metres):
    fingers along +x, palm down (-y), thumb forward (+z)."""
    pts = np.zeros((21, 3))
    pts[1:5] = [[0.022, -0.012, 0.022], [0.042, -0.018, 0.040], [0.064, -0.022, 0.052], [0.084, -0.024, 0.060]]
    bases = {5: 0.024, 9: 0.006, 13: -0.013, 17: -0.030}  # index, middle, ring, little: z of the knuckle
    lengths = {5: (0.040, 0.025, 0.020), 9: (0.044, 0.028, 0.021), 13: (0.041, 0.026, 0.020), 17: (0.033, 0.020, 0.018)}
    for first, z in bases.items():
        x, y = 0.088 if first in (5, 9) else 0.082, -0.006
        pts[first] = [x, y, z]
        for k, seg in enumerate(lengths[first]):  # relaxed: each phalanx bends a little palm-wards
            ang = 0.18 * (k + 1)
            x, y = x + seg * np.cos(ang), y - seg * np.sin(ang)
            pts[first + 1 + k] = [x, y, z * (1.0 + 0.08 * (k + 1))]
    return pts


def _face_template() -> np.ndarray:
    """(68, 3) iBUG-68 landmarks relative to the head joint (rest pose, +x = the body's left,
    +z = forward), shaped like an average adult face on the preview head."""
    c = np.array([0.0, 0.07, 0.02])  # head centre above the head joint
    pts = np.zeros((68, 3))
    th = np.linspace(-np.pi / 2, np.pi / 2, 17)  # jaw: subject's right ear -> chin -> left ear
    pts[0:17] = np.stack([0.070 * np.sin(th), -0.005 - 0.085 * np.cos(th), 0.025 + 0.055 * np.cos(th)], 1)
    for side, sl in ((-1, slice(17, 22)), (1, slice(22, 27))):  # brows, outer -> inner on the right
        xs = np.linspace(0.058, 0.012, 5) if side < 0 else np.linspace(0.012, 0.058, 5)
        pts[sl] = np.stack(
            [side * xs, 0.045 + 0.006 * np.sin(np.linspace(0, np.pi, 5)), 0.083 + 0.012 * (1 - xs / 0.06)], 1
        )
    pts[27:31] = np.stack([np.zeros(4), np.linspace(0.028, -0.008, 4), np.linspace(0.092, 0.110, 4)], 1)  # bridge
    pts[31:36] = np.stack(
        [np.linspace(-0.016, 0.016, 5), np.full(5, -0.018), 0.098 + 0.006 * np.cos(np.linspace(-1.2, 1.2, 5))], 1
    )
    # eyes (right eye from its outer corner, left eye from its inner corner, both over the top)
    a6 = np.pi - np.linspace(0, 2 * np.pi, 6, endpoint=False)
    for cx, sl in ((-0.032, slice(36, 42)), (0.032, slice(42, 48))):
        pts[sl] = np.stack([cx + 0.013 * np.cos(a6), 0.025 + 0.005 * np.sin(a6), np.full(6, 0.086)], 1)
    # lips from the right mouth corner, along the upper lip, back along the lower lip
    a12 = np.pi - np.linspace(0, 2 * np.pi, 12, endpoint=False)
    pts[48:60] = np.stack([0.026 * np.cos(a12), -0.048 + 0.011 * np.sin(a12), 0.092 + 0.004 * np.abs(np.sin(a12))], 1)
    a8 = np.pi - np.linspace(0, 2 * np.pi, 8, endpoint=False)
    pts[60:68] = np.stack([0.018 * np.cos(a8), -0.048 + 0.004 * np.sin(a8), np.full(8, 0.094)], 1)
    return pts + c


LEFT_HAND = _left_hand_template()
RIGHT_HAND = LEFT_HAND * np.array([-1.0, 1.0, 1.0])
FACE_68 = _face_template()


def hand_face_points(
    joints: np.ndarray, rotations: np.ndarray, nose: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """World points of both hands (n, 2, 21, 3) [left, right] and the face (n, 68, 3), from the
    posed joints (n,24,3) and global joint rotations (n,24,3,3). ``nose`` (n,3), when given,
    shifts the face so its nose tip (point 30) sits on the body's own nose point."""
    hands = np.stack(
        [
            np.einsum("nij,kj->nki", rotations[:, 20], LEFT_HAND) + joints[:, 20, None],
            np.einsum("nij,kj->nki", rotations[:, 21], RIGHT_HAND) + joints[:, 21, None],
        ],
        axis=1,
    )
    face = np.einsum("nij,kj->nki", rotations[:, 15], FACE_68) + joints[:, 15, None]
    if nose is not None:
        face = face + (nose - face[:, 30])[:, None]
    return hands, face


def draw_hands_face(
    canvas: np.ndarray, hands: np.ndarray | None, face: np.ndarray | None, scale: float | None = None
) -> np.ndarray:
    """DWPose's extras on ``canvas`` (uint8 RGB): hand edges in HSV rainbow colours (2 px) with
    red dots (radius 4), face landmarks as white dots (radius 3); points are (K, 3) [x, y, conf]."""
    import colorsys

    import cv2

    h, w = canvas.shape[:2]
    s = max(w, h) / 512.0 if scale is None else scale
    line = max(1, int(round(2 * s)))
    r_hand, r_face = max(1, int(round(4 * s))), max(1, int(round(3 * s)))
    if hands is not None:
        for hand in hands:
            ok = hand[:, 2] >= CONF_THRESHOLD
            for e, (a, b) in enumerate(HAND_EDGES):
                if ok[a] and ok[b]:
                    rgb = tuple(int(round(255 * v)) for v in colorsys.hsv_to_rgb(e / len(HAND_EDGES), 1.0, 1.0))
                    pa = (int(round(hand[a, 0])), int(round(hand[a, 1])))
                    pb = (int(round(hand[b, 0])), int(round(hand[b, 1])))
                    cv2.line(canvas, pa, pb, rgb, thickness=line)
            for x, y, c in hand:
                if c >= CONF_THRESHOLD:
                    cv2.circle(canvas, (int(round(x)), int(round(y))), r_hand, (255, 0, 0), thickness=-1)
    if face is not None:
        for x, y, c in face:
            if c >= CONF_THRESHOLD:
                cv2.circle(canvas, (int(round(x)), int(round(y))), r_face, (255, 255, 255), thickness=-1)
    return canvas


def visible_points(
    uv: np.ndarray, z: np.ndarray, depth: np.ndarray | None, width: int, height: int, tolerance: float
) -> np.ndarray:
    """Confidence 1 for projected points inside the image and not behind the rendered surface."""
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= height - 1) & (z > 0)
    conf = inside.astype(np.float32)
    if depth is not None and inside.any():
        xi = np.clip(np.round(uv[:, 0]).astype(int), 0, width - 1)
        yi = np.clip(np.round(uv[:, 1]).astype(int), 0, height - 1)
        d = depth[yi, xi]
        conf[inside & (d > 0) & (z > d + tolerance)] = 0.0
    return conf
