"""Render CHAMP-style guidance maps of a MOTION with pyrender, one GL pass per frame.

One draw call writes, per pixel, the camera-space normal (RGB) and the SMPL part index
(alpha) with a small custom shader (``shaders/segmentation.*``, used through pyrender's
segmentation path, which has no lighting, no multisampling and a black clear colour); the
depth buffer of the same pass gives the depth map and the body mask. The semantic map is the
part index looked up in the viridis table, the skeleton map is drawn with OpenCV from the
projected joints. The mesh stays on the GPU; each frame only its vertex buffer is refreshed.

Conventions (CHAMP, see docs/architecture.md): all maps RGB in [0, 1] on black;
``depth``: per frame, nearest body point = 1 (white), farthest body point and background = 0;
``normal``: camera space, R = +x right, G = +y up, B = toward the camera, stored (n + 1) / 2
(background black); ``semantic_map``: ``cv2.COLORMAP_VIRIDIS`` at 10 x SMPL part index;
``dwpose``: OpenPose-18 body skeleton in ControlNet's drawing style.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, STM2PEError
from ..progress import Progress
from ..types import GuidanceMaps, Motion
from . import gl
from .camera import Camera, fit_camera
from .openpose import (
    CONF_THRESHOLD,
    draw_hands_face,
    draw_skeleton,
    hand_face_points,
    heatmaps,
    keypoint_confidence,
    openpose_points,
    visible_points,
)

log = logging.getLogger("STM2PE")

MAP_NAMES: tuple[str, ...] = ("depth", "normal", "semantic_map", "dwpose")
SHADER_DIR = Path(__file__).resolve().parent / "shaders"
CHUNK = 32  # frames posed at once (vectorised skinning)


def semantic_palette() -> np.ndarray:
    """(25, 3) uint8 RGB: row j = viridis(10 * j) for SMPL part j (OpenCV's table); row 24 unused."""
    import cv2

    idx = (np.arange(25) * 10).clip(0, 255).astype(np.uint8)[None]
    bgr = cv2.applyColorMap(idx, cv2.COLORMAP_VIRIDIS)[0]
    return bgr[:, ::-1].copy()


@dataclass
class FrameBuffers:
    """Raw result of one GL pass (views into the renderer's read-back buffers)."""

    rgba: np.ndarray  # (H, W, 4) uint8: RGB = (n+1)/2 * 255 (black background), A = part + 1 (255 background)
    depth: np.ndarray  # (H, W) float32 camera distance along the view axis, 0 = background

    @property
    def normal(self) -> np.ndarray:
        return self.rgba[..., :3]

    @property
    def part(self) -> np.ndarray:
        """(H, W) int16 SMPL part index, -1 = background."""
        a = self.rgba[..., 3].astype(np.int16) - 1
        a[self.depth <= 0] = -1
        return a


class GuidanceRenderer:
    """Keeps one GL context, scene and mesh for a body; renders frame after frame."""

    def __init__(self, body, width: int, height: int) -> None:
        if width < 16 or height < 16 or width > 4096 or height > 4096:
            raise InputError(f"render size {width}x{height} is out of range (16..4096)")
        self.platform = gl.prepare()
        pyrender = gl.import_pyrender()
        from pyrender.shader_program import ShaderProgramCache

        self.body = body
        self.width, self.height = int(width), int(height)
        try:
            self._offscreen = pyrender.OffscreenRenderer(self.width, self.height)
        except Exception as exc:  # noqa: BLE001 - platform errors come in many types
            raise STM2PEError(
                f"could not create an offscreen OpenGL context with PYOPENGL_PLATFORM={self.platform} "
                f"({type(exc).__name__}: {exc}). Headless machines need PYOPENGL_PLATFORM=osmesa (CPU, "
                "`apt-get install libosmesa6`) or =egl (NVIDIA GPU) set before anything imports OpenGL: "
                "export it before starting ComfyUI / the CLI."
            ) from exc
        self._offscreen._renderer._program_cache = ShaderProgramCache(shader_dir=str(SHADER_DIR))
        n_v = body.n_vertices
        code = np.zeros((n_v, 4), dtype=np.float32)
        code[:, 0] = (body.parts.astype(np.float32) + 1.0) / 255.0
        code[:, 3] = 1.0
        self._interleaved = np.zeros((n_v, 10), dtype=np.float32)
        self._interleaved[:, 6:10] = code
        rest = body.pose(np.zeros((1, 24, 3)), np.zeros((1, 3)))
        prim = pyrender.Primitive(
            positions=rest.vertices[0],
            normals=rest.normals[0],
            color_0=code,
            indices=body.faces,
            mode=pyrender.constants.GLTF.TRIANGLES,
        )
        self._prim = prim
        self.scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(0.0, 0.0, 0.0))
        self._mesh_node = self.scene.add(pyrender.Mesh([prim]))
        self._cam_node = None
        self._camera: Camera | None = None
        self._flags = pyrender.RenderFlags.SEG | pyrender.RenderFlags.RGBA
        self._uploaded = False

    def set_camera(self, camera: Camera, znear: float, zfar: float) -> None:
        import pyrender

        if (camera.width, camera.height) != (self.width, self.height):
            camera = camera.resized(self.width, self.height)
        cam = pyrender.IntrinsicsCamera(camera.fx, camera.fy, camera.cx, camera.cy, znear=znear, zfar=zfar)
        if self._cam_node is not None:
            self.scene.remove_node(self._cam_node)
        self._cam_node = self.scene.add(cam, pose=camera.gl_pose())
        self._camera = camera

    def _upload(self, vertices: np.ndarray, normals: np.ndarray) -> None:
        from OpenGL import GL

        self._interleaved[:, 0:3] = vertices
        self._interleaved[:, 3:6] = normals
        if not self._uploaded:
            self._prim.positions = self._interleaved[:, 0:3].copy()
            self._prim.normals = self._interleaved[:, 3:6].copy()
            return
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._prim._buffers[0])
        GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, self._interleaved.nbytes, self._interleaved)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)

    def render(self, vertices: np.ndarray, normals: np.ndarray) -> FrameBuffers:
        """One GL pass for one posed frame (world-space vertices/normals)."""
        from OpenGL import GL

        if self._camera is None:
            raise RuntimeError("set_camera() first")
        platform = self._offscreen._platform
        renderer = self._offscreen._renderer
        platform.make_current()
        try:
            self._upload(vertices, normals)
            renderer.viewport_width, renderer.viewport_height = self.width, self.height
            seg = {self._mesh_node: 0}
            if platform.supports_framebuffers():
                from pyrender.constants import RenderFlags

                rgba, depth = renderer.render(self.scene, self._flags | RenderFlags.OFFSCREEN, seg)
            else:
                renderer.render(self.scene, self._flags, seg)
                depth = renderer.read_depth_buf()
                buf = GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
                rgba = np.flip(np.frombuffer(buf, dtype=np.uint8).reshape(self.height, self.width, 4), axis=0)
            self._uploaded = True
        finally:
            platform.make_uncurrent()
        return FrameBuffers(np.asarray(rgba), np.asarray(depth, dtype=np.float32))

    def close(self) -> None:
        off = self._offscreen
        if off is None:
            return
        self._offscreen = None
        plat = off._platform
        if type(plat).__name__ == "EGLPlatform" and getattr(plat, "_egl_context", None) is not None:
            # pyrender's EGL delete_context calls eglTerminate on the display, which every EGL
            # context of the process shares: it would kill the other renderers. Destroy only ours.
            from OpenGL import EGL

            plat.make_current()
            off._renderer.delete()
            EGL.eglMakeCurrent(plat._egl_display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
            EGL.eglDestroyContext(plat._egl_display, plat._egl_context)
            plat._egl_context = None
            plat._egl_display = None
        else:
            off.delete()

    def __enter__(self) -> GuidanceRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_RENDERERS: dict[tuple[int, int, int], GuidanceRenderer] = {}


def shared_renderer(body, width: int, height: int) -> GuidanceRenderer:
    """A cached renderer per (body, size): the GL context, shaders and mesh buffers are built
    once and reused by later calls (ComfyUI re-runs, segment after segment)."""
    key = (id(body), int(width), int(height))
    r = _RENDERERS.get(key)
    if r is None or r.body is not body or r._offscreen is None:
        while len(_RENDERERS) >= 2:
            _RENDERERS.pop(next(iter(_RENDERERS))).close()
        r = _RENDERERS[key] = GuidanceRenderer(body, width, height)
    return r


def depth_to_image(depth: np.ndarray) -> np.ndarray:
    """CHAMP depth: per-frame min/max over the body, near = 1, far body point / background = 0."""
    mask = depth > 0
    out = np.zeros(depth.shape, dtype=np.float32)
    if mask.any():
        d = depth[mask]
        lo, hi = float(d.min()), float(d.max())
        out[mask] = 1.0 - (d - lo) / (hi - lo) if hi > lo else 1.0
    return out


def depth_to_u8(depth: np.ndarray, body: np.ndarray) -> np.ndarray:
    """:func:`depth_to_image` as uint8 (rounded), computing only over body pixels."""
    out = np.zeros(depth.shape, dtype=np.uint8)
    if body.any():
        d = depth[body]
        lo, hi = float(d.min()), float(d.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        out[body] = (255.5 - (d - lo) * scale).astype(np.uint8)
    return out


def body_points_for_framing(body, motion: Motion, max_frames: int = 48) -> np.ndarray:
    """Posed vertices of up to ``max_frames`` evenly spread frames (for camera fitting)."""
    idx = np.unique(np.linspace(0, motion.n_frames - 1, min(max_frames, motion.n_frames)).round().astype(int))
    posed = body.pose(motion.poses[idx], motion.trans[idx], motion.betas)
    verts = posed.vertices
    # a subsample of vertices is enough for a box
    step = max(1, verts.shape[1] // 800)
    return verts[:, ::step].reshape(-1, 3)


def render_guidance(
    motion: Motion,
    body,
    *,
    width: int = 512,
    height: int = 512,
    maps: Sequence[str] = MAP_NAMES,
    camera: Camera | None = None,
    heatmap_size: tuple[int, int] | None = None,
    dtype: type = np.float32,
    hands_face: bool = True,
    progress: Progress | None = None,
) -> GuidanceMaps:
    """Guidance maps for every frame of ``motion`` (see the module docstring).

    ``camera`` None frames the whole dance from the front. Keypoints (OpenPose-18 pixels +
    confidence), heatmaps (18 Gaussians at ``heatmap_size``, default size/8) and the body
    mask are always returned. ``hands_face`` adds DWPose's hand (21 points each) and face (68
    landmarks) drawing to the skeleton map, from templates carried by the wrist/head joints.
    Maps are float32 in [0, 1] (the project's image convention);
    ``dtype=np.uint8`` keeps them as 0..255 bytes (a quarter of the memory, for long songs).
    ``progress(done, total)`` is called per frame and may raise to cancel.
    """
    unknown = [m for m in maps if m not in MAP_NAMES]
    if unknown:
        raise InputError(f"unknown guidance map(s) {unknown}; choose from {MAP_NAMES}")
    n = motion.n_frames
    if camera is None:
        camera = fit_camera(body_points_for_framing(body, motion), width, height)
    elif (camera.width, camera.height) != (width, height):
        camera = camera.resized(width, height)
    hm_size = heatmap_size or (max(1, height // 8), max(1, width // 8))
    # clip planes around the body over the whole dance
    pts = body_points_for_framing(body, motion)
    z = camera.to_camera(pts)[:, 2]
    span = float(z.max() - z.min()) + 2.0
    znear = max(0.01, float(z.min()) - span)
    zfar = float(z.max()) + span

    as_float = np.dtype(dtype) != np.uint8
    need = n * height * width * 3 * (4 if as_float else 1) * len(maps)
    if need > 8 * 1024**3:
        log.warning(
            "STM2PE: %d frames of %d maps at %dx%d need %.1f GB of memory; render fewer maps, a lower size, "
            "or the song in segments (the pipeline renders per segment)",
            n,
            len(maps),
            width,
            height,
            need / 1024**3,
        )
    # np.zeros maps lazily-zeroed pages: background pixels cost nothing until written
    out = {m: np.zeros((n, height, width, 3), dtype=np.float32 if as_float else np.uint8) for m in maps}
    keypoints = np.zeros((n, 18, 3), dtype=np.float32)
    hms = np.zeros((n, 18, *hm_size), dtype=np.float32)
    mask = np.zeros((n, height, width), dtype=bool)
    # alpha code -> semantic colour: code j+1 is part j, everything else (255 = background) black
    alpha_lut = np.zeros((256, 3), dtype=np.uint8)
    alpha_lut[1:25] = semantic_palette()[:24]
    lut = alpha_lut.astype(np.float32) / 255.0 if as_float else alpha_lut
    inv255 = np.float32(1.0 / 255.0)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    if progress is not None:
        progress(0, n)
    renderer = shared_renderer(body, width, height)
    renderer.set_camera(camera, znear, zfar)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        posed = body.pose(motion.poses[start:stop], motion.trans[start:stop], motion.betas)
        op3d = openpose_points(posed.joints, posed.face_points)
        extras = hands_face and "dwpose" in out and posed.rotations is not None
        if extras:
            hands3d, face3d = hand_face_points(posed.joints, posed.rotations, posed.face_points[:, 0])
        for k in range(stop - start):
            i = start + k
            fb = renderer.render(posed.vertices[k], posed.normals[k])
            body_px = fb.depth > 0
            mask[i] = body_px
            # write only the body's box: the maps are zero-initialised (and lazily paged) elsewhere
            rows, cols = np.nonzero(body_px.any(axis=1))[0], np.nonzero(body_px.any(axis=0))[0]
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)) if rows.size else None
            if box is not None:
                if "normal" in out:  # the clear colour already made the background black
                    if as_float:
                        np.multiply(fb.normal[box], inv255, out=out["normal"][i][box])
                    else:
                        out["normal"][i][box] = fb.normal[box]
                if "semantic_map" in out:
                    np.take(lut, fb.rgba[..., 3][box], axis=0, out=out["semantic_map"][i][box])
                if "depth" in out:
                    d = fb.depth[body_px]
                    lo, hi = float(d.min()), float(d.max())
                    near = 1.0 - (d - lo) * (1.0 / (hi - lo)) if hi > lo else np.ones_like(d)
                    out["depth"][i][body_px] = (
                        near[:, None] if as_float else (near * 255.0 + 0.5).astype(np.uint8)[:, None]
                    )
            uv, zc = camera.project(op3d[k])
            conf = keypoint_confidence(uv, zc, fb.depth, width, height)
            keypoints[i, :, :2] = uv
            keypoints[i, :, 2] = conf
            if "dwpose" in out:
                target = canvas if as_float else out["dwpose"][i]
                drawn = [uv[conf >= CONF_THRESHOLD]]
                draw_skeleton(keypoints[i], width, height, canvas=target)
                if extras:
                    hands2d = []
                    for h, wrist in ((0, 7), (1, 4)):  # left hand <- OpenPose left wrist 7, right <- 4
                        huv, hz = camera.project(hands3d[k, h])
                        hc = visible_points(huv, hz, fb.depth, width, height, 0.05) * (conf[wrist] >= CONF_THRESHOLD)
                        hands2d.append(np.concatenate([huv, hc[:, None]], axis=1))
                        drawn.append(huv[hc >= CONF_THRESHOLD])
                    fuv, fz = camera.project(face3d[k])
                    fc = visible_points(fuv, fz, fb.depth, width, height, 0.02) * (conf[0] >= CONF_THRESHOLD)
                    drawn.append(fuv[fc >= CONF_THRESHOLD])
                    draw_hands_face(target, np.stack(hands2d), np.concatenate([fuv, fc[:, None]], axis=1))
                if as_float:
                    pts = np.concatenate(drawn)
                    if pts.size:  # copy (and clear) only the drawn box of the scratch canvas
                        pad = 6 + int(8 * max(width, height) / 512)
                        x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - pad, 0)
                        x1, y1 = np.minimum(np.ceil(pts.max(axis=0)).astype(int) + pad + 1, [width, height])
                        sk = (slice(y0, y1), slice(x0, x1))
                        np.multiply(canvas[sk], inv255, out=out["dwpose"][i][sk])
                        canvas[sk] = 0
            hms[i] = heatmaps(keypoints[i], width, height, hm_size)
            if progress is not None:
                progress(i + 1, n)
    log.info(
        "STM2PE: rendered %d frames of %s at %dx%d in %.1fs with the %s body",
        n,
        ",".join(maps),
        width,
        height,
        time.perf_counter() - t0,
        body.name,
    )
    final = out
    return GuidanceMaps(maps=final, fps=motion.fps, size=(height, width), keypoints=keypoints, heatmaps=hms, mask=mask)
