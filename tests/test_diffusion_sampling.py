"""Segment sampling: CHAMP scheduler settings, seeding, context-window fusion, reference bank
reuse, CFG semantics, step hook and cancel."""

from __future__ import annotations

import pytest
import torch

from stm2pe_core.diffusion.cfg import guided_prediction
from stm2pe_core.diffusion.context import context_windows
from stm2pe_core.diffusion.reference import Reference, fit_image, to_rgb
from stm2pe_core.diffusion.sampling import denoise_segment, initial_noise
from stm2pe_core.diffusion.scheduler import make_scheduler
from stm2pe_core.errors import InputError
from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet, tiny_unet_config


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    for _, p in module.named_parameters():
        with torch.no_grad():
            p.copy_(0.05 * torch.randn(p.shape, generator=g) + (1.0 if p.ndim == 1 and "norm" in _ else 0.0))


@pytest.fixture(scope="module")
def nets():
    cfg = tiny_unet_config()
    ref, den = ReferenceUNet(cfg).eval(), DenoisingUNet(cfg).eval()
    _randomise(ref, 1)
    _randomise(den, 2)
    return cfg, ref, den


def _reference(cfg, ref, h=16, w=16) -> Reference:
    g = torch.Generator().manual_seed(7)
    latent = torch.randn(1, 4, h, w, generator=g)
    emb = torch.randn(1, 1, cfg["cross_attention_dim"], generator=g)
    return Reference(
        latent=latent, clip_embedding=emb, bank=ref.write_bank(latent, emb), image=torch.zeros(h * 8, w * 8, 3)
    )


def test_scheduler_is_champs():
    s = make_scheduler()
    c = s.config
    assert (c.beta_start, c.beta_end, c.beta_schedule) == (0.00085, 0.012, "linear")
    assert c.prediction_type == "v_prediction" and c.timestep_spacing == "trailing"
    assert c.rescale_betas_zero_snr and not c.clip_sample and c.steps_offset == 1
    s.set_timesteps(20)
    assert s.timesteps.tolist() == list(range(999, 0, -50))
    assert float(s.alphas_cumprod[-1]) < 1e-6  # zero terminal SNR


def test_noise_is_seeded_and_frame_major():
    a = initial_noise(5, 4, 4, seed=3)
    b = initial_noise(8, 4, 4, seed=3)
    assert a.shape == (1, 4, 5, 4, 4)
    torch.testing.assert_close(a, b[:, :, :5], rtol=0, atol=0)
    assert not torch.equal(a, initial_noise(5, 4, 4, seed=4))


@pytest.mark.slow
def test_same_seed_same_latents(nets):
    cfg, ref, den = nets
    r = _reference(cfg, ref)
    g = torch.randn(6, 32, 16, 16) * 0.1
    kw = dict(steps=2, cfg=2.0, context_size=4, context_overlap=2)
    a = denoise_segment(den, r, g, seed=11, **kw)
    b = denoise_segment(den, r, g, seed=11, **kw)
    c = denoise_segment(den, r, g, seed=12, **kw)
    assert a.shape == (1, 4, 6, 16, 16) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().mean() > 1e-2


@pytest.mark.slow
def test_window_fusion_equals_single_pass_for_frame_independent_model(nets):
    """With motion modules at identity every frame's prediction is window-independent, so any
    overlapping windowing must reproduce the single full window exactly (weights sum to 1)."""
    cfg, ref, den0 = nets
    den = DenoisingUNet(cfg).eval()
    den.load_state_dict(den0.state_dict())
    for k, p in den.named_parameters():
        if ".motion_modules." in k and "proj_out" in k:
            p.data.zero_()
    r = _reference(cfg, ref)
    g = torch.randn(7, 32, 16, 16) * 0.1
    single = denoise_segment(den, r, g, steps=1, cfg=3.5, seed=1, context_size=7)
    for mode in ("linear", "uniform"):
        win = denoise_segment(den, r, g, steps=1, cfg=3.5, seed=1, context_size=4, context_overlap=2, fuse=mode)
        torch.testing.assert_close(win, single, rtol=1e-4, atol=1e-5)
    # with real motion modules the windowing does matter (the test above is not vacuous)
    a = denoise_segment(den0, r, g, steps=1, cfg=3.5, seed=1, context_size=7)
    b = denoise_segment(den0, r, g, steps=1, cfg=3.5, seed=1, context_size=4, context_overlap=2)
    assert (a - b).abs().max() > 1e-5


@pytest.mark.slow
def test_bank_written_once_read_by_every_window(nets):
    cfg, ref, den = nets
    r = _reference(cfg, ref)
    windows = context_windows(10, 4, 1)
    assert len(windows) == 3
    den._ref.reads, den._ref.count_reads = 0, True
    denoise_segment(den, r, None, num_frames=10, steps=2, cfg=3.5, context_size=4, context_overlap=1)
    assert r.bank.writes == 1
    assert den._ref.reads == 2 * len(windows) * 16  # steps x windows x 16 attn1 layers
    den._ref.count_reads = False
    assert len(r.bank.kv_cache) == 16  # reference K/V projected once, reused everywhere


def test_cfg_uncond_has_zero_context_and_no_reference(nets):
    cfg, ref, den = nets
    r = _reference(cfg, ref)
    x = torch.randn(1, 4, 3, 16, 16)
    g = torch.randn(1, 32, 3, 16, 16)
    ctx = r.clip_embedding
    with torch.no_grad():
        batched = guided_prediction(den, x, 500, ctx, g, r.bank, 3.5, batched=True)
        split = guided_prediction(den, x, 500, ctx, g, r.bank, 3.5, batched=False)
        u = den(x, 500, torch.zeros_like(ctx), g)  # zero CLIP, no reference, same guidance
        c = den(x, 500, ctx, g, reference=r.bank)
    torch.testing.assert_close(batched, split, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched, u + 3.5 * (c - u), rtol=1e-4, atol=1e-5)


def test_step_hook_and_init_latents(nets):
    cfg, ref, den = nets
    r = _reference(cfg, ref)
    calls = []
    known = torch.zeros(1, 4, 2, 16, 16)

    def hook(i, t, lat, sched):
        calls.append((i, None if t is None else int(t)))
        lat = lat.clone()
        lat[:, :, :2] = (
            known if t is None else sched.add_noise(known, torch.zeros_like(known), torch.as_tensor([int(t)]))
        )
        return lat

    init = initial_noise(5, 16, 16, seed=9)
    out = denoise_segment(den, r, None, num_frames=5, steps=3, init_latents=init, step_hook=hook)
    assert calls == [(-1, 999), (0, 666), (1, 332), (2, None)]  # trailing spacing
    assert torch.equal(out[:, :, :2], known)
    with pytest.raises(InputError, match="initial latents"):
        denoise_segment(den, r, None, num_frames=5, steps=1, init_latents=init[:, :, :3])


def test_cancel_through_progress_stops(nets):
    cfg, ref, den = nets
    r = _reference(cfg, ref)
    seen = []

    class Stop(Exception):
        pass

    def progress(done, total):
        seen.append(done)
        if done >= 1:
            raise Stop()

    with pytest.raises(Stop):
        denoise_segment(den, r, None, num_frames=3, steps=10, progress=progress)
    assert seen == [0, 1]


def test_reference_image_fitting():
    rgba = torch.zeros(30, 50, 4)
    rgba[..., 0] = 1.0
    rgba[:, :25, 3] = 1.0  # left half opaque red, right half transparent
    rgb = to_rgb(rgba)
    assert rgb.shape == (30, 50, 3)
    torch.testing.assert_close(rgb[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(rgb[0, -1], torch.tensor([1.0, 1.0, 1.0]))  # composited on white
    grey = to_rgb(torch.full((10, 10, 1), 0.5))
    assert grey.shape == (10, 10, 3)
    for mode in ("crop", "pad", "stretch"):
        assert fit_image(rgb, 64, 64, mode).shape == (64, 64, 3)
    pad = fit_image(rgb, 64, 64, "pad")
    torch.testing.assert_close(pad[0, 32], torch.ones(3))  # white letterbox above the image
    with pytest.raises(InputError, match="multiple of 8"):
        fit_image(rgb, 60, 64)


class _CompiledStandIn(torch.nn.Module):
    """Looks like torch.compile's OptimizedModule (``_orig_mod``) without compiling (test-only)."""

    def __init__(self, inner):
        super().__init__()
        self._orig_mod = inner

    def forward(self, *a, **k):
        return self._orig_mod(*a, **k)

    @property
    def dtype(self):
        return self._orig_mod.dtype

    @property
    def device(self):
        return self._orig_mod.device


def test_compiled_unet_announces_each_new_window_size_once(nets, caplog):
    """A compiled denoiser compiles every new window size for minutes before its first step:
    the user is told once per size (plain modules say nothing)."""
    cfg, ref, den = nets
    reference = _reference(cfg, ref, 8, 8)
    wrapped = _CompiledStandIn(den)
    with caplog.at_level("WARNING", logger="STM2PE"):
        denoise_segment(den, reference, None, num_frames=6, steps=1, context_size=4, context_overlap=2)
        assert "compiling" not in caplog.text
        denoise_segment(wrapped, reference, None, num_frames=6, steps=1, context_size=4, context_overlap=2)
        denoise_segment(wrapped, reference, None, num_frames=6, steps=1, context_size=4, context_overlap=2)
        denoise_segment(wrapped, reference, None, num_frames=5, steps=1, context_size=5, context_overlap=2)
    msgs = [r.getMessage() for r in caplog.records if "compiling" in r.getMessage()]
    assert msgs == [
        "STM2PE: compiling the denoising UNet for 4-frame windows at 8x8 latents (1-2 min) (once per size; the progress bar waits meanwhile)",
        "STM2PE: compiling the denoising UNet for 5-frame windows at 8x8 latents (1-2 min) (once per size; the progress bar waits meanwhile)",
    ]


def test_context_settings_checked_once_in_the_sampler(nets):
    """The sampler owns the window checks: size 1-32 and overlap >= 0 (else a message), an
    overlap as large as the window is fitted to size - 1 (same result as asking for it)."""
    cfg, ref, den = nets
    r = _reference(cfg, ref, 8, 8)
    kw = dict(num_frames=6, steps=1, seed=3)
    a = denoise_segment(den, r, None, context_size=4, context_overlap=4, **kw)
    b = denoise_segment(den, r, None, context_size=4, context_overlap=3, **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(InputError, match="1-32 frames"):
        denoise_segment(den, r, None, context_size=33, **kw)
    with pytest.raises(InputError, match="0 or more frames, got -1"):
        denoise_segment(den, r, None, context_size=4, context_overlap=-1, **kw)
