"""Motion nodes: Load Motion, Save Motion, Render SMPL Guidance (classic V1 API)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..stm2pe_core.body.model import BODY_CHOICES, GENDERS
from ..stm2pe_core.body.motion import MOTION_FORMATS, load_motion, save_motion
from ..stm2pe_core.errors import InputError
from ..stm2pe_core.render.api import render_motion
from ..stm2pe_core.render.detect import parse_box
from ..stm2pe_core.types import DEFAULT_FPS
from .common import CATEGORY, frames_to_image, input_directory, models_root, node_progress, output_directory

MOTION = "STM2PE_MOTION"
GUIDANCE_MAPS = "STM2PE_GUIDANCE_MAPS"
MOTION_EXTS = (".pkl", ".pickle", ".npz")
CAT = f"{CATEGORY}/motion"
CAMERA_CHOICES = ("fit dance (front)", "match reference person", "explicit (camera_json)")
_CAMERA_MODE = dict(zip(CAMERA_CHOICES, ("fit", "reference", "json")))


OUTPUT_TAG = " [output]"  # ComfyUI's annotation for a file in the output folder


def _walk(root: Path, exts: tuple[str, ...]) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if Path(f).suffix.lower() in exts and not f.endswith(".part.npz"):
                out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return sorted(out)


def motion_files() -> list[str]:
    """Motion files (.pkl / .npz) in ComfyUI's input folder, recursively, then the STM2PE .npz files
    that Save Motion wrote to the output folder (as 'name.npz [output]')."""
    root = input_directory()
    files = _walk(root, MOTION_EXTS) if root.is_dir() else []
    out = output_directory()
    if out.is_dir() and out.resolve() != root.resolve():
        files += [f + OUTPUT_TAG for f in _walk(out, (".npz",))]
    return files


def resolve_input_path(name: str) -> Path:
    try:
        import folder_paths

        return Path(folder_paths.get_annotated_filepath(name))
    except ImportError:
        if name.endswith(OUTPUT_TAG):
            return output_directory() / name[: -len(OUTPUT_TAG)]
        p = Path(name)
        return p if p.is_absolute() else input_directory() / name


def output_motion_path(prefix: str) -> tuple[Path, str]:
    """(full path, name relative to the output folder) of the next ``<prefix>_NNNNN_.npz``."""
    try:
        import folder_paths
    except ImportError:
        folder_paths = None
    if folder_paths is None:
        root = output_directory().resolve()
        folder = (root / prefix).parent.resolve()
        if root != folder and root not in folder.parents:
            raise InputError(f"Save Motion: filename_prefix {prefix!r} points outside the output folder {root}")
        name = Path(prefix).name
        folder.mkdir(parents=True, exist_ok=True)
        used = [p.name[len(name) + 1 : -5] for p in folder.glob(f"{name}_*_.npz")]
        counter = 1 + max((int(u) for u in used if u.isdigit()), default=0)
    else:
        try:
            folder, name, counter, _, _ = folder_paths.get_save_image_path(prefix, folder_paths.get_output_directory())
        except Exception as exc:  # ComfyUI refuses prefixes that leave the output folder
            raise InputError(f"Save Motion: filename_prefix {prefix!r}: {exc}") from exc
        root = Path(folder_paths.get_output_directory()).resolve()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{counter:05}_.npz"
    return path, os.path.relpath(path.resolve(), root).replace(os.sep, "/")


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
                        "tooltip": "motion file in ComfyUI's input folder (.pkl AIST++/EDGE, .npz AMASS/STM2PE), "
                        "or one Save Motion wrote ('... [output]')",
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


class STM2PESaveMotion:
    """MOTION -> STM2PE .npz in the output folder, so a dance (e.g. from M2PEnc) can be reused with Load Motion."""

    DESCRIPTION = (
        "Save a MOTION (SMPL poses, translation, shape, fps; y-up metres) as an STM2PE .npz in ComfyUI's output "
        "folder. Load Motion lists it as '<name>.npz [output]' (refresh the page); other tools read it with numpy."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion": (MOTION,),
                "filename_prefix": (
                    "STRING",
                    {"default": "stm2pe/motion", "tooltip": "file name in the output folder; _00001_.npz is added"},
                ),
            }
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("full path of the saved .npz",)
    FUNCTION = "save"
    CATEGORY = CAT
    OUTPUT_NODE = True

    def save(self, motion, filename_prefix="stm2pe/motion"):
        path, name = output_motion_path(filename_prefix)
        save_motion(motion, path)  # written to a temporary name, then renamed: never a half-written file
        text = (
            f"saved {motion.n_frames} frames at {motion.fps:g} fps to {path}; "
            f"Load Motion lists it as '{name}{OUTPUT_TAG}'"
        )
        return {"ui": {"text": [text]}, "result": (str(path),)}


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
    "STM2PESaveMotion": STM2PESaveMotion,
    "STM2PERenderSMPLGuidance": STM2PERenderSMPLGuidance,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "STM2PELoadMotion": "Load Motion (STM2PE)",
    "STM2PESaveMotion": "Save Motion (STM2PE)",
    "STM2PERenderSMPLGuidance": "Render SMPL Guidance (STM2PE)",
}
