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
