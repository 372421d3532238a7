"""AnimateDiff-v2 motion module ("Vanilla" temporal transformer), CHAMP's key layout.

Per module (28 keys): ``temporal_transformer.{norm, proj_in, transformer_blocks.0.{
attention_blocks.{0,1}.{to_q,to_k,to_v,to_out.0,pos_encoder.pe}, norms.{0,1}, ff.net.{0.proj,2},
ff_norm}, proj_out}``.

Math as AnimateDiff v2 / CHAMP: GroupNorm(32, eps 1e-6) **per frame**, Linear ``proj_in``,
two temporal self-attention blocks (pre-LayerNorm, sinusoidal position table of length 32
added to the normalised tokens, attention over frames at each spatial position), GEGLU
feed-forward, Linear ``proj_out``, residual. diffusers' ``AnimateDiffTransformer3D`` normalises
over all frames together and stores one table per block, so it is not used; the attention,
position table and feed-forward are diffusers' own blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import SinusoidalPositionalEmbedding
from torch import nn

from ..errors import InputError

MAX_FRAMES = 32  # AnimateDiff v2 / CHAMP temporal_position_encoding_max_len


class TemporalSelfAttention(Attention):
    """diffusers ``Attention`` (q/k/v without bias) with its own position table ``pos_encoder.pe``."""

    def __init__(self, dim: int, heads: int, max_len: int = MAX_FRAMES) -> None:
        super().__init__(query_dim=dim, heads=heads, dim_head=dim // heads, bias=False, out_bias=True)
        self.pos_encoder = SinusoidalPositionalEmbedding(dim, max_seq_length=max_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """x: (batch·positions, frames, C) normalised tokens → attention output (no residual)."""
        return super().forward(self.pos_encoder(x))


class TemporalMathProcessor:
    """Temporal self-attention as two batched matmuls and a softmax.

    Sequences are short (one per spatial position, <= 32 frames), where fused attention
    kernels tile 64-128 queries and waste most of their work; under ``torch.compile`` this
    form becomes cuBLAS batched GEMMs plus one fused softmax. Same math as SDPA.
    """

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if attention_mask is not None or encoder_hidden_states is not None:
            raise ValueError("temporal attention is unmasked self-attention: no mask or cross-attention context")
        x = hidden_states
        b, n, c = x.shape
        h = attn.heads
        q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, n, h, c // h).transpose(1, 2).reshape(b * h, n, c // h)

        w = torch.bmm(heads(q) * attn.scale, heads(k).transpose(1, 2))
        o = torch.bmm(w.float().softmax(-1).to(x.dtype), heads(v))
        o = o.view(b, h, n, c // h).transpose(1, 2).reshape(b, n, c)
        return attn.to_out[1](attn.to_out[0](o))


class TemporalTritonProcessor:
    """Temporal self-attention through one Triton kernel per call (``temporal_triton``): one
    program per (position, head) sequence, no head transposes. CUDA fp16/bf16 only; other
    inputs (CPU, fp32) take SDPA. Same math as SDPA."""

    def __init__(self) -> None:
        from . import temporal_triton  # needs triton: imported only when chosen

        self.kernel = temporal_triton

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if attention_mask is not None or encoder_hidden_states is not None:
            raise ValueError("temporal attention is unmasked self-attention: no mask or cross-attention context")
        x = hidden_states
        q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
        if self.kernel.supported(q, attn.heads):
            o = self.kernel.temporal_attention(q, k, v, attn.heads, attn.scale)
        else:
            b, n, c = q.shape
            h = attn.heads

            def heads(z: torch.Tensor) -> torch.Tensor:
                return z.view(b, n, h, c // h).transpose(1, 2)

            o = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), scale=attn.scale)
            o = o.transpose(1, 2).reshape(b, n, c)
        return attn.to_out[1](attn.to_out[0](o))


TEMPORAL_ATTENTION = ("sdpa", "math", "triton")


def set_temporal_attention(model: nn.Module, impl: str = "sdpa") -> int:
    """Choose the temporal attention kernel of every motion module: ``sdpa``, ``math`` or
    ``triton`` (CUDA; falls back to SDPA where triton is missing)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    if impl not in TEMPORAL_ATTENTION:
        raise ValueError(f"temporal attention must be one of {TEMPORAL_ATTENTION}, got {impl!r}")
    if impl == "triton":
        try:
            TemporalTritonProcessor()
        except ImportError:
            impl = "sdpa"
    n = 0
    for mod in model.modules():
        if isinstance(mod, TemporalSelfAttention):
            if impl == "math":
                mod.set_processor(TemporalMathProcessor())
            elif impl == "triton":
                mod.set_processor(TemporalTritonProcessor())
            else:
                mod.set_processor(AttnProcessor2_0())
            n += 1
    return n


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, max_len: int = MAX_FRAMES) -> None:
        super().__init__()
        self.attention_blocks = nn.ModuleList([TemporalSelfAttention(dim, heads, max_len) for _ in range(2)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, norm in zip(self.attention_blocks, self.norms):
            x = attn(norm(x)) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer3D(nn.Module):
    def __init__(self, channels: int, heads: int = 8, max_len: int = MAX_FRAMES, groups: int = 32) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(channels, heads, max_len)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """x: frames folded into the batch, (B·F, C, H, W), video-major."""
        bf, c, h, w = x.shape
        b = bf // num_frames
        t = self.norm(x)  # per frame, as CHAMP's "(b f) c h w" GroupNorm
        # (b f) c h w -> (b h w) f c: token-wise ops commute with the layout change
        t = t.reshape(b, num_frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, num_frames, c)
        t = self.proj_in(t)
        for block in self.transformer_blocks:
            t = block(t)
        t = self.proj_out(t)
        t = t.reshape(b, h, w, num_frames, c).permute(0, 3, 4, 1, 2).reshape(bf, c, h, w)
        return t + x


class MotionModule(nn.Module):
    """CHAMP's ``VanillaTemporalModule``: one temporal transformer with a residual."""

    def __init__(self, channels: int, heads: int = 8, max_len: int = MAX_FRAMES) -> None:
        super().__init__()
        self.temporal_transformer = TemporalTransformer3D(channels, heads, max_len)
        self.max_len = max_len

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        if num_frames > self.max_len:
            raise InputError(
                f"the motion modules see at most {self.max_len} frames at once, got {num_frames}; "
                f"use context windows (default 24 frames)"
            )
        return self.temporal_transformer(x, num_frames)
