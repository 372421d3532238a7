"""Parity of our CHAMP networks with CHAMP's published code (fp32, CPU, tiny configs).

Needs a checkout of https://github.com/fudan-generative-vision/champ (commit 02e5533; nothing of
it is vendored here) and ``einops``:

    python bench/parity_champ.py --champ /path/to/champ

CHAMP pins diffusers 0.24; three names it imports moved or were removed in later diffusers, so
this script aliases them before importing CHAMP's ``models`` package (no file is edited).
Exits non-zero when any difference exceeds the fp32 tolerance.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _shim_diffusers() -> None:
    import diffusers.models.embeddings as emb

    if not hasattr(emb, "PositionNet"):
        emb.PositionNet = getattr(emb, "GLIGENTextBoundingboxProjection", object)
    if not hasattr(emb, "CaptionProjection"):
        emb.CaptionProjection = emb.PixArtAlphaTextProjection
    if "diffusers.models.dual_transformer_2d" not in sys.modules:
        from diffusers.models.transformers import dual_transformer_2d

        mod = types.ModuleType("diffusers.models.dual_transformer_2d")
        mod.DualTransformer2DModel = dual_transformer_2d.DualTransformer2DModel
        sys.modules[mod.__name__] = mod


def _randomise(m: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for n, p in m.named_parameters():
        with torch.no_grad():
            base = 1.0 if p.ndim == 1 and "norm" in n and n.endswith("weight") else 0.0
            p.copy_(0.05 * torch.randn(p.shape, generator=g) + base)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--champ", required=True, help="CHAMP checkout (the folder holding models/)")
    ap.add_argument("--tol", type=float, default=1e-5, help="max relative L2 error")
    args = ap.parse_args()
    _shim_diffusers()
    sys.path.insert(0, str(Path(args.champ).resolve()))
    from models.attention import BasicTransformerBlock as ChampBlock
    from models.guidance_encoder import GuidanceEncoder as ChampGE
    from models.mutual_self_attention import ReferenceAttentionControl
    from models.unet_2d_condition import UNet2DConditionModel as ChampRef
    from models.unet_3d import UNet3DConditionModel as ChampDen

    from stm2pe_core.models.guidance_encoder import GuidanceEncoder
    from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet, tiny_unet_config

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm())

    worst = 0.0
    c = ChampGE(guidance_embedding_channels=320, guidance_input_channels=3, block_out_channels=(16, 32, 96, 256)).eval()
    _randomise(c, 1)
    o = GuidanceEncoder().eval()
    o.load_state_dict({k: v for k, v in c.state_dict().items() if not k.startswith("guidance_attention.")}, strict=True)
    x = torch.rand(1, 3, 4, 64, 48)
    with torch.no_grad():
        e = rel(o(x), c(x))
    print(f"guidance encoder: relative L2 error {e:.2e}")
    worst = max(worst, e)

    cfg = tiny_unet_config()
    base = {
        k: v
        for k, v in cfg.items()
        if k not in ("down_block_types", "up_block_types", "mid_block_type", "only_cross_attention")
    }
    mm = dict(
        num_attention_heads=8,
        num_transformer_block=1,
        attention_block_types=["Temporal_Self", "Temporal_Self"],
        temporal_position_encoding=True,
        temporal_position_encoding_max_len=32,
        temporal_attention_dim_div=1,
    )
    cden = ChampDen(
        **base,
        use_inflated_groupnorm=True,
        use_motion_module=True,
        motion_module_resolutions=[1, 2, 4, 8],
        motion_module_mid_block=True,
        motion_module_decoder_only=False,
        motion_module_type="Vanilla",
        motion_module_kwargs=mm,
        unet_use_cross_frame_attention=False,
        unet_use_temporal_attention=False,
    ).eval()
    cref = ChampRef(**cfg).eval()
    _randomise(cden, 2)
    _randomise(cref, 3)
    oden, oref = DenoisingUNet(cfg).eval(), ReferenceUNet(cfg).eval()
    oden.load_state_dict(cden.state_dict(), strict=True)
    oref.load_state_dict(cref.state_dict(), strict=True)
    lat = torch.randn(1, 4, 16, 16)
    emb = torch.randn(1, 1, cfg["cross_attention_dim"])
    x = torch.randn(1, 4, 5, 16, 16)
    g = torch.randn(1, cfg["block_out_channels"][0], 5, 16, 16) * 0.3
    t = torch.tensor(701)
    ctx2 = torch.cat([torch.zeros_like(emb), emb])
    writer = ReferenceAttentionControl(cref, do_classifier_free_guidance=True, mode="write", fusion_blocks="full")
    reader = ReferenceAttentionControl(cden, do_classifier_free_guidance=True, mode="read", fusion_blocks="full")
    with torch.no_grad():
        cref(lat.repeat(2, 1, 1, 1), torch.zeros_like(t), encoder_hidden_states=ctx2, return_dict=False)
        reader.update(writer, dtype=torch.float32)
        want = cden(
            torch.cat([x, x]), t, encoder_hidden_states=ctx2, guidance_fea=torch.cat([g, g]), return_dict=False
        )[0]
        bank = oref.write_bank(lat, emb)
        got = oden(torch.cat([x, x]), t, ctx2, torch.cat([g, g]), reference=bank, uncond_videos=1)
    names = [n for n, m in cref.named_modules() if isinstance(m, ChampBlock)]
    mods = [m for m in cref.modules() if isinstance(m, ChampBlock)]
    eb = max(rel(bank.tokens[n][0], m.bank[0][1]) for n, m in zip(names, mods))
    eu, ec = rel(got[0], want[0]), rel(got[1], want[1])
    print(f"reference bank (16 blocks): worst relative L2 error {eb:.2e}")
    print(f"denoising UNet, CFG uncond half (zero context, no reference): {eu:.2e}")
    print(f"denoising UNet, CFG cond half (reference tokens): {ec:.2e}")
    worst = max(worst, eb, eu, ec)
    print("PASS" if worst <= args.tol else "FAIL", f"(worst {worst:.2e}, tolerance {args.tol:.0e})")
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    raise SystemExit(main())
