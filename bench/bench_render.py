"""Guidance rendering speed: frames per second for all four maps (+ keypoints, heatmaps).

    python bench/bench_render.py                      # 512 and 640, preview + SMPL-sized body
    python bench/bench_render.py --sizes 512 --frames 60 --bodies preview

For each body and size it reports the end-to-end rate of ``render_guidance`` (warm: the GL
context and shaders already built, as in a second ComfyUI run), the first-call set-up time,
and a breakdown: posing (skinning + normals), the GL pass alone (upload, draw, read-back),
and the rest (map post-processing, skeleton drawing, heatmaps, float conversion).
The "smpl-sized" body is a synthetic SMPL file (6998 vertices, 13896 triangles, one-hot
weights) run through smplx, so its cost matches a real SMPL model's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def dance(n: int, fps: float = 15.0):
    from stm2pe_core.body.motion import make_motion

    t = np.arange(n) / fps
    ph = 2 * np.pi * 2.0 * t
    p = np.zeros((n, 24, 3))
    p[:, 0, 1] = 0.6 * np.sin(ph / 4)
    p[:, 16, 2] = -1.1 + 0.9 * np.maximum(0, np.sin(ph / 2))
    p[:, 17, 2] = 1.1 - 0.9 * np.maximum(0, np.sin(ph / 2 + np.pi))
    p[:, 18, 1] = -1.2 * np.abs(np.sin(ph / 2))
    p[:, 1, 0] = -0.7 * np.maximum(0, np.sin(ph))
    p[:, 4, 0] = 1.2 * np.maximum(0, np.sin(ph))
    trans = np.stack([0.4 * np.sin(ph / 8), 0.92 + 0.03 * np.cos(2 * ph), 0.3 * np.sin(ph / 16)], 1)
    return make_motion(p, trans, fps)


def smpl_sized_body():
    """A synthetic SMPL model of SMPL's size (from a finer preview mesh), through smplx."""
    from stm2pe_core.body.preview_body import PreviewBody
    from stm2pe_core.body.skeleton import SMPL_PARENTS
    from stm2pe_core.body.smpl import SMPLBody

    pb = PreviewBody(segs=36)
    v = pb.rest_vertices
    n = v.shape[0]
    weights = np.zeros((n, 24))
    weights[np.arange(n), pb.parts] = 1.0
    jreg = np.zeros((24, n))
    for j in range(24):
        idx = np.nonzero(pb.parts == j)[0]
        jreg[j, idx] = 1.0 / idx.size
    # J_regressor over each part's vertices gives the part centroid; shift the template so the
    # regressed joints equal the preview skeleton's (joint placement matters for skinning only)
    data = {
        "v_template": v,
        "shapedirs": np.zeros((n, 3, 10)),
        "posedirs": np.zeros((n, 3, 207)),
        "J_regressor": jreg,
        "weights": weights,
        "kintree_table": np.stack([np.array([4294967295, *SMPL_PARENTS[1:]]), np.arange(24)]),
        "f": pb.faces.astype(np.int64),
    }
    return SMPLBody(data, source="synthetic-smpl-sized")


def bench(body, size: int, frames: int, repeat: int = 3) -> dict:
    from stm2pe_core.render.camera import fit_camera
    from stm2pe_core.render.guidance import _RENDERERS, body_points_for_framing, render_guidance, shared_renderer

    for r in list(_RENDERERS.values()):
        r.close()
    _RENDERERS.clear()
    motion = dance(frames)
    t0 = time.perf_counter()
    render_guidance(dance(2), body, width=size, height=size)  # context, shaders, buffers
    setup = time.perf_counter() - t0
    best = 1e9
    for _ in range(repeat):
        t0 = time.perf_counter()
        g = render_guidance(motion, body, width=size, height=size)
        best = min(best, time.perf_counter() - t0)
    assert g.maps["normal"].shape == (frames, size, size, 3)
    # breakdown
    t0 = time.perf_counter()
    posed = body.pose(motion.poses, motion.trans, motion.betas)
    t_pose = time.perf_counter() - t0
    cam = fit_camera(body_points_for_framing(body, motion), size, size)
    r = shared_renderer(body, size, size)
    z = cam.to_camera(posed.vertices.reshape(-1, 3))[:, 2]
    r.set_camera(cam, max(0.01, float(z.min()) - 3), float(z.max()) + 3)
    t0 = time.perf_counter()
    for k in range(frames):
        r.render(posed.vertices[k], posed.normals[k])
    t_gl = time.perf_counter() - t0
    return {
        "body": body.name,
        "vertices": int(body.n_vertices),
        "faces": int(body.faces.shape[0]),
        "size": size,
        "frames": frames,
        "fps_all_maps": round(frames / best, 1),
        "first_call_setup_s": round(setup, 2),
        "ms_per_frame": round(1000 * best / frames, 1),
        "ms_pose": round(1000 * t_pose / frames, 2),
        "ms_gl_pass": round(1000 * t_gl / frames, 2),
        "ms_rest": round(1000 * (best - t_pose - t_gl) / frames, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 640])
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--bodies", nargs="+", default=["preview", "smpl-sized"], choices=["preview", "smpl-sized"])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per setting; the best is reported")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()

    from stm2pe_core.body.model import load_body
    from stm2pe_core.render import gl

    plat = gl.prepare()
    rows = []
    for name in args.bodies:
        body = load_body("preview") if name == "preview" else smpl_sized_body()
        for size in args.sizes:
            row = bench(body, size, args.frames, args.repeat)
            row["gl_platform"] = plat
            rows.append(row)
            print(json.dumps(row), flush=True)
    try:
        from OpenGL import GL

        from stm2pe_core.render.guidance import _RENDERERS

        r = next(iter(_RENDERERS.values()))
        r._offscreen._platform.make_current()
        renderer = GL.glGetString(GL.GL_RENDERER).decode()
    except Exception:  # noqa: BLE001
        renderer = "?"
    meta = {
        "machine": platform.node(),
        "cpu_count": os.cpu_count(),
        "gl_renderer": renderer,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_1m": os.getloadavg()[0],
    }
    print(json.dumps(meta))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
