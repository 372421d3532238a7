"""VAE / CLIP image encoder: strict loading from diffusers / transformers folders and single files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from stm2pe_core.errors import MissingModelError, WeightsError
from stm2pe_core.models.encoders import build_clip, build_vae, clip_config, load_clip, load_vae, vae_config

TINY_VAE = {"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1}
TINY_CLIP = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "projection_dim": 16,
}


def test_full_size_configs_build_on_meta():
    vae = build_vae("meta")
    clip = build_clip("meta")
    n_vae = sum(p.numel() for p in vae.parameters())
    n_clip = sum(p.numel() for p in clip.parameters())
    assert 83_000_000 < n_vae < 84_000_000  # sd-vae-ft-mse: 83.65 M parameters
    assert 303_000_000 < n_clip < 305_000_000  # ViT-L/14 vision tower + 768-d projection
    assert vae.config.scaling_factor == 0.18215 and clip.config.projection_dim == 768


def test_vae_folder_and_file_load_strictly(tmp_path):
    vae = build_vae(config={**vae_config(), **TINY_VAE})
    folder = tmp_path / "sd-vae-ft-mse"
    vae.save_pretrained(folder)
    got = load_vae(folder)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(got.encode(x).latent_dist.mean, vae.encode(x).latent_dist.mean)
    sd = dict(vae.state_dict())
    del sd["decoder.conv_out.weight"]
    save_file(sd, str(tmp_path / "broken_vae.safetensors"))
    with pytest.raises(WeightsError, match="broken_vae.safetensors.*decoder.conv_out.weight"):
        load_vae(tmp_path / "broken_vae.safetensors")  # full-size config: names the missing key
    with pytest.raises(MissingModelError):
        load_vae(tmp_path / "nothing")


def test_clip_folder_loads_strictly(tmp_path):
    clip = build_clip(config={**clip_config(), **TINY_CLIP})
    folder = tmp_path / "image_encoder"
    clip.save_pretrained(folder)
    got = load_clip(folder)
    px = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(got(pixel_values=px).image_embeds, clip(pixel_values=px).image_embeds)


def _to_ldm_vae(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKL keys -> original-SD ('first_stage_model.') keys, as in
    vae-ft-mse-840000-ema-pruned.safetensors (test helper: the inverse of the library's conversion)."""
    import re

    out = {}
    for k, v in sd.items():
        n = k
        n = re.sub(r"encoder\.down_blocks\.(\d)\.resnets\.(\d)", r"encoder.down.\1.block.\2", n)
        n = re.sub(r"encoder\.down_blocks\.(\d)\.downsamplers\.0", r"encoder.down.\1.downsample", n)
        n = re.sub(r"decoder\.up_blocks\.(\d)\.resnets\.(\d)", lambda m: f"decoder.up.{3 - int(m[1])}.block.{m[2]}", n)
        n = re.sub(r"decoder\.up_blocks\.(\d)\.upsamplers\.0", lambda m: f"decoder.up.{3 - int(m[1])}.upsample", n)
        n = re.sub(r"mid_block\.resnets\.(\d)", lambda m: f"mid.block_{int(m[1]) + 1}", n)
        n = n.replace("mid_block.attentions.0.", "mid.attn_1.")
        n = n.replace("attn_1.group_norm", "attn_1.norm").replace("attn_1.to_out.0", "attn_1.proj_out")
        for a, b in (("to_q", "q"), ("to_k", "k"), ("to_v", "v")):
            n = n.replace(f"attn_1.{a}.", f"attn_1.{b}.")
        n = n.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        if ".attn_1." in n and n.endswith("weight") and v.ndim == 2:
            v = v[:, :, None, None]  # LDM keeps the attention projections as 1x1 convolutions
        out["first_stage_model." + n] = v
    return out


@pytest.mark.slow
def test_original_sd_vae_single_file_converts_and_matches(tmp_path):
    """A full-size original-SD VAE file (ComfyUI's models/vae/*.safetensors layout) is detected,
    converted to diffusers keys, loaded strictly and computes what the source network computes."""
    torch.manual_seed(0)
    vae = build_vae().eval()
    ldm = _to_ldm_vae(vae.state_dict())
    assert "first_stage_model.decoder.up.0.block.0.conv1.weight" in ldm
    assert ldm["first_stage_model.encoder.mid.attn_1.q.weight"].shape == (512, 512, 1, 1)
    path = tmp_path / "vae-ft-mse-840000-ema-pruned.safetensors"
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(path))
    got = load_vae(path)
    x = torch.rand(1, 3, 32, 32)
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(got.encode(x).latent_dist.mean, vae.encode(x).latent_dist.mean)
        torch.testing.assert_close(got.decode(z).sample, vae.decode(z).sample)
    del ldm["first_stage_model.decoder.up.3.block.1.conv2.bias"]
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(tmp_path / "cut.safetensors"))
    with pytest.raises(WeightsError, match=r"cut\.safetensors.*decoder\.up_blocks\.0\.resnets\.1\.conv2\.bias"):
        load_vae(tmp_path / "cut.safetensors")


@pytest.mark.slow
def test_clip_single_file_full_size_loads_strictly(tmp_path):
    """One .safetensors with transformers' keys (an older file with position_ids) loads with the
    repo's sd-image-variations config, every tensor in place; a file from another CLIP size is
    refused with its name. (Forward equality is checked on the tiny folder model above.)"""
    g = torch.Generator().manual_seed(1)
    shapes = {k: v.shape for k, v in build_clip("meta").state_dict().items()}
    sd = {k: torch.randn(s, generator=g).half() for k, s in shapes.items()}
    sd["vision_model.embeddings.position_ids"] = torch.arange(257)[None]
    path = tmp_path / "sd-image-variations-image-encoder.safetensors"
    save_file(sd, str(path))
    got = load_clip(path, dtype=torch.float16)
    loaded = got.state_dict()
    assert set(loaded) == set(shapes)
    for k in (
        "visual_projection.weight",
        "vision_model.encoder.layers.23.mlp.fc2.weight",
        "vision_model.post_layernorm.bias",
    ):
        assert torch.equal(loaded[k], sd[k])
    assert torch.equal(got.vision_model.embeddings.position_ids, torch.arange(257)[None])
    assert got.config.projection_dim == 768 and got.config.num_hidden_layers == 24
    small = build_clip(config={**clip_config(), **TINY_CLIP})
    save_file(small.state_dict(), str(tmp_path / "small.safetensors"))
    with pytest.raises(WeightsError, match="small.safetensors"):
        load_clip(tmp_path / "small.safetensors")
