"""Video nodes: Denoise Song, Collect Segments, Stitch Segments, Save Dance Video (classic V1 API).

Why a Save node of our own next to core's CreateVideo + SaveVideo: core's writer needs even
frame sizes and all frames in memory and writes in place; ours pads odd sizes, streams, and
writes atomically (a cancelled run leaves no half file). Stitch Segments writes its mp4 while
decoding, so a whole song never has to sit in memory as one IMAGE batch (turn keep_frames off).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..stm2pe_core.diffusion.stitch import stitch_segments
from ..stm2pe_core.errors import InputError
from ..stm2pe_core.video.writer import as_fraction, write_video
from .common import CATEGORY, frames_to_image, node_progress, output_directory

log = logging.getLogger("STM2PE")

SEGMENT = "STM2PE_SEGMENT"
SEGMENTS = "STM2PE_SEGMENTS"
MODELS = "STM2PE_MODELS"
REFERENCE = "STM2PE_REFERENCE"
POSE_GUIDANCE = "STM2PE_POSE_GUIDANCE"
GUIDANCE_MAPS = "STM2PE_GUIDANCE_MAPS"
CAT = f"{CATEGORY}/video"


def output_video_path(prefix: str, width: int, height: int) -> tuple[Path, str, str]:
    """(full path, subfolder, file name) of the next ``<prefix>_NNNNN_.mp4`` in the output folder."""
    try:
        import folder_paths

        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            prefix, folder_paths.get_output_directory(), width, height
        )
        file = f"{name}_{counter:05}_.mp4"
        return Path(folder) / file, subfolder, file
    except ImportError:
        root = output_directory()
        sub, _, name = prefix.replace("\\", "/").rpartition("/")
        folder = root / sub
        folder.mkdir(parents=True, exist_ok=True)
        counter = 1 + max(
            (int(p.stem.split("_")[-2]) for p in folder.glob(f"{name}_*_.mp4") if p.stem.split("_")[-2].isdigit()),
            default=0,
        )
        file = f"{name}_{counter:05}_.mp4"
        return folder / file, sub, file


def comfy_video(path: Path | None, frames: Any = None, fps: float = 15.0, audio: Any = None) -> Any:
    """ComfyUI's VIDEO for the file (read lazily by core), or built from frames; None on old ComfyUI."""
    try:
        if path is not None:
            from comfy_api.input_impl import VideoFromFile

            return VideoFromFile(str(path))
        from comfy_api.input_impl import VideoFromComponents
        from comfy_api.util import VideoComponents
    except ImportError:
        return None
    if frames is None:
        return None
    return VideoFromComponents(VideoComponents(images=frames, audio=audio, frame_rate=Fraction(as_fraction(fps))))


def latent_decoder(vae: Any, chunk: int):
    """Decode (1, 4, f, h, w) SD latents (x 0.18215) with ComfyUI's VAE or a diffusers AutoencoderKL."""
    if hasattr(vae, "first_stage_model"):  # comfy.sd.VAE: takes scaled latents (B, 4, h, w) -> (B, H, W, 3)

        def decode(z):
            frames = vae.decode(z[0].permute(1, 0, 2, 3).contiguous())
            return frames.reshape(-1, *frames.shape[-3:]).float().cpu()

        return decode
    from ..stm2pe_core.diffusion.stitch import vae_decoder

    return vae_decoder(vae, chunk)


def _ui(path: Path | None, subfolder: str, file: str) -> dict:
    if path is None:
        return {}
    return {"images": [{"filename": file, "subfolder": subfolder, "type": "output"}], "animated": (True,)}


class STM2PEDenoiseSong:
    """A whole song as 5-second segments that continue each other (noise prior + overlap tie)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "models": (MODELS,),
                "reference": (REFERENCE,),
                "steps": (
                    "INT",
                    {"default": 20, "min": 1, "max": 200, "tooltip": "DDIM steps per segment (CHAMP: 20)"},
                ),
                "cfg": ("FLOAT", {"default": 3.5, "min": 1.0, "max": 20.0, "step": 0.1, "tooltip": "guidance scale"}),
                "seed": ("INT", {"default": 42, "min": 0, "max": 2**63 - 1}),
                "segment_frames": (
                    "INT",
                    {
                        "default": 75,
                        "min": 8,
                        "max": 600,
                        "tooltip": "frames per segment (75 = 5 s at 15 fps, the paper's)",
                    },
                ),
                "segment_overlap": (
                    "INT",
                    {
                        "default": 8,
                        "min": 0,
                        "max": 64,
                        "tooltip": "frames each segment shares with the previous one (tied, then cross-faded)",
                    },
                ),
                "noise_prior": (
                    "FLOAT",
                    {
                        "default": 0.0304,
                        "min": 0.0,
                        "max": 0.5,
                        "step": 0.001,
                        "tooltip": "share of the photo's latent kept in each segment's starting noise (UniAnimate: 0.0304; 0 = pure noise)",
                    },
                ),
                "offset_noise": (
                    "FLOAT",
                    {
                        "default": 0.1,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "per-channel, per-frame offset added to the starting noise",
                    },
                ),
                "tie_until": (
                    "FLOAT",
                    {
                        "default": 0.8,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.05,
                        "tooltip": "fraction of the steps during which the overlap follows the previous segment (1 = exact copy, 0 = no tie)",
                    },
                ),
                "guidance_set": (
                    ["PDNS", "DNS", "P"],
                    {"default": "PDNS", "tooltip": "with guidance maps: which CHAMP encoders are summed"},
                ),
                "context_size": (
                    "INT",
                    {"default": 24, "min": 1, "max": 32, "tooltip": "frames the motion modules see at once"},
                ),
                "context_overlap": ("INT", {"default": 4, "min": 0, "max": 31}),
            },
            "optional": {
                "pose_guidance": (POSE_GUIDANCE, {"tooltip": "features from M2PEnc Pose Guidance (whole song)"}),
                "guidance_maps": (GUIDANCE_MAPS, {"tooltip": "rendered maps from Render SMPL Guidance (whole song)"}),
            },
        }

    RETURN_TYPES = (SEGMENTS,)
    RETURN_NAMES = ("segments",)
    OUTPUT_TOOLTIPS = ("the song's segments, for Stitch Segments",)
    FUNCTION = "denoise"
    CATEGORY = CAT
    DESCRIPTION = (
        "Denoise a whole song segment by segment: each segment starts from the photo's latent noised to a high "
        "timestep and is tied to the previous segment over their shared frames at every step (EDGE-style), so "
        "the video continues without jumps. Cancel stops after the current step."
    )

    def denoise(
        self,
        models,
        reference,
        steps,
        cfg,
        seed,
        segment_frames,
        segment_overlap,
        noise_prior,
        offset_noise,
        tie_until,
        guidance_set,
        context_size,
        context_overlap,
        pose_guidance=None,
        guidance_maps=None,
    ):
        from ..stm2pe_core.diffusion.continuation import ContinuationConfig
        from ..stm2pe_core.pipeline import song_segments

        cont = ContinuationConfig(int(segment_overlap), float(noise_prior), float(offset_noise), float(tie_until))
        segs = song_segments(
            models,
            reference,
            pose_guidance=pose_guidance,
            guidance_maps=guidance_maps,
            guidance_set=guidance_set,
            segment_frames=int(segment_frames),
            continuation=cont,
            steps=int(steps),
            cfg=float(cfg),
            seed=int(seed),
            context_size=int(context_size),
            context_overlap=int(context_overlap),
            progress=node_progress(),
        )
        return (segs,)


class STM2PECollectSegments:
    """Gathers denoised segments of one song (chain one per Denoise Video Segment)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {"segment": (SEGMENT, {"tooltip": "one denoised segment (its frame range travels with it)"})},
            "optional": {"segments": (SEGMENTS, {"tooltip": "segments collected so far (leave empty for the first)"})},
        }

    RETURN_TYPES = (SEGMENTS,)
    RETURN_NAMES = ("segments",)
    FUNCTION = "collect"
    CATEGORY = CAT
    DESCRIPTION = "Add a segment to a song's segment list (sorted by start frame) for Stitch Segments."

    def collect(self, segment, segments=None):
        items = [s for s in (segments or []) if (s.start, s.stop) != (segment.start, segment.stop)]
        return (sorted([*items, segment], key=lambda s: int(s.start)),)


class STM2PEStitchSegments:
    """Segments -> one video: latents blended over the overlaps, decoded in chunks, mp4 with the music."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "segments": (SEGMENTS, {"tooltip": "the song's segments (Denoise Song, or Collect Segments)"}),
                "vae": ("VAE", {"tooltip": "SD1.5 VAE (sd-vae-ft-mse), e.g. from Load VAE"}),
                "fps": (
                    "FLOAT",
                    {
                        "default": 15.0,
                        "min": 1.0,
                        "max": 120.0,
                        "step": 0.5,
                        "tooltip": "frame rate of the segments (STM2PE-Diff: 15)",
                    },
                ),
                "filename_prefix": ("STRING", {"default": "STM2PE/dance", "tooltip": "mp4 name in the output folder"}),
                "save_video": ("BOOLEAN", {"default": True, "tooltip": "write the mp4 (streamed while decoding)"}),
                "keep_frames": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "also return every frame as IMAGE (turn off for long songs: memory grows with the song)",
                    },
                ),
            },
            "optional": {
                "audio": ("AUDIO", {"tooltip": "the music; muxed into the mp4 and trimmed to the frames"}),
                "decode_chunk": (
                    "INT",
                    {"default": 8, "min": 1, "max": 64, "tooltip": "frames per VAE decode (lower = less memory)"},
                ),
            },
        }

    RETURN_TYPES = ("IMAGE", "FLOAT", "AUDIO", "VIDEO")
    RETURN_NAMES = ("frames", "fps", "audio", "video")
    OUTPUT_TOOLTIPS = (
        "all frames (or only the last one when keep_frames is off)",
        "frame rate",
        "the music trimmed to the frames",
        "ComfyUI VIDEO (the saved mp4; for Save Video / Get Video Components)",
    )
    FUNCTION = "stitch"
    OUTPUT_NODE = True
    CATEGORY = CAT
    DESCRIPTION = (
        "Blend the segments across their overlaps in latent space, decode in chunks and write an mp4 with the music."
    )

    def stitch(self, segments, vae, fps, filename_prefix, save_video, keep_frames, audio=None, decode_chunk=8):
        if not segments:
            raise InputError("Stitch Segments got no segments. Connect Denoise Song or Collect Segments")
        first = segments[0].latents
        h, w = int(first.shape[-2]) * 8, int(first.shape[-1]) * 8
        path, sub, file = output_video_path(filename_prefix, w, h) if save_video else (None, "", "")
        out = stitch_segments(
            segments,
            latent_decoder(vae, decode_chunk),
            fps,
            audio=audio,
            path=path,
            keep_frames=keep_frames,
            chunk=decode_chunk,
            progress=node_progress(),
        )
        frames = out.frames if keep_frames else out.last_frame[None]
        audio_out = out.audio if out.audio is not None else _silence(out.n_frames, fps)
        video = comfy_video(out.path, frames if keep_frames else None, fps, out.audio)
        return {
            "ui": _ui(out.path, sub, file),
            "result": (frames_to_image(frames.numpy()), float(fps), audio_out, video),
        }


def _silence(n_frames: int, fps: float) -> dict:
    import torch

    sr = 44100
    return {"waveform": torch.zeros(1, 1, int(round(n_frames / float(fps) * sr))), "sample_rate": sr}


class STM2PESaveDanceVideo:
    """IMAGE frames + frame rate + music -> mp4 in the output folder (odd sizes padded, atomic)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "video frames"}),
                "fps": ("FLOAT", {"default": 15.0, "min": 1.0, "max": 120.0, "step": 0.5}),
                "filename_prefix": ("STRING", {"default": "STM2PE/dance"}),
            },
            "optional": {
                "audio": ("AUDIO", {"tooltip": "music to mux in (trimmed to the frames)"}),
                "crf": (
                    "INT",
                    {"default": 20, "min": 0, "max": 51, "tooltip": "H.264 quality: lower = better, bigger"},
                ),
            },
        }

    RETURN_TYPES = ("VIDEO",)
    RETURN_NAMES = ("video",)
    FUNCTION = "save"
    OUTPUT_NODE = True
    CATEGORY = CAT
    DESCRIPTION = "Write frames and music to an H.264/AAC mp4 in ComfyUI's output folder and preview it."

    def save(self, images, fps, filename_prefix, audio=None, crf=20):
        if images is None or images.shape[0] == 0:
            raise InputError("Save Dance Video got no frames")
        h, w = int(images.shape[1]), int(images.shape[2])
        path, sub, file = output_video_path(filename_prefix, w, h)
        write_video(path, images, fps, audio=audio, progress=node_progress(int(images.shape[0])), crf=int(crf))
        return {"ui": _ui(path, sub, file), "result": (comfy_video(path),)}


NODE_CLASS_MAPPINGS = {
    "STM2PEDenoiseSong": STM2PEDenoiseSong,
    "STM2PECollectSegments": STM2PECollectSegments,
    "STM2PEStitchSegments": STM2PEStitchSegments,
    "STM2PESaveDanceVideo": STM2PESaveDanceVideo,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "STM2PEDenoiseSong": "Denoise Song",
    "STM2PECollectSegments": "Collect Segments",
    "STM2PEStitchSegments": "Stitch Segments",
    "STM2PESaveDanceVideo": "Save Dance Video",
}
