"""``python -m stm2pe_core render --motion FILE --out preview.mp4|DIR``: guidance maps of a motion.

An ``.mp4`` gets the preview grid (depth | normal over semantic | skeleton); a directory gets
CHAMP's folder layout (``depth/``, ``normal/``, ``semantic_map/``, ``dwpose/`` PNG frames) plus
``preview/`` grid frames and ``keypoints.npz`` (OpenPose-18 pixels + confidence, heatmaps).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..types import DEFAULT_FPS

MAP_FLAGS = {"depth": "depth", "normal": "normal", "semantic": "semantic_map", "skeleton": "dwpose"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render guidance maps (depth/normal/semantic/skeleton) of a motion file")
    p.add_argument("--motion", type=Path, required=True, help="AIST++/EDGE .pkl or AMASS/STM2PE .npz")
    p.add_argument("--out", type=Path, required=True, help="preview.mp4, or a directory for PNG frames")
    p.add_argument(
        "--fps", type=float, default=DEFAULT_FPS, help=f"resample to this rate (0 = keep; default {DEFAULT_FPS:g})"
    )
    p.add_argument("--start", type=float, default=0.0, help="start second")
    p.add_argument("--duration", type=float, default=0.0, help="seconds (0 = all)")
    p.add_argument("--size", type=int, nargs="+", default=[512], metavar="PX", help="width [height] (default 512)")
    p.add_argument("--maps", nargs="+", choices=sorted(MAP_FLAGS), default=list(MAP_FLAGS), help="maps to render")
    p.add_argument("--body", choices=("auto", "smpl", "preview"), default="auto")
    p.add_argument("--gender", choices=("neutral", "male", "female"), default="neutral")
    p.add_argument("--models", type=Path, default=None, help="models tree (uses models/smpl for SMPL)")
    p.add_argument("--camera", choices=("fit", "reference", "json"), default="fit")
    p.add_argument("--camera-json", default="", help="explicit camera (JSON string or file)")
    p.add_argument("--reference", type=Path, default=None, help="reference photo for --camera reference")
    p.add_argument("--person-box", default="", help="x0,y0,x1,y1 of the person in the reference photo")
    p.set_defaults(func=_render)


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path.name}: cannot read the image. Use a PNG or JPEG file.")
    return img[..., ::-1].copy()


def _render(args: argparse.Namespace) -> int:
    import os

    import cv2

    from ..body.motion import load_motion
    from ..progress import tqdm_progress
    from .api import preview_grid, render_motion
    from .detect import parse_box

    width = args.size[0]
    height = args.size[1] if len(args.size) > 1 else width
    motion = load_motion(args.motion, args.fps or None, start=args.start, duration=args.duration or None)
    models = args.models or (Path(os.environ["STM2PE_MODELS"]) if os.environ.get("STM2PE_MODELS") else None)
    cam_json = args.camera_json
    if cam_json and Path(cam_json).is_file():
        cam_json = Path(cam_json).read_text()
    result = render_motion(
        motion,
        width=width,
        height=height,
        maps=[MAP_FLAGS[m] for m in args.maps],
        camera_mode=args.camera,
        body_kind=args.body,
        gender=args.gender,
        smpl_dir=(models / "smpl") if models else None,
        reference=_read_rgb(args.reference) if args.reference else None,
        person_box=parse_box(args.person_box),
        camera_json=cam_json,
        progress=tqdm_progress("render"),
    )
    out: Path = args.out
    label = "PREVIEW BODY" if result.is_preview_body else ""
    if out.suffix.lower() in (".mp4", ".mkv", ".mov", ".webm"):
        try:
            from ..video.writer import write_video
        except ImportError:
            raise InputError(
                "writing video needs stm2pe_core.video (PyAV); give a directory to get PNG frames"
            ) from None
        grid = preview_grid(result.maps, label=label, scale=0.5, columns=2)
        write_video(out, (f for f in grid), motion.fps, total=len(grid))
    else:
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for name, frames in result.maps.maps.items():
                (tmp / name).mkdir()
                for i, f in enumerate(frames):
                    cv2.imwrite(str(tmp / name / f"{i:04d}.png"), (f * 255.0 + 0.5).astype(np.uint8)[..., ::-1])
            (tmp / "preview").mkdir()
            for i, f in enumerate(result.preview):
                cv2.imwrite(str(tmp / "preview" / f"{i:04d}.png"), (f * 255.0 + 0.5).astype(np.uint8)[..., ::-1])
            np.savez(
                tmp / "keypoints.npz", keypoints=result.maps.keypoints, heatmaps=result.maps.heatmaps, fps=motion.fps
            )
            (tmp / "camera.json").write_text(result.camera.to_json())
            # replace only our own entries, never the rest of an existing folder
            out.mkdir(parents=True, exist_ok=True)
            for child in sorted(tmp.iterdir()):
                dest = out / child.name
                if dest.is_dir():
                    shutil.rmtree(dest)
                elif dest.exists():
                    dest.unlink()
                child.rename(dest)
            tmp.rmdir()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    print(
        json.dumps(
            {
                "out": str(out),
                "frames": motion.n_frames,
                "fps": motion.fps,
                "size": [width, height],
                "body": result.body_name,
                "person_box": result.person_box,
                "box_source": result.box_source,
            }
        )
    )
    return 0
