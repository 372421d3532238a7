"""Where the person stands in the reference photo: a box from a mask, a given box, or an
offline detector.

Nothing here downloads weights. The detector is OpenCV's built-in HOG people detector (its
linear SVM ships inside OpenCV 4.x; OpenCV 5 dropped it from the main package); when it is
missing or finds nobody (close-ups, unusual poses), a background-contrast segmentation takes over, which works for the plain backgrounds typical of
reference photos. Either can be bypassed by passing a mask (e.g. from a segmentation node) or
an explicit box.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError

log = logging.getLogger("STM2PE")

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


def box_from_mask(mask: np.ndarray, threshold: float = 0.5) -> Box | None:
    """Bounding box of ``mask > threshold`` (H, W), or None when empty."""
    m = np.asarray(mask) > threshold
    if m.ndim == 3:
        m = m[0]
    ys, xs = np.nonzero(m)
    if xs.size == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def parse_box(text: str) -> Box | None:
    """'x0,y0,x1,y1' (pixels) -> box; '' -> None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        vals = [float(v) for v in text.replace(";", ",").split(",")]
    except ValueError as exc:
        raise InputError(f"person box {text!r} must be four numbers 'x0,y0,x1,y1' in pixels") from exc
    if len(vals) != 4 or not (vals[2] > vals[0] and vals[3] > vals[1]):
        raise InputError(f"person box {text!r} must be 'x0,y0,x1,y1' with x0 < x1 and y0 < y1")
    return vals[0], vals[1], vals[2], vals[3]


def _to_u8(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 4:
        img = img[0]
    if img.dtype != np.uint8:
        img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if img.shape[-1] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img)


def detect_hog(image: np.ndarray) -> Box | None:
    """Most confident HOG pedestrian in an RGB image, shrunk from the detection window to the
    person inside it (the 64x128 window has ~1/8 margin above/below and ~1/5 at the sides)."""
    import cv2

    if not hasattr(cv2, "HOGDescriptor"):  # OpenCV 5 moved HOG out of the main package
        return None
    img = _to_u8(image)
    h, w = img.shape[:2]
    scale = 1.0
    target = 400.0  # people ~ window height 128..400 px after scaling: fast and reliable
    if max(h, w) > 2 * target:
        scale = 2 * target / max(h, w)
    elif h < 160:
        scale = 160.0 / h
    small = cv2.resize(img, (max(64, int(w * scale)), max(128, int(h * scale)))) if scale != 1.0 else img
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    rects, weights = hog.detectMultiScale(gray, winStride=(8, 8), padding=(16, 16), scale=1.05)
    if len(rects) == 0:
        return None
    weights = np.asarray(weights).reshape(-1)
    x, y, bw, bh = (float(v) for v in rects[int(np.argmax(weights))])
    if weights.max() < 0.3:
        return None
    sx = small.shape[1] / w
    sy = small.shape[0] / h
    x0, x1 = x + 0.2 * bw, x + 0.8 * bw
    y0, y1 = y + 0.125 * bh, y + 0.875 * bh
    return x0 / sx, y0 / sy, x1 / sx, y1 / sy


def foreground_mask(image: np.ndarray) -> np.ndarray:
    """Pixels that differ clearly from the photo's border colours (largest connected blob)."""
    import cv2

    img = _to_u8(image).astype(np.float32)
    h, w = img.shape[:2]
    b = max(2, min(h, w) // 40)
    border = np.concatenate(
        [img[:b].reshape(-1, 3), img[-b:].reshape(-1, 3), img[:, :b].reshape(-1, 3), img[:, -b:].reshape(-1, 3)]
    )
    ref = np.median(border, axis=0)
    spread = np.percentile(np.linalg.norm(border - ref, axis=1), 90)
    dist = np.linalg.norm(img - ref, axis=-1)
    fg = (dist > max(30.0, 2.5 * spread)).astype(np.uint8)
    k = max(3, min(h, w) // 100) | 1
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.zeros((h, w), dtype=bool)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def detect_person(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[Box | None, str]:
    """Person box in ``image`` (H,W,3 RGB, float 0..1 or uint8) and how it was found."""
    if mask is not None:
        box = box_from_mask(mask)
        if box is not None:
            return box, "mask"
    fg = foreground_mask(image)
    fg_box = box_from_mask(fg) if fg.mean() > 0.002 else None
    hog = detect_hog(image)
    if hog is not None:
        # HOG's box is loose; when the foreground blob agrees with it, the blob is tighter
        if fg_box is not None and _iou(hog, fg_box) > 0.4:
            return fg_box, "hog+foreground"
        return hog, "hog"
    if fg_box is not None and fg.mean() < 0.9:
        return fg_box, "foreground"
    return None, "none"


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
