"""Classifier-free guidance with CHAMP's unconditional semantics.

Unconditional = zero CLIP image embedding **and** no reference tokens in self-attention, with
the same guidance features (CHAMP's pipeline). CFG is affine with weights summing to one, so
it commutes with the per-frame window fusion and is applied per window.
"""

from __future__ import annotations

import torch


def uncond_context(context: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(context)


def combine(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    return uncond + scale * (cond - uncond)


def guided_prediction(unet, x, t, context, guidance, bank, scale: float, batched: bool = True) -> torch.Tensor:
    """One CFG prediction for clip batch ``x`` (V, 4, F, h, w).

    ``batched`` runs the unconditional and conditional halves as one batch (faster); otherwise
    two calls (less memory). ``scale <= 1`` skips the unconditional pass.
    """
    v = x.shape[0]
    if scale <= 1.0:
        return unet(x, t, context, guidance, reference=bank)
    zero = uncond_context(context)
    if batched:
        g2 = None if guidance is None else torch.cat([guidance, guidance])
        out = unet(torch.cat([x, x]), t, torch.cat([zero, context]), g2, reference=bank, uncond_videos=v)
        u, c = out[:v], out[v:]
    else:
        u = unet(x, t, zero, guidance, reference=None)
        c = unet(x, t, context, guidance, reference=bank)
    return combine(u, c, scale)
