"""CHAMP's guidance encoder: one small conv + attention net per guidance-map type.

Key layout and math follow CHAMP's ``models/guidance_encoder.py`` (commit 02e5533) so its
released ``guidance_encoder_<type>.pth`` files load strictly:

* ``conv_in`` 3→16, then six 3×3 convs (16→16, 16→32/2, 32→32, 32→96/2, 96→96, 96→256/2),
  each followed by SiLU (total stride 8);
* six attention blocks (diffusers ``Transformer2DModel``: GroupNorm eps 1e-6, 1×1-conv
  projections, self-attention with 8 heads, GEGLU feed-forward), of which CHAMP's forward
  uses **only the last** (256 channels); the other five are dead weights kept for the keys;
* ``conv_out`` 256→320 (the denoising UNet's ``conv_in`` width).

Frames are independent (GroupNorm and attention per frame), so a clip is folded into the
batch. Inputs are RGB maps in [0, 1] with no further normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

# CHAMP builds, runs and sums the encoders in this order (configs/inference/inference.yaml)
GUIDANCE_TYPES: tuple[str, ...] = ("depth", "normal", "semantic_map", "dwpose")
# the paper's ablations: which encoders are summed
ABLATIONS: dict[str, tuple[str, ...]] = {
    "DNS": ("depth", "normal", "semantic_map"),
    "P": ("dwpose",),
    "PDNS": ("depth", "normal", "semantic_map", "dwpose"),
}
GUIDANCE_CHANNELS = 320
OPTIONAL_PREFIXES = ("guidance_attention.",)  # in CHAMP's code, reportedly absent from its files


def _attention(channels: int, groups: int, heads: int) -> nn.Module:
    from diffusers.models.transformers.transformer_2d import Transformer2DModel

    return Transformer2DModel(
        num_attention_heads=heads,
        attention_head_dim=channels // heads,
        in_channels=channels,
        num_layers=1,
        norm_num_groups=groups,
        cross_attention_dim=None,
        activation_fn="geglu",
        attention_bias=False,
        use_linear_projection=False,
    )


class GuidanceEncoder(nn.Module):
    """Guidance map (B, 3, F, H, W) or (N, 3, H, W) in [0, 1] → features at 1/8 resolution."""

    def __init__(
        self,
        out_channels: int = GUIDANCE_CHANNELS,
        in_channels: int = 3,
        block_out_channels: Sequence[int] = (16, 32, 96, 256),
        heads: int = 8,
    ) -> None:
        super().__init__()
        ch = list(block_out_channels)
        self.conv_in = nn.Conv2d(in_channels, ch[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        self.attentions = nn.ModuleList()
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            self.blocks.append(nn.Conv2d(c_in, c_in, kernel_size=3, padding=1))
            self.attentions.append(_attention(c_in, 1, heads))
            self.blocks.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, stride=2))
            self.attentions.append(_attention(c_out, 32, heads))
        self.conv_out = nn.Conv2d(ch[-1], out_channels, kernel_size=3, padding=1)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) → (N, C, H/8, W/8)."""
        h = F.silu(self.conv_in(x))
        for block in self.blocks:
            h = F.silu(block(h))
        h = self.attentions[-1](h, return_dict=False)[0]  # CHAMP: only the last attention is used
        return self.conv_out(h)

    def forward(self, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Accept a clip (B, 3, F, H, W) or frames (N, 3, H, W); ``chunk`` frames per pass."""
        if x.ndim == 5:
            b, c, f, hh, ww = x.shape
            frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, hh, ww)
            out = self._chunked(frames, chunk)
            return out.reshape(b, f, *out.shape[1:]).permute(0, 2, 1, 3, 4)
        if x.ndim == 4:
            return self._chunked(x, chunk)
        raise InputError(f"guidance maps must be (B, 3, F, H, W) or (N, 3, H, W), got shape {tuple(x.shape)}")

    def _chunked(self, frames: torch.Tensor, chunk: int | None) -> torch.Tensor:
        if not chunk or frames.shape[0] <= chunk:
            return self.forward_frames(frames)
        return torch.cat([self.forward_frames(frames[i : i + chunk]) for i in range(0, frames.shape[0], chunk)])


def maps_to_tensor(maps, device=None, dtype=None) -> torch.Tensor:
    """Guidance maps as (N, 3, H, W) in [0, 1]: accepts numpy/torch (N, H, W, 3) or (N, 3, H, W), uint8 or float."""
    t = torch.from_numpy(np.ascontiguousarray(maps)) if isinstance(maps, np.ndarray) else torch.as_tensor(maps)
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise InputError(f"guidance maps must be (N, H, W, 3) or (N, 3, H, W), got shape {tuple(t.shape)}")
    if t.shape[1] != 3 and t.shape[-1] in (1, 3, 4):
        t = t.permute(0, 3, 1, 2)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif t.shape[1] == 4:
        t = t[:, :3]
    if t.shape[1] != 3:
        raise InputError(f"guidance maps need 3 colour channels, got shape {tuple(t.shape)}")
    if device is not None:  # move the compact form (uint8: a quarter of float32) before converting
        t = t.to(device)
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    return t.to(device=device, dtype=dtype or torch.float32)


def ablation_types(ablation: str) -> tuple[str, ...]:
    try:
        return ABLATIONS[ablation.upper()]
    except KeyError:
        raise InputError(f"unknown guidance set {ablation!r}; choose one of {sorted(ABLATIONS)}") from None


def sum_guidance(
    encoders: Mapping[str, GuidanceEncoder],
    maps: Mapping[str, torch.Tensor],
    *,
    types: Sequence[str] | str | None = None,
    chunk: int | None = 16,
) -> torch.Tensor:
    """CHAMP's fusion: encode each selected type and sum (unweighted), in CHAMP's order.

    ``types`` is a list of types or an ablation name (DNS / P / PDNS); by default every type
    present in ``maps``. Maps are tensors (B, 3, F, H, W) / (N, 3, H, W) or anything
    :func:`maps_to_tensor` accepts; the result has the matching layout with 320 channels.
    """
    if isinstance(types, str):
        types = ablation_types(types)
    wanted = [t for t in GUIDANCE_TYPES if t in (types if types is not None else maps)]
    unknown = set(types if types is not None else maps) - set(GUIDANCE_TYPES)
    if unknown:
        raise InputError(f"unknown guidance types {sorted(unknown)}; known: {list(GUIDANCE_TYPES)}")
    if not wanted:
        raise InputError("no guidance maps given; pass at least one of " + ", ".join(GUIDANCE_TYPES))
    lacking = [t for t in wanted if t not in maps]
    if lacking:
        raise InputError(f"guidance maps {lacking} are needed for this guidance set but were not given")
    no_enc = [t for t in wanted if t not in encoders]
    if no_enc:
        raise InputError(f"no guidance encoder loaded for {no_enc}; put guidance_encoder_<type>.pth in models/champ/")
    feats = []
    for t in wanted:
        enc = encoders[t]
        x = maps[t]
        if not (isinstance(x, torch.Tensor) and x.ndim == 5):
            x = x if isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[1] == 3 else maps_to_tensor(x)
        p = next(enc.parameters())
        feats.append(enc(x.to(device=p.device, dtype=p.dtype), chunk=chunk))
    shapes = {tuple(f.shape) for f in feats}
    if len(shapes) != 1:
        raise InputError(
            f"guidance maps differ in frame count or size: {dict(zip(wanted, [tuple(f.shape) for f in feats]))}"
        )
    return torch.stack(feats).sum(0)


def build_guidance_encoder(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> GuidanceEncoder:
    with torch.device(device):
        enc = GuidanceEncoder()
    return enc.to(dtype=dtype) if str(device) != "meta" else enc


def load_guidance_encoder(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> GuidanceEncoder:
    """Strictly load a CHAMP ``guidance_encoder_<type>.pth`` (or a converted ``.safetensors``)."""
    from ..weights.loading import load_file_strict

    enc = build_guidance_encoder("meta")
    load_file_strict(enc, path, optional_prefixes=OPTIONAL_PREFIXES, dtype=dtype, assign=True)
    return enc.to(device).eval()
