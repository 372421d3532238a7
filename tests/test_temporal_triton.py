"""The Triton temporal-attention kernel against SDPA, run in Triton's CPU interpreter
(skipped where triton is not installed, e.g. CPU-only torch wheels)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("triton")

SCRIPT = textwrap.dedent(
    """
    import itertools, torch
    import torch.nn.functional as F
    from stm2pe_core.models import temporal_triton as tt
    torch.manual_seed(0)
    worst = 0.0
    shapes = [(5, 28, 64, 8), (3, 24, 32, 2), (7, 7, 48, 4), (2, 32, 40, 1)]
    configs = [dict(BLOCK_M=32, HEADS_PER_PROG=1), dict(BLOCK_M=32, HEADS_PER_PROG=1, HEADS_FAST=1),
               dict(BLOCK_M=64, HEADS_PER_PROG=2), dict(BLOCK_M=128, HEADS_PER_PROG=1, HEADS_FAST=1)]
    for (b, n, c, heads), cfg in itertools.product(shapes, configs):
        if heads % cfg["HEADS_PER_PROG"]:
            continue
        q, k, v = (torch.randn(b, n, c) for _ in range(3))
        d = c // heads
        out = tt.launch(q, k, v, heads, d ** -0.5, config=cfg)
        sp = lambda z: z.view(b, n, heads, d).transpose(1, 2)
        ref = F.scaled_dot_product_attention(sp(q), sp(k), sp(v)).transpose(1, 2).reshape(b, n, c)
        worst = max(worst, float((out - ref).abs().max()))
    print("WORST", worst)
    """
)


def test_kernel_matches_sdpa_in_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    worst = float(res.stdout.split("WORST")[-1])
    assert (
        worst < 1e-5
    )  # fp32 in the interpreter: same math as SDPA (sequences of 7-32 frames, blocks of 1-18 sequences)
