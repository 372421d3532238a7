"""M2PEnc Pose Guidance node: music features -> pose guidance, keypoint-heatmap preview, SMPL motion."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..stm2pe_core.errors import MissingModelError
from ..stm2pe_core.motion_inference import DEFAULT_NAME, m2penc_outputs
from .common import CATEGORY, frames_to_image, models_root, node_progress, register_model_folders

log = logging.getLogger("STM2PE")

MUSIC_FEATURES = "STM2PE_MUSIC_FEATURES"
POSE_GUIDANCE = "STM2PE_POSE_GUIDANCE"
MOTION = "STM2PE_MOTION"


def weight_choices() -> list[str]:
    """'default (bundled)' plus the .safetensors files in models/stm2pe."""
    names: list[str] = []
    try:
        import folder_paths

        register_model_folders()
        names = [n for n in folder_paths.get_filename_list("stm2pe") if n.endswith(".safetensors")]
    except (ImportError, KeyError):
        root = models_root()
        if root is not None and (root / "stm2pe").is_dir():
            names = sorted(p.name for p in (root / "stm2pe").glob("*.safetensors"))
    return [DEFAULT_NAME] + sorted(names)


def weight_path(name: str) -> str | None:
    if name == DEFAULT_NAME:
        return None
    try:
        import folder_paths

        path = folder_paths.get_full_path("stm2pe", name)
    except ImportError:
        root = models_root()
        path = str(root / "stm2pe" / name) if root is not None else name
    if not path or not Path(path).is_file():
        raise MissingModelError(
            f"M2PEnc weights {name!r} are not in models/stm2pe any more. Pick another file or '{DEFAULT_NAME}'."
        )
    return str(path)


def output_connected(prompt: dict | None, unique_id: Any, index: int) -> bool:
    """Whether any node of the queued graph reads output ``index`` of node ``unique_id``.
    Unknown (no graph given) counts as not read."""
    if not prompt or unique_id is None:
        return False
    uid = str(unique_id)
    for node in prompt.values():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) == uid and value[1] == index:
                return True
    return False


class M2PEncPoseGuidance:
    """Runs M2PEnc over the whole song (overlapping windows, blended without jumps)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "music_features": (
                    MUSIC_FEATURES,
                    {"tooltip": "from Jukebox Encode (the bundled default needs librosa + beat channel)"},
                ),
                "weights": (
                    weight_choices(),
                    {
                        "default": DEFAULT_NAME,
                        "tooltip": "M2PEnc .safetensors in models/stm2pe, or the bundled default",
                    },
                ),
            },
            "optional": {
                "preview_size": (
                    "INT",
                    {
                        "default": 256,
                        "min": 64,
                        "max": 1024,
                        "step": 64,
                        "tooltip": "size of the heatmap skeleton preview",
                    },
                ),
            },
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = (POSE_GUIDANCE, "IMAGE", MOTION)
    RETURN_NAMES = ("pose_guidance", "heatmap_preview", "motion")
    OUTPUT_TOOLTIPS = (
        "N x 320 x 64 x 64 features for Denoise Video Segment, from weights with a trained guidance head (None otherwise; reading it then stops with an explanation). The bundled default has none: use motion -> Render SMPL Guidance -> Guidance Encoder",
        "skeletons drawn from the predicted keypoint heatmaps",
        "SMPL dance for Render SMPL Guidance",
    )
    FUNCTION = "run"
    CATEGORY = f"{CATEGORY}/m2penc"
    DESCRIPTION = "Music features -> pose guidance, keypoint heatmaps and an SMPL dance (M2PEnc)."

    def run(self, music_features, weights: str, preview_size: int = 256, prompt=None, unique_id=None):
        # Weights with a trained guidance head always return it (ComfyUI caches outputs by
        # inputs, not by links, so the outputs must not depend on what is connected). Weights
        # without one return None; if a node reads that output, stop now and say what to do.
        read = output_connected(prompt, unique_id, 0)
        result = m2penc_outputs(
            music_features,
            weight_path(weights),
            guidance=True if read else "auto",
            preview_size=preview_size,
            progress=node_progress(),
        )
        if result.guidance is None:
            log.info("STM2PE: these M2PEnc weights have no trained guidance head; pose_guidance is None")
        return (result.guidance, frames_to_image(result.preview), result.motion)


NODE_CLASS_MAPPINGS = {"STM2PEM2PEncPoseGuidance": M2PEncPoseGuidance}
NODE_DISPLAY_NAME_MAPPINGS = {"STM2PEM2PEncPoseGuidance": "M2PEnc Pose Guidance"}
