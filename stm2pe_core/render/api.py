"""One call from a MOTION (+ optional reference photo) to guidance maps and a preview grid;
used by the Render SMPL Guidance node, the ``render`` CLI command and the pipeline."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..progress import Progress
from ..types import GuidanceMaps, Motion
from .camera import Camera, align_camera, camera_from_json, fit_camera
from .detect import Box, detect_person
from .guidance import MAP_NAMES, body_points_for_framing, render_guidance

log = logging.getLogger("STM2PE")

CAMERA_MODES = ("fit", "reference", "json")
MAP_LABELS = {"depth": "depth", "normal": "normal", "semantic_map": "semantic", "dwpose": "skeleton"}


@dataclass
class RenderResult:
    maps: GuidanceMaps
    preview: np.ndarray  # (N, H, W * k, 3) float32 grid of the rendered maps side by side
    camera: Camera
    body_name: str
    is_preview_body: bool
    person_box: Box | None = None
    box_source: str = ""


def preview_grid(
    maps: GuidanceMaps, order: Sequence[str] = MAP_NAMES, label: str = "", *, scale: float = 0.5, columns: int = 2
) -> np.ndarray:
    """The maps of each frame tiled in a grid (float32 RGB, (N, rows*h, columns*w, 3)), each tile
    resized by ``scale`` and captioned with its map name (+ ``label``). The default 2x2 grid of
    half-size tiles costs no more memory than one map."""
    import cv2

    names = [m for m in order if m in maps.maps]
    if not names:
        raise InputError("no guidance maps to show")
    cols = max(1, min(columns, len(names)))
    rows = -(-len(names) // cols)
    n, (h, w) = maps.n_frames, maps.size
    th, tw = max(8, int(round(h * scale))), max(8, int(round(w * scale)))
    grid = np.zeros((n, rows * th, cols * tw, 3), dtype=np.float32)
    font = max(0.3, th / 700.0)
    thick = max(1, int(round(th / 400.0)))
    for k, name in enumerate(names):
        r, c = divmod(k, cols)
        src = maps.maps[name]
        text = MAP_LABELS.get(name, name) + (f" - {label}" if label else "")
        stamp = np.zeros((th, tw), dtype=np.uint8)
        cv2.putText(stamp, text, (4, int(14 + 18 * font)), cv2.FONT_HERSHEY_SIMPLEX, font, 255, thick, cv2.LINE_AA)
        alpha = (stamp.astype(np.float32) / 255.0)[..., None] * 0.9
        for i in range(n):
            frame = src[i]
            if frame.dtype == np.uint8:
                frame = frame.astype(np.float32) / 255.0
            if (th, tw) != (h, w):
                frame = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)
            grid[i, r * th : (r + 1) * th, c * tw : (c + 1) * tw] = frame * (1.0 - alpha) + alpha
    return grid


def _scale_box(box: Box, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> Box:
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def choose_camera(
    motion: Motion,
    body,
    width: int,
    height: int,
    mode: str = "fit",
    *,
    reference: np.ndarray | None = None,
    reference_mask: np.ndarray | None = None,
    person_box: Box | None = None,
    camera_json: str = "",
) -> tuple[Camera, Box | None, str]:
    """The camera for ``mode``: 'fit' (whole dance in view, frontal), 'reference' (body placed
    on the person in the reference photo; the photo is assumed resized to width x height, and a
    given ``person_box`` is in photo pixels, or in render pixels when there is no photo), or
    'json' (explicit, see :func:`camera_from_json`)."""
    if mode not in CAMERA_MODES:
        raise InputError(f"unknown camera mode {mode!r}; choose one of {CAMERA_MODES}")
    if mode == "json":
        if not camera_json.strip():
            raise InputError(
                'camera mode \'json\' needs camera parameters (e.g. {"eye": [0, 0, 10], "target": [0, 0, 0]})'
            )
        return camera_from_json(camera_json, width, height), None, "json"
    if mode == "reference":
        box, source = person_box, "given box"
        if box is not None and reference is not None:  # the box is in reference-photo pixels
            ref = np.asarray(reference)
            box = _scale_box(box, (ref.shape[-3], ref.shape[-2]), (height, width))
        if box is None:
            if reference is None and reference_mask is None:
                raise InputError("camera mode 'reference' needs a reference image, a mask or a person box")
            img = reference if reference is not None else None
            if img is not None:
                img = np.asarray(img)
                img = img[0] if img.ndim == 4 else img
                src_hw = img.shape[:2]
                box, source = detect_person(img, reference_mask)
            else:
                m = np.asarray(reference_mask)
                m = m[0] if m.ndim == 3 else m
                src_hw = m.shape[:2]
                from .detect import box_from_mask

                box, source = box_from_mask(m), "mask"
            if box is not None:
                box = _scale_box(box, src_hw, (height, width))
        if box is None:
            log.warning("STM2PE: no person found in the reference image; framing the whole dance instead")
            return fit_camera(body_points_for_framing(body, motion), width, height), None, "not found: fit"
        standing = body.pose(np.zeros((1, 24, 3)), motion.trans[:1], motion.betas)  # upright at the start position
        cam = align_camera(standing.vertices[0], box, width, height)
        pts = body_points_for_framing(body, motion)
        uv, _ = cam.project(pts)
        outside = np.mean((uv[:, 0] < 0) | (uv[:, 0] >= width) | (uv[:, 1] < 0) | (uv[:, 1] >= height))
        if outside > 0.01:
            log.warning(
                "STM2PE: with the camera matched to the reference, %.0f%% of body points leave the frame", 100 * outside
            )
        return cam, box, source
    return fit_camera(body_points_for_framing(body, motion), width, height), None, "fit"


def render_motion(
    motion: Motion,
    *,
    width: int = 512,
    height: int = 512,
    maps: Sequence[str] = MAP_NAMES,
    camera_mode: str = "fit",
    body_kind: str = "auto",
    gender: str = "neutral",
    smpl_dir: str | Path | None = None,
    reference: np.ndarray | None = None,
    reference_mask: np.ndarray | None = None,
    person_box: Box | None = None,
    camera_json: str = "",
    progress: Progress | None = None,
) -> RenderResult:
    """MOTION -> :class:`RenderResult` (guidance maps, preview grid, the camera used)."""
    from ..body.model import load_body

    if not maps:
        raise InputError("select at least one guidance map (depth, normal, semantic, skeleton)")
    body = load_body(body_kind, gender, smpl_dir)
    cam, box, source = choose_camera(
        motion,
        body,
        width,
        height,
        camera_mode,
        reference=reference,
        reference_mask=reference_mask,
        person_box=person_box,
        camera_json=camera_json,
    )
    g = render_guidance(motion, body, width=width, height=height, maps=maps, camera=cam, progress=progress)
    label = "PREVIEW BODY" if body.is_preview else ""
    if body.is_preview:
        log.info(
            "STM2PE: guidance rendered with the built-in PREVIEW body (put SMPL files in models/smpl for the real one)"
        )
    return RenderResult(g, preview_grid(g, label=label), cam, body.name, body.is_preview, box, source)
