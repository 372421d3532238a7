"""Temporal self-attention for short sequences as one Triton kernel (CUDA only).

The motion modules attend over <= 32 frames at every spatial position: at 80x80 latents
that is 2 x 6400 x 8 tiny (28 x 40) problems per call, pure memory traffic. Fused attention
kernels tile 64-128 queries of *one* sequence and need the heads split out of the
(batch, frames, channels) layout, so they run far above the memory bound there.

Here one program takes ``BLOCK_M // n`` whole consecutive sequences — one contiguous run of
rows of the projection outputs — and attends within each of them through a block-diagonal
mask (the wasted score products are free: the kernel is bound by memory, not math). It
loops over ``HEADS_PER_PROG`` heads, so a program reads whole rows once instead of 80-byte
slivers. q/k/v are read once and the output is written once, in the layout ``to_out``
takes. Same math as SDPA (fp32 scores and softmax, probabilities cast to the input dtype for
the value product, then divided by the row sum, as flash-attention kernels do).

The launch is a ``torch.library`` custom op, so ``torch.compile`` treats it as one opaque
call with contiguous inputs instead of re-tracing the kernel into its graph (which ran it
2.5x slower). Imported only when this attention is chosen
(``set_temporal_attention(model, "triton")``).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

MAX_SEQ = 32

# (BLOCK_M rows per program, heads per program, warps, heads on the fast grid axis): tried per
# shape on the first call. HEADS_FAST=1 puts the heads of the same rows in neighbouring programs
# (they share DRAM rows); 0 puts neighbouring sequences of one head side by side.
CONFIGS = [
    triton.Config({"BLOCK_M": bm, "HEADS_PER_PROG": hp, "HEADS_FAST": hf}, num_warps=w)
    for bm, hp, w, hf in [
        (32, 1, 4, 1),
        (32, 1, 4, 0),
        (64, 1, 4, 1),
        (64, 1, 4, 0),
        (64, 2, 4, 0),
        (64, 8, 4, 0),
        (128, 2, 8, 0),
        (128, 8, 8, 0),
    ]
]


@triton.jit
def _temporal_attn_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    o_ptr,
    rows_total,
    n,
    c,
    d,
    heads,
    scale,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
    HEADS_PER_PROG: tl.constexpr,
    HEADS_FAST: tl.constexpr,
):
    if HEADS_FAST:
        pid_rows, pid_head = tl.program_id(1), tl.program_id(0)
    else:
        pid_rows, pid_head = tl.program_id(0), tl.program_id(1)
    seqs = BLOCK_M // n  # whole sequences per program (n <= BLOCK_M)
    row0 = pid_rows.to(tl.int64) * seqs * n
    r = tl.arange(0, BLOCK_M)
    row = row0 + r
    valid = (r < seqs * n) & (row < rows_total)
    seq = r // n
    # attend within the own sequence only; the diagonal keeps padding rows finite
    allowed = ((seq[:, None] == seq[None, :]) & valid[None, :]) | (r[:, None] == r[None, :])
    cols = tl.arange(0, BLOCK_D)
    mask = valid[:, None] & (cols[None, :] < d)
    for i in tl.static_range(HEADS_PER_PROG):
        h = pid_head * HEADS_PER_PROG + i
        offs = row[:, None] * c + h * d + cols[None, :]
        q = tl.load(q_ptr + offs, mask=mask, other=0.0)
        k = tl.load(k_ptr + offs, mask=mask, other=0.0)
        v = tl.load(v_ptr + offs, mask=mask, other=0.0)
        s = tl.dot(q, tl.trans(k)) * scale
        s = tl.where(allowed, s, float("-inf"))
        p = tl.exp(s - tl.max(s, 1)[:, None])
        denom = tl.sum(p, 1)
        o = tl.dot(p.to(v.dtype), v) / denom[:, None]
        tl.store(o_ptr + offs, o.to(o_ptr.dtype.element_ty), mask=mask)


MAX_GRID_Y = 65535  # CUDA limit of the second grid axis


def _fits(cfg: dict, rows: int, n: int, heads: int) -> bool:
    if cfg["BLOCK_M"] < n or heads % cfg["HEADS_PER_PROG"]:
        return False
    blocks = triton.cdiv(rows, (cfg["BLOCK_M"] // n) * n)
    return blocks <= MAX_GRID_Y if cfg.get("HEADS_FAST") else heads // cfg["HEADS_PER_PROG"] <= MAX_GRID_Y


def _fitting(configs, named_args, **kwargs):
    rows, n, heads = named_args["rows_total"], named_args["n"], named_args["heads"]
    return [cf for cf in configs if _fits(cf.kwargs, rows, n, heads)]


_tuned = triton.autotune(configs=CONFIGS, key=["n", "c", "heads"], prune_configs_by={"early_config_prune": _fitting})(
    _temporal_attn_kernel
)


def supported(q: torch.Tensor, heads: int) -> bool:
    """Shapes and dtypes this kernel handles (everything else keeps SDPA)."""
    b, n, c = q.shape
    return q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and n <= MAX_SEQ and c % heads == 0


def _grid(rows: int, n: int, heads: int):
    def grid(meta):
        blocks, head_groups = triton.cdiv(rows, (meta["BLOCK_M"] // n) * n), heads // meta["HEADS_PER_PROG"]
        return (head_groups, blocks) if meta["HEADS_FAST"] else (blocks, head_groups)

    return grid


def launch(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float, config: dict | None = None
) -> torch.Tensor:
    """Run the kernel: autotuned per (n, c, heads), or with ``config`` = {BLOCK_M, HEADS_PER_PROG,
    [HEADS_FAST], [num_warps]} (benchmarks and the CPU interpreter test)."""
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    b, n, c = q.shape
    d = c // heads
    if n > MAX_SEQ:
        raise ValueError(f"temporal attention kernel takes at most {MAX_SEQ} frames, got {n}")
    out = torch.empty_like(q)
    block_d = max(16, triton.next_power_of_2(d))
    args = (q, k, v, out, b * n, n, c, d, heads, scale)
    # launch on the tensors' GPU, not the current one (models on cuda:1, say)
    with torch.cuda.device(q.device) if q.is_cuda else contextlib.nullcontext():
        if config is None:
            _tuned[_grid(b * n, n, heads)](*args, BLOCK_D=block_d)
        else:
            cfg = {"HEADS_FAST": 0, **config}
            warps = cfg.pop("num_warps", 4)
            if not _fits(cfg, b * n, n, heads):
                raise ValueError(f"config {config} does not fit {b} sequences of n={n}, heads={heads}")
            _temporal_attn_kernel[_grid(b * n, n, heads)(cfg)](*args, BLOCK_D=block_d, num_warps=warps, **cfg)
    return out


@torch.library.custom_op("stm2pe::temporal_attention", mutates_args=())
def _temporal_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    return launch(q, k, v, heads, scale)


@_temporal_attention_op.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    return torch.empty_like(q, memory_format=torch.contiguous_format)


def temporal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v per head over dim 1; q, k, v, result: (B, N, C), C = heads * d."""
    return _temporal_attention_op(q, k, v, heads, float(scale))
