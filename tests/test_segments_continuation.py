"""Segment continuation: noise prior and the per-step overlap tie, over a tiny denoiser."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from stm2pe_core.diffusion.continuation import (
    ContinuationConfig,
    OverlapTie,
    denoise_song,
    noise_prior,
    prior_timestep,
)
from stm2pe_core.diffusion.segments import GuidanceFeed, LatentStitcher, plan_segments
from stm2pe_core.errors import InputError


def champ_scheduler() -> DDIMScheduler:
    """CHAMP's inference scheduler settings (ARCHITECTURE.md conventions)."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="linear",
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=1,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
    )


class TinyVideoNet(torch.nn.Module):
    """Test stand-in for the denoising UNet: a 3D conv over (C + guidance) channels."""

    def __init__(self, c: int = 4, g: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(c + g, c, 3, padding=1)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.conv(torch.cat([x, guidance], dim=1))


def tiny_denoise_factory(steps: int, seen: list):
    """A DDIM loop with the hook contract of denoise_segment (i=-1 before, t=None after the last)."""
    net = TinyVideoNet()
    sched = champ_scheduler()

    def denoise(seg, guidance, init, hook):
        sched.set_timesteps(steps)
        ts = list(sched.timesteps)
        x = init if hook is None else hook(-1, ts[0], init, sched)
        for i, t in enumerate(ts):
            with torch.no_grad():
                v = net(x, guidance)
            x = sched.step(v, t, x).prev_sample
            if hook is not None:
                x = hook(i, ts[i + 1] if i + 1 < len(ts) else None, x, sched)
            seen.append((seg.index, i, x.clone()))
        return x

    return denoise


def _run_song(total: int, size: int, overlap: int, steps: int, tie_until: float):
    plan = plan_segments(total, size, overlap)
    cfg = ContinuationConfig(overlap=overlap, tie_until=tie_until)
    gen = torch.Generator().manual_seed(1)
    ref = torch.randn(1, 4, 8, 8, generator=gen)
    sched = champ_scheduler()
    computed = []

    def guidance(a: int, b: int) -> torch.Tensor:  # (1, 2, F, 8, 8), frames on axis 2
        computed.append((a, b))
        t = torch.arange(a, b, dtype=torch.float32)
        return torch.sin(t / 5)[None, None, :, None, None].expand(1, 2, b - a, 8, 8).contiguous()

    seen: list = []
    logs: dict = {}
    segs = list(
        denoise_song(
            plan,
            iter(GuidanceFeed(plan, guidance, axis=2)),
            tiny_denoise_factory(steps, seen),
            lambda seg: noise_prior(ref, seg.length, sched, gen, cfg.prior_signal, cfg.offset_noise),
            steps,
            cfg,
            gen,
            tie_log=logs,
        )
    )
    return plan, segs, logs, seen, computed


def test_three_segments_give_one_continuous_sequence_with_tied_overlaps():
    steps = 6
    plan, segs, logs, seen, computed = _run_song(total=28, size=12, overlap=4, steps=steps, tie_until=1.0)
    assert len(plan) == 3 and [s.length for s, _ in segs] == [12, 12, 12]
    assert sum(b - a for a, b in computed) == 28  # guidance computed once per frame
    # hard tie (EDGE inpainting all the way): overlap frames equal the previous segment's last ones
    for (ps, prev), (cs, cur) in zip(segs, segs[1:]):
        m = cs.overlap_prev
        assert m == ps.stop - cs.start >= 4
        torch.testing.assert_close(cur[:, :, :m], prev[:, :, ps.length - m :], rtol=0, atol=0)
        assert not torch.allclose(cur[:, :, m], prev[:, :, ps.length - m - 1])  # the new frames are new
    # the tie ran before the first step and after every step, at the scheduler's timesteps
    sched = champ_scheduler()
    sched.set_timesteps(steps)
    ts = [int(t) for t in sched.timesteps]
    assert logs[1] == [(-1, ts[0])] + [(i, ts[i + 1]) for i in range(steps - 1)] + [(steps - 1, None)]
    assert 0 not in logs
    # stitched: one sequence of the song's length, finite, and equal to the tied values in overlaps
    st = LatentStitcher(plan, axis=2)
    parts = [st.add(seg, lat)[1] for seg, lat in segs]
    song = torch.cat([p for p in parts if p is not None], dim=2)
    assert song.shape == (1, 4, 28, 8, 8) and torch.isfinite(song).all()
    s1 = plan[1]
    torch.testing.assert_close(song[:, :, s1.start : plan[0].stop], segs[0][1][:, :, s1.start :], atol=1e-5, rtol=0)


def test_intermediate_steps_follow_the_noised_previous_segment():
    steps = 5
    plan, segs, logs, seen, _ = _run_song(total=28, size=12, overlap=4, steps=steps, tie_until=0.6)
    sched = champ_scheduler()
    sched.set_timesteps(steps)
    ts = list(sched.timesteps)
    prev = segs[0][1]
    m = plan[1].overlap_prev
    known = prev[:, :, plan[0].length - m :]
    tied = [i for i, _ in logs[1]]
    assert tied == [-1, 0, 1, 2]  # 60% of 5 steps: after steps 1..3 (i = 0..2), released for the last two
    # after step i the latents' overlap frames are exactly add_noise(known, fixed noise, t_{i+1})
    states = {i: x for k, i, x in seen if k == 1}
    x1, x2 = states[1][:, :, :m], states[2][:, :, :m]
    alphas = sched.alphas_cumprod
    for x, t in ((x1, ts[2]), (x2, ts[3])):
        a = alphas[int(t)]
        noise = (x - a.sqrt() * known) / (1 - a).sqrt()
        assert noise.std().item() == pytest.approx(1.0, abs=0.25)  # a unit Gaussian draw, not free values
    n1 = (x1 - alphas[int(ts[2])].sqrt() * known) / (1 - alphas[int(ts[2])]).sqrt()
    n2 = (x2 - alphas[int(ts[3])].sqrt() * known) / (1 - alphas[int(ts[3])]).sqrt()
    torch.testing.assert_close(n1, n2, atol=1e-4, rtol=1e-4)  # one fixed noise draw per segment
    # released for the last steps: the overlap moves off the previous segment's values, but far
    # less than without any tie (the tiny net is random, so only the comparison is meaningful)
    diff = (segs[1][1][:, :, :m] - known).abs().mean().item()
    _, free, _, _, _ = _run_song(total=28, size=12, overlap=4, steps=steps, tie_until=0.0)
    free_diff = (free[1][1][:, :, :m] - free[0][1][:, :, plan[0].length - m :]).abs().mean().item()
    assert 0 < diff < 0.8 * free_diff


def test_noise_prior_matches_q_sample_and_switches_off():
    sched = champ_scheduler()
    ref = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    # UniAnimate: t=939 of the scaled-linear zero-SNR schedule keeps sqrt(abar)=0.0304 (reference doc)
    uni = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True)
    assert prior_timestep(uni, 0.0304) == 938 and prior_timestep(uni, 0.03) == 939
    t = prior_timestep(sched, 0.0304)
    assert t == 903  # the same signal under CHAMP's linear schedule
    x = noise_prior(ref, 10, sched, torch.Generator().manual_seed(3), prior_signal=0.0304, offset_noise=0.0)
    g = torch.Generator().manual_seed(3)
    eps = torch.randn(1, 4, 10, 8, 8, generator=g)
    a = sched.alphas_cumprod[t]
    assert a.sqrt().item() == pytest.approx(0.0304, abs=1e-3)
    torch.testing.assert_close(x, a.sqrt() * ref[:, :, None] + (1 - a).sqrt() * eps)
    pure = noise_prior(ref, 10, sched, torch.Generator().manual_seed(3), prior_signal=0.0, offset_noise=0.0)
    torch.testing.assert_close(pure, eps)
    off = noise_prior(ref, 10, sched, torch.Generator().manual_seed(3), prior_signal=0.0, offset_noise=0.1)
    d = off - eps  # offset: one value per (channel, frame), constant over the image
    assert d.std(dim=(3, 4)).max().item() < 1e-6 and d.abs().mean().item() > 0.01


def test_config_validation_and_inactive_tie():
    with pytest.raises(InputError, match="tie_until"):
        ContinuationConfig(tie_until=1.5)
    with pytest.raises(InputError, match="prior signal"):
        ContinuationConfig(prior_signal=1.5)
    tie = OverlapTie(torch.zeros(1, 4, 0, 2, 2), num_steps=4)
    x = torch.ones(1, 4, 3, 2, 2)
    assert tie(0, 500, x, champ_scheduler()) is x
