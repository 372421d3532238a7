"""Denoise one video segment: DDIM + CFG + context windows, seeded and cancellable.

:func:`denoise_segment` is the one library function the nodes and the whole-song pipeline
call. Continuation across segments plugs in through ``init_latents`` (e.g. a noised
reference latent) and ``step_hook(i, t, latents, scheduler) -> latents``, called with
``i = -1`` before the first step and after every step ``i`` with the timestep the latents are
now at (``None`` after the last step), so a hook can pin frames to noised known latents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InputError
from ..progress import Progress, announce_compile
from ..windows import Fuse
from .cfg import guided_prediction
from .context import DEFAULT_CONTEXT, DEFAULT_OVERLAP, context_windows, fuse_predictions
from .reference import Reference
from .scheduler import DEFAULT_CFG, DEFAULT_SEED, DEFAULT_STEPS, make_scheduler

StepHook = Callable[[int, Any, torch.Tensor, Any], torch.Tensor]


@dataclass
class SegmentLatents:
    """STM2PE_SEGMENT: the denoised latents of frames ``[start, stop)`` of a video."""

    latents: torch.Tensor  # (1, 4, F, h, w) float32, CPU
    start: int
    stop: int
    overlap_prev: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.latents.shape[2])


def initial_noise(num_frames: int, height: int, width: int, seed: int, channels: int = 4) -> torch.Tensor:
    """Seeded noise (1, C, F, h, w), drawn frame by frame on the CPU: the same seed gives the same
    first frames for any segment length and on any device."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn((num_frames, channels, height, width), generator=g, dtype=torch.float32)
    return z.permute(1, 0, 2, 3)[None].contiguous()


def _as_clip_guidance(guidance: torch.Tensor | None, num_frames: int | None) -> torch.Tensor | None:
    if guidance is None:
        return None
    if guidance.ndim == 4:  # (F, 320, h, w) per-frame features (PoseGuidance) -> (1, 320, F, h, w)
        guidance = guidance.permute(1, 0, 2, 3)[None]
    if guidance.ndim != 5:
        raise InputError(f"guidance features must be (F, 320, h, w) or (1, 320, F, h, w), got {tuple(guidance.shape)}")
    if num_frames is not None and guidance.shape[2] != num_frames:
        raise InputError(f"guidance has {guidance.shape[2]} frames but the segment has {num_frames}")
    return guidance


@torch.no_grad()
def denoise_segment(
    unet,
    reference: Reference,
    guidance: torch.Tensor | None,
    *,
    num_frames: int | None = None,
    steps: int = DEFAULT_STEPS,
    cfg: float = DEFAULT_CFG,
    seed: int = DEFAULT_SEED,
    scheduler=None,
    context_size: int = DEFAULT_CONTEXT,
    context_overlap: int = DEFAULT_OVERLAP,
    fuse: Fuse = "linear",
    batched_cfg: bool = True,
    init_latents: torch.Tensor | None = None,
    start_step: int = 0,
    step_hook: StepHook | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Latents (1, 4, F, h, w) float32 for one segment.

    ``guidance``: features to add after ``conv_in`` (F, 320, h, w) or (1, 320, F, h, w), or
    None (reference + CLIP only). ``init_latents`` replaces the seeded noise (continuation);
    ``start_step`` skips the first sampler steps (partial denoising from such latents).
    Cancelling through ``progress`` raises :class:`Cancelled` and frees the GPU cache.
    """
    device, dtype = unet.device, unet.dtype
    g = _as_clip_guidance(guidance, num_frames)
    if num_frames is None:
        if g is None:
            raise InputError("give num_frames when there is no guidance")
        num_frames = int(g.shape[2])
    if not 1 <= context_size <= 32:
        raise InputError(f"context windows must hold 1-32 frames (motion modules), got {context_size}")
    if context_overlap < 0:
        raise InputError(f"context windows overlap by 0 or more frames, got {context_overlap}")
    h, w = (int(s) for s in reference.latent.shape[-2:])
    if g is not None and tuple(g.shape[-2:]) != (h, w):
        raise InputError(
            f"guidance is {tuple(g.shape[-2:])} latents but the reference is {(h, w)}; use the same working size"
        )
    sched = scheduler or make_scheduler()
    sched.set_timesteps(steps, device=device)
    timesteps = sched.timesteps[start_step:]
    if init_latents is None:
        latents = initial_noise(num_frames, h, w, seed).to(device) * sched.init_noise_sigma
    else:
        latents = init_latents.to(device=device, dtype=torch.float32)
    if tuple(latents.shape) != (1, 4, num_frames, h, w):
        raise InputError(f"initial latents must be (1, 4, {num_frames}, {h}, {w}), got {tuple(latents.shape)}")
    ctx = reference.clip_embedding.to(device, dtype)
    bank = reference.bank
    prep = getattr(unet, "prepare_reference", None) or getattr(
        getattr(unet, "_orig_mod", None), "prepare_reference", None
    )
    if prep is not None and bank is not None:
        prep(bank)
    gd = None if g is None else g.to(device, dtype)
    windows = context_windows(num_frames, context_size, context_overlap)
    for length in sorted({w.length for w in windows}):
        announce_compile(
            unet,
            ("unet", length, h, w, batched_cfg),
            f"the denoising UNet for {length}-frame windows at {h}x{w} latents (1-2 min)",
        )
    total = len(timesteps)
    preds: list[torch.Tensor] = []
    pred = x = None
    try:
        if progress is not None:
            progress(0, total)
        if step_hook is not None and total:
            latents = step_hook(-1, timesteps[0], latents, sched)
        for i, t in enumerate(timesteps):
            preds = []
            for win in windows:
                x = sched.scale_model_input(latents[:, :, win.slice()], t).to(dtype)
                gw = None if gd is None else gd[:, :, win.slice()]
                preds.append(guided_prediction(unet, x, t, ctx, gw, bank, cfg, batched_cfg).float())
            pred = fuse_predictions(windows, preds, num_frames, fuse)
            latents = sched.step(pred, t, latents).prev_sample
            if step_hook is not None:
                latents = step_hook(i, timesteps[i + 1] if i + 1 < total else None, latents, sched)
            if progress is not None:
                progress(i + 1, total)
    finally:  # also on cancel (ComfyUI's interrupt, Cancelled, KeyboardInterrupt): free GPU memory
        preds = pred = x = None  # noqa: F841
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return latents.float().cpu()


@torch.no_grad()
def segment_guidance(
    models,
    frames: slice,
    latent_hw: tuple[int, int],
    pose_guidance=None,
    guidance_maps=None,
    guidance_set: str = "PDNS",
    chunk: int = 16,
) -> torch.Tensor | None:
    """Guidance features (F, 320, h, w) for ``frames``: M2PEnc's PoseGuidance (resized to the
    latent grid if needed) or rendered GuidanceMaps through CHAMP's encoders (DNS / P / PDNS)."""
    import torch.nn.functional as F

    from ..models.guidance_encoder import ablation_types, maps_to_tensor, sum_guidance

    if pose_guidance is not None and guidance_maps is not None:
        raise InputError("connect either pose guidance (M2PEnc) or guidance maps, not both")
    if pose_guidance is not None:
        feats = torch.as_tensor(pose_guidance.features)[frames].float()
        if tuple(feats.shape[-2:]) != tuple(latent_hw):
            feats = F.interpolate(feats, size=latent_hw, mode="area" if feats.shape[-1] > latent_hw[1] else "bilinear")
        return feats
    if guidance_maps is None:
        return None
    types = ablation_types(guidance_set)
    h, w = latent_hw[0] * 8, latent_hw[1] * 8
    maps = {}
    for t in types:
        if t not in guidance_maps.maps:
            raise InputError(
                f"guidance set {guidance_set} needs {t} maps but the GUIDANCE_MAPS input has {sorted(guidance_maps.maps)}"
            )
        x = maps_to_tensor(guidance_maps.maps[t][frames], device=models.device)
        if tuple(x.shape[-2:]) != (h, w):  # CHAMP resizes the maps to the working size
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        maps[t] = x
    with models.use("guidance_encoders"):
        feats = sum_guidance(models.guidance_encoders, maps, types=types, chunk=chunk)
    # offload=idle keeps the GPU for the network in use; otherwise stay on the device (the
    # denoiser takes the features in its own dtype: no round trip through host memory)
    return feats.float().cpu() if getattr(models, "offload", "none") == "idle" else feats


def denoise_video_segment(
    models,
    reference: Reference,
    *,
    pose_guidance=None,
    guidance_maps=None,
    guidance_set: str = "PDNS",
    start_frame: int = 0,
    num_frames: int = 0,
    steps: int = DEFAULT_STEPS,
    cfg: float = DEFAULT_CFG,
    seed: int = DEFAULT_SEED,
    context_size: int = DEFAULT_CONTEXT,
    context_overlap: int = DEFAULT_OVERLAP,
    fuse: Fuse = "linear",
    decode: bool = False,
    decode_chunk: int = 8,
    progress: Progress | None = None,
) -> tuple[SegmentLatents, torch.Tensor | None]:
    """The Denoise Video Segment node's work: guidance for frames ``[start, start+num)`` →
    latents (and decoded frames (F, H, W, 3) for a quick look when ``decode``)."""
    from .reference import vae_decode

    total = None
    if pose_guidance is not None:
        total = int(torch.as_tensor(pose_guidance.features).shape[0])
    elif guidance_maps is not None:
        total = int(guidance_maps.n_frames)
    if total is None:
        if num_frames <= 0:
            raise InputError("without guidance give the number of frames to make")
        total = start_frame + num_frames
    if not 0 <= start_frame < total:
        raise InputError(f"start frame {start_frame} is outside the guidance's {total} frames")
    stop = total if num_frames <= 0 else min(total, start_frame + num_frames)
    frames = slice(start_frame, stop)
    h, w = (int(s) for s in reference.latent.shape[-2:])
    g = segment_guidance(models, frames, (h, w), pose_guidance, guidance_maps, guidance_set)
    with models.use("denoising_unet"):
        lat = denoise_segment(
            models.denoising_unet,
            reference,
            g,
            num_frames=stop - start_frame,
            steps=steps,
            cfg=cfg,
            seed=seed,
            context_size=context_size,
            context_overlap=context_overlap,
            fuse=fuse,
            progress=progress,
        )
    seg = SegmentLatents(
        lat,
        start_frame,
        stop,
        info={"steps": steps, "cfg": cfg, "seed": seed, "guidance": guidance_set if guidance_maps else "pose"},
    )
    frames_out = None
    if decode:
        with models.use("vae"):
            frames_out = vae_decode(models.vae, lat, chunk=decode_chunk, static_shapes="compiled" in models.sources)
    return seg, frames_out
