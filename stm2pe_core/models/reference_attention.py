"""Reference attention (CHAMP / Animate-Anyone "ReferenceNet") as diffusers attention processors.

The reference UNet runs once per video at timestep 0; in each of its 16 spatial transformer
blocks the processor of ``attn1`` *writes* its input — the post-``norm1`` tokens — into a
:class:`ReferenceBank`. In the denoising UNet the processor of the matching ``attn1`` (same
module path) *reads* it: the reference tokens are appended to the keys/values of the frame's
own tokens, using the denoising UNet's own projections. For classifier-free guidance CHAMP
recomputes the unconditional half as plain self-attention without reference tokens; here the
unconditional rows never see the reference at all (same result, less work).

Speed: the key/value projections of the reference tokens are the same for every frame, window
and step, so they are computed once per bank and cached (CHAMP repeats them per frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ReferenceBank:
    """Post-norm1 reference tokens per transformer block path, plus cached K/V per reader."""

    tokens: dict[str, torch.Tensor] = field(default_factory=dict)  # path -> (B_ref, L, C)
    kv_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    writes: int = 0  # how many times the reference UNet filled this bank (tests: once per video)

    def to(self, device=None, dtype=None) -> ReferenceBank:
        return ReferenceBank({k: v.to(device=device, dtype=dtype) for k, v in self.tokens.items()}, {}, self.writes)

    def clear_cache(self) -> None:
        self.kv_cache.clear()


class _Control:
    """Shared, per-call state of one UNet's reference processors."""

    def __init__(self) -> None:
        self.mode = "off"  # off | write | read
        self.bank: ReferenceBank | None = None
        self.uncond_rows = 0  # leading batch rows (frames) that must not see the reference
        self.count_reads = False  # tests: count bank reads (off by default: no mutable state for torch.compile)
        self.reads = 0


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def _attend(attn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    h = attn.heads
    out = F.scaled_dot_product_attention(_split_heads(q, h), _split_heads(k, h), _split_heads(v, h), scale=attn.scale)
    b, _, n, d = out.shape
    return out.transpose(1, 2).reshape(b, n, h * d)


class ReferenceAttnProcessor:
    """Processor for a self-attention ``attn1`` that can write or read a reference bank.

    Supports exactly what SD1.5's ``attn1`` uses (no masks, norms or residual inside the
    attention); anything else is refused rather than silently computed differently.
    """

    def __init__(self, path: str, control: _Control) -> None:
        self.path = path
        self.control = control
        self.qkv: torch.Tensor | None = None  # fused [Wq; Wk; Wv] (see fuse_qkv)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if attention_mask is not None or encoder_hidden_states is not None:
            raise ValueError("reference attention supports unmasked self-attention only")
        ctl = self.control
        x = hidden_states
        if ctl.mode == "write":
            assert ctl.bank is not None
            ctl.bank.tokens[self.path] = x.detach()
        if self.qkv is not None:
            q, k, v = F.linear(x, self.qkv).chunk(3, dim=-1)
        else:
            q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
        if ctl.mode == "read" and ctl.bank is not None and self.path in ctl.bank.tokens:
            if ctl.count_reads:
                ctl.reads += 1
            u = ctl.uncond_rows
            kr, vr = self._ref_kv(attn, ctl.bank, x.dtype)
            n_cond = x.shape[0] - u
            rows = n_cond // kr.shape[0] if kr.shape[0] > 1 else n_cond
            if kr.shape[0] > 1:  # one reference per video: repeat over its frames
                kr = kr.repeat_interleave(rows, dim=0)
                vr = vr.repeat_interleave(rows, dim=0)
            else:
                kr = kr.expand(n_cond, -1, -1)
                vr = vr.expand(n_cond, -1, -1)
            out_c = _attend(attn, q[u:], torch.cat([k[u:], kr], 1), torch.cat([v[u:], vr], 1))
            out = out_c if u == 0 else torch.cat([_attend(attn, q[:u], k[:u], v[:u]), out_c], 0)
        else:
            out = _attend(attn, q, k, v)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)

    def _ref_kv(self, attn, bank: ReferenceBank, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        hit = bank.kv_cache.get(self.path)
        if hit is None or hit[0].dtype != dtype or torch.is_grad_enabled():
            r = bank.tokens[self.path].to(dtype)
            hit = (attn.to_k(r), attn.to_v(r))
            if not torch.is_grad_enabled():  # weights are fixed while sampling: reuse
                bank.kv_cache[self.path] = hit
        return hit


class FusedSelfAttnProcessor:
    """Plain self-attention with one fused q/k/v projection (inference speed; same math)."""

    def __init__(self, qkv: torch.Tensor) -> None:
        self.qkv = qkv

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if attention_mask is not None or encoder_hidden_states is not None:
            raise ValueError("fused self-attention supports unmasked self-attention only")
        q, k, v = F.linear(hidden_states, self.qkv).chunk(3, dim=-1)
        return attn.to_out[1](attn.to_out[0](_attend(attn, q, k, v)))


class SingleTokenCrossAttnProcessor:
    """Cross-attention ``attn2`` when the context is one token (CHAMP's CLIP image embedding).

    Softmax over a single key is exactly 1, so every query's output is ``to_out(to_v(c))``:
    the query projection, the score product and the per-token output projection are skipped
    (under ``torch.compile`` the unused ``norm2`` goes too). About a tenth of a transformer
    block's projection work at every level; same result as the full attention. Longer
    contexts or masks take diffusers' SDPA processor.
    """

    def __init__(self) -> None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.fallback = AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        c = encoder_hidden_states
        if (
            c is None
            or c.shape[1] != 1
            or attention_mask is not None
            or attn.norm_cross is not None
            or attn.residual_connection
            or hidden_states.ndim != 3
        ):
            return self.fallback(attn, hidden_states, c, attention_mask, temb, **kwargs)
        out = attn.to_out[1](attn.to_out[0](attn.to_v(c)))  # (B, 1, C)
        if attn.rescale_output_factor != 1.0:
            out = out / attn.rescale_output_factor
        return out.expand(-1, hidden_states.shape[1], -1)


@torch.no_grad()
def fuse_qkv(model: nn.Module) -> int:
    """Give every bias-free self-attention one fused [Wq; Wk; Wv] projection (a processor
    attribute, so ``state_dict`` keys are unchanged). Call after loading weights. Returns the
    number of attentions fused."""
    from diffusers.models.attention_processor import Attention

    n = 0
    for mod in model.modules():
        if not isinstance(mod, Attention) or mod.is_cross_attention or mod.to_q.bias is not None:
            continue
        if (
            mod.norm_q is not None
            or mod.norm_k is not None
            or mod.spatial_norm is not None
            or mod.group_norm is not None
        ):
            continue
        w = torch.cat([mod.to_q.weight, mod.to_k.weight, mod.to_v.weight]).detach()
        if isinstance(mod.processor, ReferenceAttnProcessor):
            mod.processor.qkv = w
        else:
            mod.set_processor(FusedSelfAttnProcessor(w))
        n += 1
    return n


@torch.no_grad()
def prepare_reference(unet: nn.Module, bank: ReferenceBank) -> None:
    """Project every reference token set to keys/values once, before sampling (also keeps
    the cache writes out of a ``torch.compile``d forward)."""
    for mod in unet.modules():
        proc = getattr(mod, "processor", None)
        if isinstance(proc, ReferenceAttnProcessor) and proc.path in bank.tokens:
            proc._ref_kv(mod, bank, mod.to_q.weight.dtype)


def install_reference_processors(unet: nn.Module) -> _Control:
    """Give every spatial transformer block's ``attn1`` a reference processor sharing one
    control, and its ``attn2`` the single-token cross-attention shortcut."""
    from diffusers.models.attention import BasicTransformerBlock

    control = _Control()
    for name, mod in unet.named_modules():
        if isinstance(mod, BasicTransformerBlock) and ".motion_modules." not in name:
            mod.attn1.set_processor(ReferenceAttnProcessor(name, control))
            if mod.attn2 is not None:
                mod.attn2.set_processor(SingleTokenCrossAttnProcessor())
    return control
