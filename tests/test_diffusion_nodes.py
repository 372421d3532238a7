"""The diffusion nodes end to end on tiny networks (CPU): photo → reference → segment (+ decode)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stm2pe_core.diffusion.reference import reference_from_image
from stm2pe_core.errors import InputError, MissingModelError
from stm2pe_core.models.encoders import build_clip, build_vae, clip_config
from stm2pe_core.models.guidance_encoder import GuidanceEncoder
from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet, tiny_unet_config
from stm2pe_core.types import GuidanceMaps, PoseGuidance
from stm2pe_core.weights.champ import ModelSet, load_models
from stm2pe_core.weights.paths import ModelTree


@pytest.fixture(scope="module")
def models() -> ModelSet:
    torch.manual_seed(0)
    cfg = tiny_unet_config()
    ref, den = ReferenceUNet(cfg).eval(), DenoisingUNet(cfg).eval()
    vae = build_vae(config={**_vae_cfg()})
    clip = build_clip(config={**clip_config(), **_clip_cfg(cfg["cross_attention_dim"])})
    encs = {t: GuidanceEncoder(out_channels=cfg["block_out_channels"][0]).eval() for t in ("depth", "dwpose")}
    return ModelSet(ref, den, vae, clip, encs, torch.device("cpu"), torch.float32)


def _vae_cfg():
    from stm2pe_core.models.encoders import vae_config

    return {**vae_config(), "block_out_channels": [32, 32, 32, 32], "layers_per_block": 1}


def _clip_cfg(dim):
    return {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "projection_dim": dim,
    }


@pytest.mark.slow
def test_nodes_photo_to_segment(models):
    from pack_loader import pack_submodule

    nodes = pack_submodule("nodes.diffusion")
    STM2PEDenoiseVideoSegment, STM2PEReferenceUNet = nodes.STM2PEDenoiseVideoSegment, nodes.STM2PEReferenceUNet

    photo = torch.rand(1, 50, 40, 4)  # RGBA ComfyUI IMAGE, odd aspect
    (ref,) = STM2PEReferenceUNet().encode(models, photo, 64, 64, "crop")
    assert ref.latent.shape == (1, 4, 8, 8) and ref.clip_embedding.shape == (1, 1, 16)
    assert ref.bank.writes == 1 and len(ref.bank.tokens) == 16
    maps = GuidanceMaps(maps={"dwpose": np.random.rand(9, 48, 48, 3).astype(np.float32)}, fps=15.0, size=(48, 48))
    seg, frames = STM2PEDenoiseVideoSegment().denoise(
        models, ref, 2, 3.5, 5, 2, 4, "P", 3, 1, "linear", True, guidance_maps=maps
    )
    assert (seg.start, seg.stop) == (2, 6) and seg.latents.shape == (1, 4, 4, 8, 8)
    assert frames.shape == (4, 64, 64, 3) and 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    with pytest.raises(Exception, match="needs depth maps") as ei:  # the pack's own InputError class
        STM2PEDenoiseVideoSegment().denoise(
            models, ref, 1, 3.5, 5, 0, 4, "DNS", 3, 1, "linear", False, guidance_maps=maps
        )
    assert type(ei.value).__name__ == "InputError"


def test_pose_guidance_path_and_frame_range(models):
    from stm2pe_core.diffusion.sampling import denoise_video_segment

    ref = reference_from_image(models, np.random.rand(64, 64, 3).astype(np.float32), 64, 64)
    pg = PoseGuidance(features=torch.randn(10, 32, 16, 16) * 0.1, fps=15.0, origin="m2penc")  # resized to 8x8
    seg, frames = denoise_video_segment(models, ref, pose_guidance=pg, start_frame=7, num_frames=0, steps=1)
    assert (seg.start, seg.stop) == (7, 10) and seg.latents.shape[2] == 3 and frames is None
    with pytest.raises(InputError, match="outside"):
        denoise_video_segment(models, ref, pose_guidance=pg, start_frame=10, steps=1)


def test_load_models_names_missing_files(tmp_path):
    (tmp_path / "champ").mkdir()
    with pytest.raises(MissingModelError) as ei:
        load_models(ModelTree(tmp_path), device="cpu")
    assert "denoising_unet" in str(ei.value) and "champ" in str(ei.value)


def test_segment_guidance_keeps_no_autograd_graph(models):
    """Guidance features must not hold the encoders' activations alive (an autograd graph
    behind the returned tensor kept ~55 GiB on the GPU for a 75-frame 640² PDNS segment)."""
    from stm2pe_core.diffusion.sampling import segment_guidance

    assert any(p.requires_grad for p in models.guidance_encoders["depth"].parameters())  # as built in tests
    maps = GuidanceMaps(
        maps={t: np.random.rand(5, 64, 64, 3).astype(np.float32) for t in ("depth", "dwpose")}, fps=15.0, size=(64, 64)
    )
    g = segment_guidance(models, slice(1, 4), (8, 8), guidance_maps=maps, guidance_set="P")
    assert g.shape == (3, 32, 8, 8)
    assert g.grad_fn is None and not g.requires_grad
