"""CHAMP UNets: manifest key layout (full size, meta), shape flow, 2D parity with diffusers,
per-frame GroupNorm, motion-module math, reference attention read/write and CFG semantics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from stm2pe_core.models.motion_module import MotionModule
from stm2pe_core.models.reference_attention import ReferenceAttnProcessor, ReferenceBank, _Control
from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet, build_unets, tiny_unet_config

FIXTURE = Path(__file__).parent / "data" / "champ_keys.json"
MANIFESTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "champ_manifests"


def _shapes(sd) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in sd.items()}


@pytest.fixture(scope="module")
def meta_unets():
    return build_unets(device="meta")


def test_full_size_meta_unets_match_fixture(meta_unets):
    ref, den = meta_unets
    fx = json.loads(FIXTURE.read_text())["files"]
    assert _shapes(ref.state_dict()) == fx["reference_unet.pth"]["keys"]
    sd = den.state_dict()
    assert len(sd) == 1274
    two_d = {k: v for k, v in sd.items() if ".motion_modules." not in k}
    assert _shapes(two_d) == fx["denoising_unet.pth"]["keys"]
    assert _shapes(den.motion_state_dict()) == fx["motion_module.pth"]["keys"]


@pytest.mark.parametrize("name", ["denoising_unet.pth", "reference_unet.pth", "motion_module.pth"])
def test_full_size_meta_unets_match_shared_manifests(meta_unets, name):
    path = MANIFESTS / f"{name}.json"
    if not path.exists():
        pytest.skip("shared CHAMP manifests not present")
    man = json.loads(path.read_text())
    ref, den = meta_unets
    sd = den.state_dict()
    if name == "reference_unet.pth":
        sd = ref.state_dict()
    elif name == "motion_module.pth":
        sd = den.motion_state_dict()
    else:
        sd = {k: v for k, v in sd.items() if ".motion_modules." not in k}
    want = {k: v[0] for k, v in man["keys"].items()}
    assert len(want) == man["num_keys"]
    assert _shapes(sd) == want
    assert sum(math.prod(s) for s in want.values()) == man["num_elements"]


# ---------------------------------------------------------------- tiny networks on the CPU


def _randomise(module: torch.nn.Module, seed: int = 0, std: float = 0.05) -> None:
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        with torch.no_grad():
            if name.endswith("norm.weight") or ".norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def _zero_motion(den: DenoisingUNet) -> None:
    for k, p in den.named_parameters():
        if ".motion_modules." in k and "proj_out" in k:
            p.data.zero_()


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = tiny_unet_config()
    ref, den = ReferenceUNet(cfg).eval(), DenoisingUNet(cfg).eval()
    _randomise(ref, 1)
    _randomise(den, 2)
    return cfg, ref, den


@pytest.mark.slow
def test_tiny_shape_flow_and_bank(tiny):
    cfg, ref, den = tiny
    latent = torch.randn(1, 4, 16, 24)
    ctx = torch.randn(1, 1, cfg["cross_attention_dim"])
    bank = ref.write_bank(latent, ctx)
    assert bank.writes == 1
    assert len(bank.tokens) == 16  # every spatial transformer block of SD1.5's layout
    widths = sorted({v.shape[-1] for v in bank.tokens.values()})
    assert widths == [32, 64]
    assert bank.tokens["down_blocks.0.attentions.0.transformer_blocks.0"].shape == (1, 16 * 24, 32)
    assert bank.tokens["up_blocks.3.attentions.2.transformer_blocks.0"].shape == (1, 16 * 24, 32)
    assert bank.tokens["mid_block.attentions.0.transformer_blocks.0"].shape == (1, 2 * 3, 64)
    x = torch.randn(2, 4, 5, 16, 24)
    g = torch.randn(2, 32, 5, 16, 24)
    with torch.no_grad():
        y = den(x, 999, ctx.expand(2, -1, -1), g, reference=bank)
    assert y.shape == (2, 4, 5, 16, 24)
    assert torch.isfinite(y).all()
    assert den._ref.mode == "off"  # state reset after the call


@pytest.mark.slow
def test_2d_path_equals_diffusers_unet_per_frame(tiny):
    """With motion modules at their zero-initialised identity and no reference, the denoising
    UNet is diffusers' SD UNet applied to every frame (guidance added after conv_in)."""
    from diffusers import UNet2DConditionModel

    cfg, _, den0 = tiny
    den = DenoisingUNet(cfg).eval()
    den.load_state_dict(den0.state_dict())
    _zero_motion(den)
    base = UNet2DConditionModel(**cfg).eval()
    base.load_state_dict({k: v for k, v in den.state_dict().items() if ".motion_modules." not in k}, strict=True)
    x = torch.randn(1, 4, 3, 16, 16)
    ctx = torch.randn(1, 1, cfg["cross_attention_dim"])
    g = torch.randn(1, 32, 3, 16, 16)
    with torch.no_grad():
        y = den(x, 500, ctx, g)
        # conv_in + guidance == conv_in with the guidance folded into its bias per frame
        for f in range(3):
            want_in = x[:, :, f]
            hook = base.conv_in.register_forward_hook(lambda m, i, o, f=f: o + g[:, :, f])
            want = base(want_in, 500, encoder_hidden_states=ctx).sample
            hook.remove()
            torch.testing.assert_close(y[:, :, f], want, rtol=1e-4, atol=1e-5)


def test_groupnorm_per_frame_and_motion_mixes_frames(tiny):
    cfg, _, den = tiny
    ctx = torch.randn(1, 1, cfg["cross_attention_dim"])
    x = torch.randn(1, 4, 4, 16, 16)
    x2 = x.clone()
    x2[:, :, 3] *= 5.0  # change only the last frame
    with torch.no_grad():
        a, b = den(x, 10, ctx), den(x2, 10, ctx)
    assert (a[:, :, :3] - b[:, :, :3]).abs().max() > 1e-4  # motion modules carry information across frames
    z = DenoisingUNet(cfg).eval()
    z.load_state_dict(den.state_dict())
    _zero_motion(z)
    with torch.no_grad():
        a, b = z(x, 10, ctx), z(x2, 10, ctx)
    torch.testing.assert_close(a[:, :, :3], b[:, :, :3], rtol=0, atol=1e-6)  # 2D path is per frame


def _champ_motion_reference(mm: MotionModule, x5: torch.Tensor) -> torch.Tensor:
    """AnimateDiff v2 / CHAMP motion module written out in CHAMP's order of rearranges."""
    tt = mm.temporal_transformer
    b, c, f, h, w = x5.shape
    x = x5.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    res = x
    t = tt.norm(x).permute(0, 2, 3, 1).reshape(b * f, h * w, c)
    t = tt.proj_in(t)
    blk = tt.transformer_blocks[0]
    for attn, norm in zip(blk.attention_blocks, blk.norms):
        n = norm(t)
        d = n.shape[1]
        n = n.reshape(b, f, d, c).permute(0, 2, 1, 3).reshape(b * d, f, c)  # (b f) d c -> (b d) f c
        n = n + attn.pos_encoder.pe[:, :f]
        q, k, v = attn.to_q(n), attn.to_k(n), attn.to_v(n)
        hd = c // attn.heads

        def sp(z, d=d, heads=attn.heads, hd=hd):
            return z.reshape(b * d, f, heads, hd).transpose(1, 2)

        wts = (sp(q) @ sp(k).transpose(-1, -2) / math.sqrt(hd)).softmax(-1)
        o = (wts @ sp(v)).transpose(1, 2).reshape(b * d, f, c)
        o = attn.to_out[0](o)
        o = o.reshape(b, d, f, c).permute(0, 2, 1, 3).reshape(b * f, d, c)
        t = o + t
    t = blk.ff(blk.ff_norm(t)) + t
    t = tt.proj_out(t).reshape(b * f, h, w, c).permute(0, 3, 1, 2)
    out = t + res
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def test_motion_module_matches_animatediff_math():
    torch.manual_seed(3)
    mm = MotionModule(64).eval()
    _randomise(mm, 4, std=0.1)
    pe = mm.temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder.pe
    assert pe.shape == (1, 32, 64)
    pos = torch.arange(32.0)[:, None]
    div = torch.exp(torch.arange(0, 64, 2) * (-math.log(10000.0) / 64))
    torch.testing.assert_close(pe[0, :, 0::2], torch.sin(pos * div))
    torch.testing.assert_close(pe[0, :, 1::2], torch.cos(pos * div))
    x5 = torch.randn(2, 64, 6, 3, 5)
    with torch.no_grad():
        got = mm(x5.permute(0, 2, 1, 3, 4).reshape(12, 64, 3, 5), 6).reshape(2, 6, 64, 3, 5).permute(0, 2, 1, 3, 4)
        want = _champ_motion_reference(mm, x5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(Exception, match="at most 32 frames"):
        mm(torch.randn(33, 64, 2, 2), 33)


def test_reference_processor_equals_concat_attention():
    """Read = CHAMP's cat([norm1(x), bank]) keys/values; uncond rows plain self-attention."""
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(5)
    attn = Attention(query_dim=32, heads=4, dim_head=8, bias=False).eval()
    ctl = _Control()
    attn.set_processor(ReferenceAttnProcessor("blk", ctl))
    bank = ReferenceBank({"blk": torch.randn(1, 7, 32)})
    x = torch.randn(6, 5, 32)  # 2 videos x 3 frames: first video uncond

    def plain(q_in, kv_in):
        q, k, v = attn.to_q(q_in), attn.to_k(kv_in), attn.to_v(kv_in)

        def sp(z):
            return z.reshape(z.shape[0], z.shape[1], 4, 8).transpose(1, 2)

        w = (sp(q) @ sp(k).transpose(-1, -2) / math.sqrt(8)).softmax(-1)
        return attn.to_out[0]((w @ sp(v)).transpose(1, 2).reshape(q_in.shape[0], -1, 32))

    with torch.no_grad():
        ctl.mode, ctl.bank, ctl.uncond_rows = "read", bank, 3
        got = attn(x)
        ref_rep = bank.tokens["blk"].expand(3, -1, -1)
        want_c = plain(x[3:], torch.cat([x[3:], ref_rep], 1))
        want_u = plain(x[:3], x[:3])
        torch.testing.assert_close(got[3:], want_c, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got[:3], want_u, rtol=1e-5, atol=1e-6)
        assert "blk" in bank.kv_cache  # reference K/V computed once and reused
        ctl.mode = "off"
        torch.testing.assert_close(attn(x), plain(x, x), rtol=1e-5, atol=1e-6)


def test_single_token_cross_attention_equals_full_attention():
    """attn2 with one context token skips q/scores (softmax over one key is 1): same output as
    diffusers' SDPA processor; zero context (CFG uncond) gives the output bias; longer
    contexts and masks fall back to the full attention."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from stm2pe_core.models.reference_attention import SingleTokenCrossAttnProcessor

    torch.manual_seed(6)
    attn = Attention(query_dim=32, cross_attention_dim=24, heads=4, dim_head=8, bias=False).eval()
    x = torch.randn(3, 10, 32)
    fast, full = SingleTokenCrossAttnProcessor(), AttnProcessor2_0()
    with torch.no_grad():
        for ctx in (torch.randn(3, 1, 24), torch.randn(3, 4, 24)):
            attn.set_processor(full)
            want = attn(x, encoder_hidden_states=ctx)
            attn.set_processor(fast)
            got = attn(x, encoder_hidden_states=ctx)
            assert got.shape == (3, 10, 32)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        got = attn(x, encoder_hidden_states=torch.zeros(3, 1, 24))
        torch.testing.assert_close(got, attn.to_out[0].bias.expand(3, 10, 32), rtol=0, atol=1e-7)
        # every query gets the same row, whatever the query is
        torch.testing.assert_close(got[:, 0], got[:, 9])


def test_unets_use_single_token_cross_attention(tiny):
    from stm2pe_core.models.reference_attention import SingleTokenCrossAttnProcessor

    _, ref, den = tiny
    for m in (ref, den):
        procs = [
            mod.attn2.processor
            for n, mod in m.named_modules()
            if n.endswith("transformer_blocks.0") and hasattr(mod, "attn2")
        ]
        assert len(procs) == 16
        assert all(isinstance(p, SingleTokenCrossAttnProcessor) for p in procs)


def test_batched_cfg_uncond_half_has_no_reference(tiny):
    cfg, ref, den = tiny
    ctx = torch.randn(1, 1, cfg["cross_attention_dim"])
    bank = ref.write_bank(torch.randn(1, 4, 16, 16), ctx)
    x = torch.randn(1, 4, 3, 16, 16)
    g = torch.randn(1, 32, 3, 16, 16)
    zero = torch.zeros_like(ctx)
    with torch.no_grad():
        both = den(torch.cat([x, x]), 700, torch.cat([zero, ctx]), torch.cat([g, g]), reference=bank, uncond_videos=1)
        uncond = den(x, 700, zero, g)
        cond = den(x, 700, ctx, g, reference=bank)
        no_ref = den(x, 700, ctx, g)
    torch.testing.assert_close(both[:1], uncond, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both[1:], cond, rtol=1e-4, atol=1e-5)
    assert (cond - no_ref).abs().max() > 1e-4  # the reference does change the prediction


@pytest.mark.slow
def test_fused_qkv_same_outputs_and_keys(tiny):
    from stm2pe_core.models.reference_attention import fuse_qkv

    cfg, ref, den0 = tiny
    den = DenoisingUNet(cfg).eval()
    den.load_state_dict(den0.state_dict())
    ctx = torch.randn(1, 1, cfg["cross_attention_dim"])
    bank = ref.write_bank(torch.randn(1, 4, 16, 16), ctx)
    x = torch.randn(2, 4, 3, 16, 16)
    c2 = torch.cat([torch.zeros_like(ctx), ctx])
    with torch.no_grad():
        a = den(x, 300, c2, reference=bank, uncond_videos=1)
        assert fuse_qkv(den) == 16 + 21 * 2  # spatial attn1 + two temporal attentions per motion module
        b = den(x, 300, c2, reference=bank, uncond_videos=1)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert set(den.state_dict()) == set(den0.state_dict())  # no new keys
