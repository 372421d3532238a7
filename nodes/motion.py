"""Motion nodes: Load Motion, Render SMPL Guidance (classic V1 API)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..stm2pe_core.body.model import BODY_CHOICES, GENDERS
from ..stm2pe_core.body.motion import MOTION_FORMATS, load_motion
from ..stm2pe_core.render.api import render_motion
from ..stm2pe_core.render.detect import parse_box
from ..stm2pe_core.types import DEFAULT_FPS
from .common import CATEGORY, frames_to_image, input_directory, models_root, node_progress

MOTION = "STM2PE_MOTION"
GUIDANCE_MAPS = "STM2PE_GUIDANCE_MAPS"
MOTION_EXTS = (".pkl", ".pickle", ".npz")
CAT = f"{CATEGORY}/motion"
CAMERA_CHOICES = ("fit dance (front)", "match reference person", "explicit (camera_json)")
_CAMERA_MODE = dict(zip(CAMERA_CHOICES, ("fit", "reference", "json")))


def motion_files() -> list[str]:
    """Motion files (.pkl / .npz) in ComfyUI's input folder, recursively."""
    root = input_directory()
    if not root.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if Path(f).suffix.lower() in MOTION_EXTS:
                out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return sorted(out)


def resolve_input_path(name: str) -> Path:
    try:
        import folder_paths

        return Path(folder_paths.get_annotated_filepath(name))
    except ImportError:
        p = Path(name)
        return p if p.is_absolute() else input_directory() / name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def smpl_folder(gender: str = "neutral") -> Path | None:
    """The first registered ``smpl`` model folder holding an SMPL file (ComfyUI may list several)."""
    from ..stm2pe_core.body.smpl import find_smpl_file

    folders: list[Path] = []
    try:
        import folder_paths

        folders = [Path(p) for p in folder_paths.get_folder_paths("smpl")]
    except (ImportError, KeyError):
        root = models_root()
        if root is not None:
            folders = [root / "smpl"]
    if os.environ.get("STM2PE_MODELS"):
        folders.append(Path(os.environ["STM2PE_MODELS"]) / "smpl")
    for folder in folders:
        if find_smpl_file(folder, gender) is not None:
            return folder
    return folders[0] if folders else None


class STM2PELoadMotion:
    """Read an SMPL dance motion (AIST++ / EDGE .pkl, AMASS / STM2PE .npz) as a MOTION."""

    DESCRIPTION = (
        "Load an SMPL motion from ComfyUI's input folder: AIST++ motion pickles (60 fps), EDGE outputs "
        "(30 fps, z-up), AMASS .npz (z-up) or STM2PE .npz. Pickles are read as plain arrays only; files "
        "containing code are refused."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion_file": (
                    motion_files() or ["(put .pkl/.npz motion files in ComfyUI/input)"],
                    {
                        "file_upload": True,
                        "tooltip": "motion file in ComfyUI's input folder (.pkl AIST++/EDGE, .npz AMASS/STM2PE)",
                    },
                ),
                "fps": (
                    "FLOAT",
                    {
                        "default": DEFAULT_FPS,
                        "min": 0.0,
                        "max": 120.0,
                        "step": 1.0,
                        "tooltip": "resample to this frame rate (slerp); 0 = keep the file's rate",
                    },
                ),
                "start_seconds": (
                    "FLOAT",
                    {"default": 0.0, "min": 0.0, "max": 36000.0, "step": 0.1, "tooltip": "skip this many seconds"},
                ),
                "duration_seconds": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 36000.0,
                        "step": 0.1,
                        "tooltip": "seconds to keep; 0 = to the end",
                    },
                ),
                "format": (
                    list(MOTION_FORMATS),
                    {"default": "auto", "tooltip": "file format; auto = detect from the stored keys"},
                ),
            }
        }

    RETURN_TYPES = (MOTION, "INT", "FLOAT")
    RETURN_NAMES = ("motion", "frame_count", "fps")
    OUTPUT_TOOLTIPS = ("SMPL motion, y-up metres", "number of frames", "frame rate")
    FUNCTION = "load"
    CATEGORY = CAT

    @classmethod
    def IS_CHANGED(cls, motion_file, **kwargs):
        path = resolve_input_path(motion_file)
        return _sha256(path) if path.is_file() else float("nan")

    @classmethod
    def VALIDATE_INPUTS(cls, motion_file):
        path = resolve_input_path(motion_file)
        if not path.is_file():
            return f"Load Motion: '{motion_file}' not found in ComfyUI's input folder ({input_directory()}). Copy or upload the .pkl/.npz there."
        return True

    def load(self, motion_file, fps, start_seconds, duration_seconds, format="auto"):
        m = load_motion(
            resolve_input_path(motion_file),
            fps or None,
            fmt=format,
            start=start_seconds,
            duration=duration_seconds or None,
        )
        return (m, m.n_frames, m.fps)


class STM2PERenderSMPLGuidance:
    """MOTION -> CHAMP guidance maps (depth, normal, semantic, skeleton) + preview grid."""

    DESCRIPTION = (
        "Render a MOTION as CHAMP-style guidance maps with pyrender: depth (near = white), camera-space normals, "
        "SMPL part semantics (viridis) and an OpenPose/DWPose-style skeleton, plus keypoints and heatmaps in the "
        "GUIDANCE_MAPS output. Uses SMPL from models/smpl when present, otherwise the built-in preview body "
        "(labelled in the preview). Unselected map outputs are a single black frame."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion": (MOTION,),
                "width": ("INT", {"default": 512, "min": 64, "max": 2048, "step": 8}),
                "height": ("INT", {"default": 512, "min": 64, "max": 2048, "step": 8}),
                "depth": ("BOOLEAN", {"default": True}),
                "normal": ("BOOLEAN", {"default": True}),
                "semantic": ("BOOLEAN", {"default": True}),
                "skeleton": ("BOOLEAN", {"default": True}),
                "camera": (
                    list(CAMERA_CHOICES),
                    {
                        "default": CAMERA_CHOICES[0],
                        "tooltip": "fit the whole dance, place the body on the person in the reference image, or use camera_json",
                    },
                ),
                "body": (
                    list(BODY_CHOICES),
                    {"default": "auto", "tooltip": "auto: SMPL if models/smpl has it, else the preview body"},
                ),
                "gender": (list(GENDERS), {"default": "neutral"}),
            },
            "optional": {
                "reference_image": ("IMAGE", {"tooltip": "photo of the person (for 'match reference person')"}),
                "reference_mask": ("MASK", {"tooltip": "person mask of the photo (overrides the detector)"}),
                "person_box": (
                    "STRING",
                    {"default": "", "tooltip": "x0,y0,x1,y1 in reference-image pixels (overrides detection)"},
                ),
                "camera_json": (
                    "STRING",
                    {
                        "default": "",
                        "multiline": True,
                        "tooltip": '{"eye": [0, 0.2, 12], "target": [0, -0.2, 0], "fov_deg": 10}',
                    },
                ),
            },
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE", "IMAGE", "IMAGE", GUIDANCE_MAPS)
    RETURN_NAMES = ("depth", "normal", "semantic", "skeleton", "preview", "guidance_maps")
    OUTPUT_TOOLTIPS = (
        "per-frame depth maps",
        "per-frame normal maps",
        "per-frame semantic maps",
        "per-frame skeleton maps",
        "2x2 grid of the selected maps at half size, per frame",
        "all selected maps + keypoints + heatmaps, for the guidance encoders",
    )
    FUNCTION = "render"
    CATEGORY = CAT

    def render(
        self,
        motion,
        width,
        height,
        depth,
        normal,
        semantic,
        skeleton,
        camera,
        body,
        gender,
        reference_image=None,
        reference_mask=None,
        person_box="",
        camera_json="",
    ):
        import numpy as np

        from .common import image_to_frames

        maps = [
            m
            for m, on in (("depth", depth), ("normal", normal), ("semantic_map", semantic), ("dwpose", skeleton))
            if on
        ]
        ref = image_to_frames(reference_image) if reference_image is not None else None
        mask = reference_mask.detach().cpu().numpy() if reference_mask is not None else None
        result = render_motion(
            motion,
            width=width,
            height=height,
            maps=maps,
            camera_mode=_CAMERA_MODE.get(camera, camera),
            body_kind=body,
            gender=gender,
            smpl_dir=smpl_folder(gender),
            reference=ref,
            reference_mask=mask,
            person_box=parse_box(person_box),
            camera_json=camera_json,
            progress=node_progress(motion.n_frames),
        )
        blank = np.zeros((1, height, width, 3), dtype=np.float32)
        outs = [
            frames_to_image(result.maps.maps[m]) if m in result.maps.maps else frames_to_image(blank)
            for m in ("depth", "normal", "semantic_map", "dwpose")
        ]
        return (*outs, frames_to_image(result.preview), result.maps)


NODE_CLASS_MAPPINGS = {
    "STM2PELoadMotion": STM2PELoadMotion,
    "STM2PERenderSMPLGuidance": STM2PERenderSMPLGuidance,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "STM2PELoadMotion": "Load Motion (STM2PE)",
    "STM2PERenderSMPLGuidance": "Render SMPL Guidance (STM2PE)",
}
