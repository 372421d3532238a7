"""Photoreal diffusion nodes: Load STM2PE Models, Reference UNet, Denoise Video Segment."""

from __future__ import annotations

import os
from pathlib import Path

from ..stm2pe_core.diffusion.context import DEFAULT_CONTEXT, DEFAULT_OVERLAP
from ..stm2pe_core.diffusion.scheduler import DEFAULT_CFG, DEFAULT_SEED, DEFAULT_STEPS
from ..stm2pe_core.weights.paths import ModelTree
from .common import CATEGORY, check_interrupt, frames_to_image, models_root, node_progress, register_model_folders

CAT = f"{CATEGORY}/diffusion"
MODELS = "STM2PE_MODELS"
REFERENCE = "STM2PE_REFERENCE"
SEGMENT = "STM2PE_SEGMENT"
POSE_GUIDANCE = "STM2PE_POSE_GUIDANCE"
GUIDANCE_MAPS = "STM2PE_GUIDANCE_MAPS"


def _trees() -> list[ModelTree]:
    """ComfyUI's models/ plus every extra root registered for our folders (extra_model_paths.yaml)."""
    roots: list[Path] = []
    root = models_root()
    if root is not None:
        roots.append(root)
    try:
        import folder_paths

        for key in ("champ", "vae", "clip_vision"):
            for p in folder_paths.get_folder_paths(key):
                parent = Path(p).parent
                if Path(p).name == key and parent not in roots:
                    roots.append(parent)
    except (ImportError, KeyError):
        pass
    if os.environ.get("STM2PE_MODELS"):
        roots.append(Path(os.environ["STM2PE_MODELS"]))
    return [ModelTree(r) for r in roots] or [ModelTree(None)]


def _progress(total: int):
    bar = node_progress(total)

    def update(done: int, n: int) -> None:
        check_interrupt()  # ComfyUI's cancel: raises, denoise_segment frees memory on the way out
        bar(done, n)

    return update


class STM2PELoadModels:
    """CHAMP UNets + motion modules, guidance encoders, SD VAE and CLIP image encoder, loaded strictly."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "dtype": (["fp16", "bf16", "fp32"], {"default": "fp16", "tooltip": "weight precision (fp32 on CPU)"}),
                "device": (["auto", "cuda", "cpu"], {"default": "auto", "tooltip": "where the networks run"}),
                "offload": (
                    ["none", "idle"],
                    {
                        "default": "none",
                        "tooltip": "idle: keep networks on the CPU and move each to the GPU only while it works",
                    },
                ),
                "guidance_encoders": (
                    ["PDNS", "DNS", "P", "none"],
                    {
                        "default": "PDNS",
                        "tooltip": "which CHAMP guidance encoders to load (none: M2PEnc guidance only)",
                    },
                ),
            },
            "optional": {
                "compile": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "CUDA: torch.compile the denoising UNet and VAE decoder (use bf16). The first "
                        "segment of each window size compiles for 1-2 min; then segments run ~1.5x faster",
                    },
                ),
            },
        }

    RETURN_TYPES = (MODELS,)
    RETURN_NAMES = ("models",)
    FUNCTION = "load"
    CATEGORY = CAT
    DESCRIPTION = (
        "Load CHAMP's denoising_unet + motion_module, reference_unet and guidance_encoder_* from models/champ, "
        "sd-vae-ft-mse from models/vae and the sd-image-variations image_encoder from models/clip_vision. Every "
        "file is checked strictly: a wrong or truncated file is named with its bad keys."
    )

    def load(self, dtype: str, device: str, offload: str, guidance_encoders: str, compile: bool = False):
        from ..stm2pe_core.weights.champ import load_models

        register_model_folders()
        enc = guidance_encoders != "none"
        return (
            load_models(
                _trees(),
                dtype=dtype,
                device=device,
                offload=offload,
                guidance_types=guidance_encoders if enc else (),
                with_guidance_encoders=enc,
                compile=compile,
            ),
        )


class STM2PEReferenceUNet:
    """Photo → reference latent, CLIP embedding and reference-attention bank (once per video)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        size = {"min": 64, "max": 2048, "step": 8}
        return {
            "required": {
                "models": (MODELS,),
                "image": (
                    "IMAGE",
                    {"tooltip": "the person's photo (any size; RGBA composited on white, grey expanded)"},
                ),
                "width": ("INT", {"default": 640, **size, "tooltip": "working width (STM2PE-Diff: 640, CHAMP: 512)"}),
                "height": ("INT", {"default": 640, **size, "tooltip": "working height"}),
                "fit": (
                    ["crop", "pad", "stretch"],
                    {"default": "crop", "tooltip": "how the photo is fitted to the working size"},
                ),
            }
        }

    RETURN_TYPES = (REFERENCE,)
    RETURN_NAMES = ("reference",)
    FUNCTION = "encode"
    CATEGORY = CAT
    DESCRIPTION = "Run the VAE, the CLIP image encoder and CHAMP's reference UNet (timestep 0) once for the photo."

    def encode(self, models, image, width: int, height: int, fit: str):
        from ..stm2pe_core.diffusion.reference import reference_from_image

        return (reference_from_image(models, image[:1], height, width, fit),)


class STM2PEDenoiseVideoSegment:
    """Reference + pose guidance → the latents of one video segment (DDIM, CFG, context windows)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "models": (MODELS,),
                "reference": (REFERENCE,),
                "steps": ("INT", {"default": DEFAULT_STEPS, "min": 1, "max": 200, "tooltip": "DDIM steps (CHAMP: 20)"}),
                "cfg": (
                    "FLOAT",
                    {"default": DEFAULT_CFG, "min": 1.0, "max": 20.0, "step": 0.1, "tooltip": "guidance scale"},
                ),
                "seed": ("INT", {"default": DEFAULT_SEED, "min": 0, "max": 2**63 - 1}),
                "start_frame": (
                    "INT",
                    {"default": 0, "min": 0, "max": 1_000_000, "tooltip": "first frame of the guidance"},
                ),
                "num_frames": (
                    "INT",
                    {
                        "default": 75,
                        "min": 0,
                        "max": 10_000,
                        "tooltip": "frames in this segment (0 = to the end; 75 = 5 s at 15 fps)",
                    },
                ),
                "guidance_set": (
                    ["PDNS", "DNS", "P"],
                    {
                        "default": "PDNS",
                        "tooltip": "with GUIDANCE_MAPS: which encoders are summed (D depth, N normal, S semantic, P pose)",
                    },
                ),
                "context_size": (
                    "INT",
                    {
                        "default": DEFAULT_CONTEXT,
                        "min": 1,
                        "max": 32,
                        "tooltip": "frames the motion modules see at once (max 32)",
                    },
                ),
                "context_overlap": ("INT", {"default": DEFAULT_OVERLAP, "min": 0, "max": 31}),
                "fuse": (
                    ["linear", "uniform"],
                    {"default": "linear", "tooltip": "blend of overlapping windows (uniform = CHAMP)"},
                ),
                "decode": ("BOOLEAN", {"default": False, "tooltip": "also decode the frames for a quick look"}),
            },
            "optional": {
                "pose_guidance": (POSE_GUIDANCE, {"tooltip": "features from M2PEnc Pose Guidance"}),
                "guidance_maps": (GUIDANCE_MAPS, {"tooltip": "rendered depth/normal/semantic/skeleton maps"}),
            },
        }

    RETURN_TYPES = (SEGMENT, "IMAGE")
    RETURN_NAMES = ("segment", "frames")
    OUTPUT_TOOLTIPS = (
        "denoised latents with their frame range",
        "decoded frames (one black frame unless decode is on)",
    )
    FUNCTION = "denoise"
    CATEGORY = CAT
    DESCRIPTION = (
        "Denoise one segment with CHAMP's sampler settings (DDIM, zero-SNR, v-prediction, CFG 3.5); the "
        "motion modules run over overlapping context windows; cancel stops after the current step."
    )

    def denoise(
        self,
        models,
        reference,
        steps,
        cfg,
        seed,
        start_frame,
        num_frames,
        guidance_set,
        context_size,
        context_overlap,
        fuse,
        decode,
        pose_guidance=None,
        guidance_maps=None,
    ):
        import numpy as np

        from ..stm2pe_core.diffusion.sampling import denoise_video_segment

        seg, frames = denoise_video_segment(
            models,
            reference,
            pose_guidance=pose_guidance,
            guidance_maps=guidance_maps,
            guidance_set=guidance_set,
            start_frame=start_frame,
            num_frames=num_frames,
            steps=steps,
            cfg=cfg,
            seed=seed,
            context_size=context_size,
            context_overlap=context_overlap,
            fuse=fuse,
            decode=decode,
            progress=_progress(steps),
        )
        image = frames_to_image(frames.numpy() if frames is not None else np.zeros((1, 8, 8, 3), np.float32))
        return (seg, image)


NODE_CLASS_MAPPINGS = {
    "STM2PELoadModels": STM2PELoadModels,
    "STM2PEReferenceUNet": STM2PEReferenceUNet,
    "STM2PEDenoiseVideoSegment": STM2PEDenoiseVideoSegment,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "STM2PELoadModels": "Load STM2PE Models",
    "STM2PEReferenceUNet": "Reference UNet",
    "STM2PEDenoiseVideoSegment": "Denoise Video Segment",
}
