"""Temporal self-attention for short sequences as one Triton kernel (CUDA only).

The motion modules attend over <= 32 frames at every spatial position: at 80x80 latents
that is 2 x 6400 x 8 tiny (28 x 40) problems per call. Fused attention kernels tile 64-128
queries per block and need the heads split out of the (batch, frames, channels) layout, so
they run ~8x above the memory bound there. Here one program handles one (position, head)
sequence straight from the projection outputs' layout: q/k/v read once, the output written
once in the layout ``to_out`` takes. Same math as SDPA (fp32 scores and softmax, the
unnormalised probabilities cast to the input dtype for the value product, then divided by
the row sum, as flash-attention kernels do).

Imported only when this attention is chosen (``set_temporal_attention(model, "triton")``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_SEQ = 32


@triton.jit
def _temporal_attn_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    o_ptr,
    n,
    c,
    d,
    heads,
    scale,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    b = pid // heads
    h = pid % heads
    base = b.to(tl.int64) * n * c + h * d
    rows = tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_D)
    offs = base + rows[:, None] * c + cols[None, :]
    mask = (rows[:, None] < n) & (cols[None, :] < d)
    q = tl.load(q_ptr + offs, mask=mask, other=0.0)
    k = tl.load(k_ptr + offs, mask=mask, other=0.0)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    s = tl.dot(q, tl.trans(k)) * scale
    s = tl.where(rows[None, :] < n, s, float("-inf"))
    p = tl.exp(s - tl.max(s, 1)[:, None])
    denom = tl.sum(p, 1)
    o = tl.dot(p.to(v.dtype), v) / denom[:, None]
    tl.store(o_ptr + offs, o.to(o_ptr.dtype.element_ty), mask=mask)


def supported(q: torch.Tensor, heads: int) -> bool:
    """Shapes and dtypes this kernel handles (everything else keeps SDPA)."""
    b, n, c = q.shape
    return q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and n <= MAX_SEQ and c % heads == 0


def temporal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v per head over dim 1; q, k, v, result: (B, N, C), C = heads * d."""
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    b, n, c = q.shape
    d = c // heads
    out = torch.empty_like(q)
    block_n = max(16, triton.next_power_of_2(n))
    block_d = max(16, triton.next_power_of_2(d))
    _temporal_attn_kernel[(b * heads,)](
        q,
        k,
        v,
        out,
        n,
        c,
        d,
        heads,
        scale,
        BLOCK_N=block_n,
        BLOCK_D=block_d,
        num_warps=4 if block_d <= 128 else 8,
    )
    return out
