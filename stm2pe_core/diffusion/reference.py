"""The reference image, encoded once per video: VAE latent, CLIP image embedding, reference bank."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.reference_attention import ReferenceBank
from ..progress import announce_compile

VAE_SCALE = 0.18215  # SD1.5 latent scale, hard-coded in CHAMP
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP (CLIPImageProcessor defaults)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FIT_MODES = ("crop", "pad", "stretch")


@dataclass
class Reference:
    """STM2PE_REFERENCE: what every segment of one video reuses."""

    latent: torch.Tensor  # (1, 4, h, w) posterior mean × 0.18215
    clip_embedding: torch.Tensor  # (1, 1, 768) CLIP image_embeds as a one-token context
    bank: ReferenceBank  # post-norm1 tokens of the reference UNet's 16 blocks (t = 0)
    image: torch.Tensor  # (H, W, 3) float in [0, 1], the fitted working-size image (previews)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def to_rgb(image) -> torch.Tensor:
    """IMAGE-like input → (H, W, 3) float in [0, 1]: grey expanded, alpha composited on white."""
    t = torch.from_numpy(np.asarray(image)) if not isinstance(image, torch.Tensor) else image
    t = t.detach().cpu()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise InputError(f"the reference must be one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.ndim == 2:
        t = t[..., None]
    if t.ndim != 3 or t.shape[-1] not in (1, 2, 3, 4):
        raise InputError(f"the reference image must be (H, W, C) with 1-4 channels, got shape {tuple(t.shape)}")
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    c = t.shape[-1]
    if c in (2, 4):  # grey+alpha / RGBA: composite on white so transparent areas are not black
        alpha = t[..., -1:].clamp(0, 1)
        rgb = t[..., :-1].expand(*t.shape[:-1], 3) if c == 2 else t[..., :3]
        t = rgb * alpha + (1 - alpha)
    elif c == 1:
        t = t.expand(*t.shape[:-1], 3)
    return t.clamp(0, 1).contiguous()


def fit_image(image: torch.Tensor, height: int, width: int, mode: str = "crop") -> torch.Tensor:
    """(H, W, 3) → (height, width, 3): ``crop`` (cover + centre crop), ``pad`` (fit, white border), ``stretch``."""
    if mode not in FIT_MODES:
        raise InputError(f"unknown fit mode {mode!r}; choose one of {FIT_MODES}")
    if height % 8 or width % 8:
        raise InputError(f"working size must be a multiple of 8, got {width}x{height}")
    x = image.permute(2, 0, 1)[None]
    h, w = x.shape[-2:]
    if mode == "stretch":
        out = F.interpolate(x, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    else:
        s = max(height / h, width / w) if mode == "crop" else min(height / h, width / w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        r = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
        if mode == "crop":
            top, left = (nh - height) // 2, (nw - width) // 2
            out = r[..., top : top + height, left : left + width]
        else:
            out = torch.ones(1, 3, height, width)
            top, left = (height - nh) // 2, (width - nw) // 2
            out[..., top : top + nh, left : left + nw] = r
    return out[0].permute(1, 2, 0).clamp(0, 1).contiguous()


def clip_pixels(image: torch.Tensor) -> torch.Tensor:
    """CHAMP's CLIP input: squash to 224×224 (``PIL.resize``), then OpenAI mean/std. (1, 3, 224, 224)."""
    x = image.permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(224, 224), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def clip_embedding(image_encoder, image: torch.Tensor) -> torch.Tensor:
    """CLIPVisionModelWithProjection ``image_embeds`` as a (1, 1, 768) context."""
    p = next(image_encoder.parameters())
    out = image_encoder(pixel_values=clip_pixels(image).to(p.device, p.dtype))
    return out.image_embeds.unsqueeze(1)


@torch.no_grad()
def vae_encode(vae, image: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) in [0, 1] → posterior mean × 0.18215, (1, 4, H/8, W/8)."""
    p = next(vae.parameters())
    x = (image.permute(2, 0, 1)[None] * 2 - 1).to(p.device, p.dtype)
    return vae.encode(x).latent_dist.mean * VAE_SCALE


@torch.no_grad()
def vae_decode(vae, latents: torch.Tensor, chunk: int = 8, progress=None, static_shapes: bool = False) -> torch.Tensor:
    """(1, 4, F, h, w) or (F, 4, h, w) latents → (F, H, W, 3) float32 frames in [0, 1] on the CPU, in chunks.

    ``static_shapes`` pads the last chunk (repeating its last latent) so a compiled decoder
    sees one shape only.
    """
    if latents.ndim == 5:
        latents = latents[0].permute(1, 0, 2, 3)
    p = next(vae.parameters())
    size = min(max(1, chunk), latents.shape[0]) if not static_shapes else max(1, chunk)
    announce_compile(
        vae.decoder, ("decode", size, *latents.shape[-2:]), f"the VAE decoder for chunks of {size} (~15 s)"
    )
    frames = []
    n = latents.shape[0]
    chunk = max(1, chunk)
    for i in range(0, n, chunk):
        z = latents[i : i + chunk]
        m = z.shape[0]
        if static_shapes and m < chunk:
            z = torch.cat([z, z[-1:].expand(chunk - m, -1, -1, -1)])
        x = vae.decode(z.to(p.device, p.dtype) / VAE_SCALE).sample[:m]
        frames.append(((x.float() / 2 + 0.5).clamp(0, 1)).permute(0, 2, 3, 1).cpu())
        if progress is not None:
            progress(min(i + chunk, n), n)
    return torch.cat(frames)


@torch.no_grad()
def encode_reference(
    reference_unet,
    vae,
    image_encoder,
    image,
    height: int = 640,
    width: int = 640,
    fit: str = "crop",
) -> Reference:
    """Photo → :class:`Reference`: fit to the working size, VAE mean latent, CLIP embedding, bank (t = 0)."""
    rgb = fit_image(to_rgb(image), height, width, fit)
    latent = vae_encode(vae, rgb)
    emb = clip_embedding(image_encoder, rgb)
    ru = reference_unet
    bank = ru.write_bank(latent.to(ru.device, ru.dtype), emb.to(ru.device, ru.dtype))
    return Reference(latent=latent.float(), clip_embedding=emb.float(), bank=bank, image=rgb)


def reference_from_image(models, image, height: int = 640, width: int = 640, fit: str = "crop") -> Reference:
    """The Reference UNet node's work, with the networks brought to the GPU only while they run."""
    with models.use("vae", "image_encoder", "reference_unet"):
        return encode_reference(models.reference_unet, models.vae, models.image_encoder, image, height, width, fit)
