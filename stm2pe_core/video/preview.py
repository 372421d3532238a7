"""Guidance-preview frames of a MOTION, streamed frame by frame (for the preview dance video).

Built from the render helpers (:mod:`stm2pe_core.render`): one camera framing the whole dance
(``fit_camera``), the body posed in chunks (``body.pose``), and per frame either

* ``skeleton``: the OpenPose-style skeleton (``draw_skeleton``; no OpenGL, fastest), or
* a GL map (``semantic_map``, ``normal``, ``depth``) rendered by ``GuidanceRenderer`` with the
  skeleton drawn over it (``semantic_map+skeleton`` etc.), or
* ``grid``: depth | normal over semantic | skeleton, each at half size (CHAMP's four maps).

Frames are yielded one at a time (uint8 RGB), so a long song never sits in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InputError, STM2PEError
from ..progress import Progress
from ..types import Motion

log = logging.getLogger("STM2PE")

PREVIEW_STYLES = (
    "auto",
    "skeleton",
    "semantic_map",
    "normal",
    "depth",
    "semantic_map+skeleton",
    "normal+skeleton",
    "grid",
)
CHUNK = 32  # frames posed at once
BACKGROUND = (18, 18, 24)  # dark blue-grey, so black limbs of the skeleton palette stay visible


def _gl_available() -> bool:
    try:
        from ..render import gl

        gl.prepare()
        import pyrender  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure means: no GL here
        return False
    return True


def _keypoints(camera: Any, posed: Any, k: int, depth: np.ndarray | None, width: int, height: int) -> np.ndarray:
    from ..render.openpose import keypoint_confidence, openpose_points

    op3d = openpose_points(posed.joints[k : k + 1], posed.face_points[k : k + 1])[0]
    uv, z = camera.project(op3d)
    conf = keypoint_confidence(uv, z, depth, width, height)
    return np.concatenate([uv, conf[:, None]], axis=1).astype(np.float32)


def preview_frames(
    motion: Motion,
    size: int | tuple[int, int] = 512,
    style: str = "auto",
    body: Any = None,
    progress: Progress | None = None,
) -> Iterator[np.ndarray]:
    """Yield one (H, W, 3) uint8 preview frame per motion frame.

    ``style`` "auto" picks ``grid`` (CHAMP's four maps at half size: the cheapest GL preview,
    since software GL cost grows with pixels) when offscreen GL works, else ``skeleton``.
    ``body`` defaults to :func:`stm2pe_core.body.model.load_body` ("auto": SMPL if installed,
    else the built-in preview body).
    """
    from ..body.model import load_body
    from ..render.camera import fit_camera
    from ..render.guidance import body_points_for_framing
    from ..render.openpose import draw_skeleton

    if style not in PREVIEW_STYLES:
        raise InputError(f"unknown preview style {style!r}; choose one of {', '.join(PREVIEW_STYLES)}")
    height, width = (size, size) if isinstance(size, int) else size
    if min(height, width) < 16:
        raise InputError(f"preview size {width}x{height} is too small (>= 16 pixels)")
    body = body if body is not None else load_body("auto")
    if style == "auto":
        style = "grid" if _gl_available() else "skeleton"
        log.info("STM2PE: preview style %s", style)
    n = motion.n_frames
    grid = style == "grid"
    rh, rw = (height // 2, width // 2) if grid else (height, width)
    camera = fit_camera(body_points_for_framing(body, motion), rw, rh)
    needs_gl = style != "skeleton"
    renderer = None
    if needs_gl:
        from ..render.guidance import GuidanceRenderer, depth_to_image, semantic_palette

        try:
            renderer = GuidanceRenderer(body, rw, rh)
        except STM2PEError as exc:
            raise STM2PEError(f"{exc} (or use the 'skeleton' preview style, which needs no OpenGL)") from exc
        pts = body_points_for_framing(body, motion)
        z = camera.to_camera(pts)[:, 2]
        span = float(z.max() - z.min()) + 2.0
        renderer.set_camera(camera, max(0.01, float(z.min()) - span), float(z.max()) + span)
        palette = semantic_palette()
    bg = np.array(BACKGROUND, dtype=np.uint8)
    base = style.split("+")[0]
    if renderer is not None:
        # row 0 = background, row p + 1 = colour of SMPL part p: one lookup, no masking pass
        sem_lut = np.concatenate([(np.zeros((1, 3)) if grid else bg[None]), palette[:25]]).astype(np.uint8)
        # the same table indexed by the raw alpha code (part + 1; codes above 25 clip to 25), as
        # RGBX words: a 1-D uint32 lookup is ~4x cheaper than taking 3-byte rows
        sem_words = np.zeros((256, 4), np.uint8)
        sem_words[:, :3] = sem_lut[np.minimum(np.arange(256), len(sem_lut) - 1)]
        sem_words = sem_words.view(np.uint32)[:, 0]
    try:
        if progress is not None:
            progress(0, n)
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            posed = body.pose(motion.poses[start:stop], motion.trans[start:stop], motion.betas)
            for k in range(stop - start):
                if renderer is None:
                    frame = np.empty((rh, rw, 3), dtype=np.uint8)
                    frame[:] = bg
                    draw_skeleton(_keypoints(camera, posed, k, None, rw, rh), rw, rh, canvas=frame)
                else:
                    fb = renderer.render(posed.vertices[k], posed.normals[k])
                    kp = _keypoints(camera, posed, k, fb.depth, rw, rh)
                    if grid:  # tiles written in place: depth | normal over semantic | skeleton
                        frame = np.zeros((height, width, 3), dtype=np.uint8)
                        dep = (depth_to_image(fb.depth) * 255.0 + 0.5).astype(np.uint8)
                        frame[:rh, :rw] = dep[..., None]
                        frame[:rh, rw : 2 * rw] = fb.normal
                        code = fb.rgba[..., 3].copy()  # part + 1 (= FrameBuffers.part + 1)
                        code[fb.depth <= 0] = 0
                        words = np.take(sem_words, code)
                        frame[rh : 2 * rh, :rw] = words.view(np.uint8).reshape(rh, rw, 4)[..., :3]
                        draw_skeleton(kp, rw, rh, canvas=frame[rh : 2 * rh, rw : 2 * rw])
                    else:
                        part = np.clip(fb.part, -1, 24) + 1
                        if base == "semantic_map":
                            frame = np.take(sem_lut, part, axis=0)
                        else:
                            if base == "normal":
                                frame = fb.normal.copy()
                            else:
                                dep = (depth_to_image(fb.depth) * 255.0 + 0.5).astype(np.uint8)
                                frame = np.repeat(dep[..., None], 3, axis=-1)
                            frame[part == 0] = bg
                        if style.endswith("+skeleton"):
                            draw_skeleton(kp, rw, rh, canvas=frame)
                yield frame
                if progress is not None:
                    progress(start + k + 1, n)
    finally:
        if renderer is not None:
            renderer.close()


def prefetch(items: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """Run ``items`` in a worker thread, ``depth`` items ahead, so producing (GL rendering, which
    releases the GIL) overlaps with consuming (H.264 encoding). The worker creates and closes
    everything the generator owns (a GL context stays in one thread); errors come through, and
    when the consumer stops early the worker stops and cleans up too."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((None, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        q.put((done, None))

    worker = threading.Thread(target=work, name="stm2pe-preview", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()
