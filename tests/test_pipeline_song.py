"""generate_song: the whole-song photoreal loop over the real denoise_segment with tiny random UNets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stm2pe_core.diffusion.continuation import ContinuationConfig
from stm2pe_core.diffusion.reference import Reference
from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet, sd15_unet_config
from stm2pe_core.pipeline import generate_song
from stm2pe_core.video import VideoWriter, video_info


def _randomise(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        with torch.no_grad():
            p.copy_(0.05 * torch.randn(p.shape, generator=g) + (1.0 if p.ndim == 1 and "norm" in name else 0.0))


def smallest_unet_config() -> dict:
    """SD1.5's block layout with 32 channels and one layer per block: the cheapest UNet stand-in."""
    return sd15_unet_config(
        block_out_channels=[32, 32, 32, 32],
        norm_num_groups=8,
        cross_attention_dim=16,
        attention_head_dim=2,
        layers_per_block=1,
    )


@pytest.fixture(scope="module")
def tiny_stack():
    """Test stand-ins: SD1.5-layout UNets with few channels and random weights, a random reference."""
    cfg = smallest_unet_config()
    ref, den = ReferenceUNet(cfg).eval(), DenoisingUNet(cfg).eval()
    _randomise(ref, 1)
    _randomise(den, 2)
    g = torch.Generator().manual_seed(7)
    latent = torch.randn(1, 4, 4, 4, generator=g)
    emb = torch.randn(1, 1, cfg["cross_attention_dim"], generator=g)
    reference = Reference(
        latent=latent, clip_embedding=emb, bank=ref.write_bank(latent, emb), image=torch.zeros(32, 32, 3)
    )
    return cfg, den, reference


def _guidance(channels: int, calls: list):
    def guidance_for(a: int, b: int) -> torch.Tensor:
        calls.append((a, b))
        t = torch.arange(a, b, dtype=torch.float32)[:, None, None, None]
        return 0.1 * torch.sin(t / 3 + torch.arange(channels, dtype=torch.float32)[None, :, None, None]).expand(
            b - a, channels, 4, 4
        )

    return guidance_for


def latents_as_frames(z: torch.Tensor) -> torch.Tensor:
    """Decode stand-in: latent channels 0-2 as RGB, so the stitched latents can be read back exactly."""
    return z[0, :3].permute(1, 2, 3, 0).contiguous()


@pytest.mark.slow
def test_three_segments_continuous_sequence_and_tied_overlaps(tiny_stack, tmp_path):
    cfg, den, reference = tiny_stack
    calls, segs = [], []
    cont = ContinuationConfig(overlap=3, tie_until=1.0)
    with VideoWriter(tmp_path / "song.mp4", 15) as writer:
        asm = generate_song(
            18,
            _guidance(cfg["block_out_channels"][0], calls),
            den,
            reference,
            lambda z: latents_as_frames(z).sigmoid(),
            writer,
            segment_frames=8,
            continuation=cont,
            steps=2,
            cfg=2.0,
            keep_frames=True,
            decode_chunk=4,
            on_segment=lambda seg, lat: segs.append((seg, lat.clone())),
        )
    assert [(s.start, s.stop) for s, _ in segs] == [(0, 8), (5, 13), (10, 18)]
    assert sum(b - a for a, b in calls) == 18  # guidance asked for once per frame
    frames = asm.frames()
    assert frames.shape == (18, 4, 4, 3) and asm.frames_done == 18 and torch.isfinite(frames).all()
    assert video_info(tmp_path / "song.mp4").frames == 18
    for (ps, prev), (cs, cur) in zip(segs, segs[1:]):
        m = cs.overlap_prev
        # the continuation constraint: the overlap is the previous segment's latents, exactly
        torch.testing.assert_close(cur[:, :, :m], prev[:, :, ps.length - m :], rtol=0, atol=0)
        # and the stitched song shows those same values there
        song = frames[cs.start : ps.stop]
        torch.testing.assert_close(song, latents_as_frames(prev[:, :, ps.length - m :]).sigmoid(), atol=1e-5, rtol=0)
    # new frames of a later segment differ from a run without continuation (the tie acts)
    free = []
    generate_song(18, _guidance(cfg["block_out_channels"][0], []), den, reference, latents_as_frames, None,
                  segment_frames=8, continuation=ContinuationConfig(overlap=3, tie_until=0.0, prior_signal=0.0),
                  steps=2, cfg=2.0, on_segment=lambda seg, lat: free.append(lat))  # fmt: skip
    assert not torch.allclose(free[1][:, :, 3:], segs[1][1][:, :, 3:])


@pytest.mark.slow
def test_song_progress_counts_steps_of_all_segments(tiny_stack):
    cfg, den, reference = tiny_stack
    seen = []
    generate_song(13, _guidance(cfg["block_out_channels"][0], []), den, reference, latents_as_frames, None,
                  segment_frames=8, continuation=ContinuationConfig(overlap=3), steps=2,
                  progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert seen[-1] == (4, 4) and {t for _, t in seen} == {4}
    assert np.all(np.diff([d for d, _ in seen]) >= 0)
