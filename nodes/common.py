"""Small helpers shared by node modules: ComfyUI services imported lazily, so node modules
import (and unit-test) without ComfyUI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..stm2pe_core.progress import Progress
from ..stm2pe_core.weights.paths import MODEL_FOLDERS

CATEGORY = "STM2PE"


def comfy_available() -> bool:
    try:
        import folder_paths  # noqa: F401
    except ImportError:
        return False
    return True


def register_model_folders() -> None:
    """Register ``models/stm2pe``, ``models/champ``, ``models/smpl`` … with ComfyUI."""
    try:
        import folder_paths
    except ImportError:
        return
    for key in MODEL_FOLDERS:
        path = os.path.join(folder_paths.models_dir, key)
        exts = set(folder_paths.supported_pt_extensions) | {".npz", ".pkl", ".json"}
        if key in folder_paths.folder_names_and_paths:
            paths, old = folder_paths.folder_names_and_paths[key]
            if path not in paths:
                paths.append(path)
            folder_paths.folder_names_and_paths[key] = (paths, set(old) | exts)
        else:
            folder_paths.folder_names_and_paths[key] = ([path], exts)


def models_root() -> Path | None:
    """ComfyUI's ``models/`` folder, or None outside ComfyUI."""
    try:
        import folder_paths
    except ImportError:
        return None
    return Path(folder_paths.models_dir)


def input_directory() -> Path:
    try:
        import folder_paths

        return Path(folder_paths.get_input_directory())
    except ImportError:
        return Path.cwd()


def output_directory() -> Path:
    try:
        import folder_paths

        return Path(folder_paths.get_output_directory())
    except ImportError:
        return Path.cwd()


def node_progress(total_hint: int = 1) -> Progress:
    """A Progress that drives ComfyUI's ProgressBar (which raises when the user cancels)."""
    try:
        from comfy.utils import ProgressBar
    except ImportError:
        return lambda done, total: None
    bar: dict[str, Any] = {"bar": ProgressBar(max(total_hint, 1))}

    def update(done: int, total: int) -> None:
        bar["bar"].update_absolute(done, total)

    return update


def check_interrupt() -> None:
    try:
        import comfy.model_management as mm
    except ImportError:
        return
    mm.throw_exception_if_processing_interrupted()


def frames_to_image(frames: np.ndarray):
    """(N, H, W, 3) float array in [0, 1] -> ComfyUI IMAGE tensor on the CPU."""
    import torch

    arr = np.ascontiguousarray(frames, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    return torch.from_numpy(arr).clamp_(0.0, 1.0)


def image_to_frames(image) -> np.ndarray:
    """ComfyUI IMAGE [B, H, W, C] -> (B, H, W, 3) float32 numpy (alpha dropped, grey expanded)."""
    arr = image.detach().cpu().float().numpy() if hasattr(image, "detach") else np.asarray(image, np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr[..., :3]
