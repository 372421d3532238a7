"""Temporal attention implementations of the motion modules: every choice computes the same
function as SDPA; the Triton kernel is checked in Triton's CPU interpreter when triton exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stm2pe_core.models.motion_module import MotionModule, set_temporal_attention

ROOT = Path(__file__).resolve().parents[1]


def _module_and_input(seed: int = 0):
    torch.manual_seed(seed)
    mm = MotionModule(64, heads=4).eval()
    for p in mm.parameters():  # proj_out is zero-initialised in CHAMP: randomise everything
        p.data.normal_(0, 0.2)
    return mm, torch.randn(2 * 7, 64, 3, 5)  # 2 videos x 7 frames


@pytest.mark.parametrize("impl", ["math", "triton"])
def test_temporal_attention_choices_match_sdpa(impl):
    mm, x = _module_and_input()
    with torch.no_grad():
        assert set_temporal_attention(mm, "sdpa") == 2
        ref = mm(x, num_frames=7)
        assert set_temporal_attention(mm, impl) == 2  # triton: falls back to SDPA on the CPU
        out = mm(x, num_frames=7)
    assert (ref - x).abs().max() > 0.1  # the module does something
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-5)


def test_unknown_temporal_attention_is_refused():
    mm, _ = _module_and_input()
    with pytest.raises(ValueError, match="triton"):
        set_temporal_attention(mm, "flash")


_KERNEL_CHECK = """
import torch, torch.nn.functional as F
from stm2pe_core.models import temporal_triton as tt
torch.manual_seed(0)
worst = 0.0
for b, n, h, d in [(3, 28, 8, 40), (2, 7, 2, 80), (1, 32, 1, 160), (2, 1, 2, 16)]:
    q, k, v = (torch.randn(b, n, h * d) for _ in range(3))
    out = tt.temporal_attention(q, k, v, h, d ** -0.5)
    sp = lambda z: z.view(b, n, h, d).transpose(1, 2)
    ref = F.scaled_dot_product_attention(sp(q), sp(k), sp(v), scale=d ** -0.5)
    worst = max(worst, float((out - ref.transpose(1, 2).reshape(b, n, h * d)).abs().max()))
print(worst)
"""


@pytest.mark.slow
def test_triton_kernel_matches_sdpa_in_interpreter():
    pytest.importorskip("triton")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=path)
    res = subprocess.run(
        [sys.executable, "-c", _KERNEL_CHECK], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert float(res.stdout.strip().splitlines()[-1]) < 1e-5
