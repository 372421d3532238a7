"""Continuation across song segments: each 5-second segment picks up where the previous one ended.

Two training-free mechanisms, both applied per segment (see docs/architecture.md, "Segment
continuation"):

1. **Noise prior** (UniAnimate, long mode): a segment does not start from pure noise but from
   the reference image's latent repeated over the segment's frames and noised to a high
   timestep, ``x_init = add_noise(z_ref, eps, t_prior) + offset * eps_offset`` with
   ``eps_offset`` one Gaussian value per (channel, frame). The faint copy of the photo's layout
   that survives keeps background and colours the same in every segment. The strength is given
   as ``prior_signal`` = sqrt(abar(t_prior)), the fraction of the reference that survives, so it
   means the same under any beta schedule: UniAnimate noises to t = 939 of its scaled-linear
   zero-SNR schedule, sqrt(abar) = 0.0304 (the default here; t = 903 under CHAMP's linear
   schedule). ``prior_signal = 0`` starts from pure noise.

2. **Overlap tie** (EDGE's inpainting loop): segment k's first m frames are the same song frames
   as segment k-1's last m. After every sampler step that leaves the latents at timestep t, those
   m frames are replaced by segment k-1's final latents noised to t with the scheduler's own
   ``add_noise`` (one fixed noise draw per segment, so the tie follows a deterministic DDIM
   path). The network sees the previous segment's frames at the right noise level throughout
   and continues the motion and appearance from them. ``tie_until`` < 1 releases the tie for the
   last steps so the junction can settle; the song stitcher then cross-fades the overlap.

Both are exposed as :class:`ContinuationConfig`; :class:`OverlapTie` is the per-step hook that
``denoise_segment`` calls (``hook(i, t, latents, scheduler) -> latents``, i = -1 before the
first step, t = None after the last).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .segments import Segment, SegmentPlan

if TYPE_CHECKING:  # torch is imported where it is used, so the CLI starts fast
    import torch

DEFAULT_PRIOR_SIGNAL = 0.0304  # sqrt(abar) of UniAnimate's long-video noise prior (t=939, scaled-linear zero-SNR)
DEFAULT_OFFSET_NOISE = 0.1  # UniAnimate's per-(channel, frame) offset noise scale


@dataclass(frozen=True)
class ContinuationConfig:
    """How segments continue each other (all defaults follow the references named above)."""

    overlap: int = 8  # m: frames each segment shares with the previous one
    prior_signal: float = DEFAULT_PRIOR_SIGNAL  # fraction of the reference latent in x_init; 0 = pure noise
    offset_noise: float = DEFAULT_OFFSET_NOISE
    tie_until: float = 0.8  # fraction of sampler steps during which the overlap is tied (1 = always, exact copy)

    def __post_init__(self) -> None:
        if self.overlap < 0:
            raise InputError(f"segment overlap must be >= 0 frames, got {self.overlap}")
        if not 0.0 <= self.prior_signal < 1.0:
            raise InputError(f"noise prior signal must be in [0, 1), got {self.prior_signal}")
        if not 0.0 <= self.tie_until <= 1.0:
            raise InputError(f"tie_until must be a fraction in [0, 1], got {self.tie_until}")
        if self.offset_noise < 0:
            raise InputError(f"offset noise must be >= 0, got {self.offset_noise}")


def _timestep_tensor(t: Any, device: torch.device) -> torch.Tensor:
    import torch

    return torch.as_tensor(t, device=device).long().reshape(1)


def prior_timestep(scheduler: Any, signal: float) -> int | None:
    """The latest training timestep whose sqrt(abar) still keeps ``signal`` of the clean latent."""
    if signal <= 0:
        return None
    keep = scheduler.alphas_cumprod.double().sqrt() >= float(signal)
    if not bool(keep.any()):
        return None
    return int(keep.nonzero().max())


def noise_prior(
    reference_latent: torch.Tensor,
    n_frames: int,
    scheduler: Any,
    generator: torch.Generator | None = None,
    prior_signal: float = DEFAULT_PRIOR_SIGNAL,
    offset_noise: float = DEFAULT_OFFSET_NOISE,
    frame_axis: int = 2,
) -> torch.Tensor:
    """Initial latents of one segment: the reference latent repeated over frames, noised.

    ``reference_latent``: (B, C, h, w) (scaled VAE latent). Returns (B, C, F, h, w) with frames
    inserted at ``frame_axis``. ``prior_signal`` 0 gives plain Gaussian noise (prior off).
    """
    import torch

    if reference_latent.ndim != 4:
        raise ValueError(f"reference latent must be (B, C, h, w), got {tuple(reference_latent.shape)}")
    ref = reference_latent.unsqueeze(frame_axis)
    shape = list(ref.shape)
    shape[frame_axis] = n_frames
    ref = ref.expand(shape)
    dev, dtype = reference_latent.device, reference_latent.dtype
    eps = torch.randn(shape, generator=generator, device="cpu", dtype=torch.float32).to(dev, dtype)
    t_prior = prior_timestep(scheduler, prior_signal)
    if t_prior is None:
        x = eps
    else:
        x = scheduler.add_noise(ref.contiguous(), eps, _timestep_tensor(t_prior, dev))
    if offset_noise > 0:
        off_shape = [1] * len(shape)
        off_shape[0], off_shape[1], off_shape[frame_axis] = shape[0], shape[1], n_frames
        off = torch.randn(off_shape, generator=generator, device="cpu", dtype=torch.float32).to(dev, dtype)
        x = x + offset_noise * off
    return x


class OverlapTie:
    """Per-step hook: keep the first ``m`` frames on the previous segment's noised trajectory.

    ``known``: the previous segment's final latents for the shared frames, laid out like the
    segment's latents with ``m`` frames on ``frame_axis``. ``num_steps``: sampler steps of the
    segment (to apply ``tie_until``). ``log`` (optional list) records ``(i, t)`` of every tie
    applied, for tests and debugging.
    """

    def __init__(
        self,
        known: torch.Tensor,
        num_steps: int,
        tie_until: float = 1.0,
        generator: torch.Generator | None = None,
        frame_axis: int = 2,
        log: list | None = None,
    ) -> None:
        import torch

        self.known = known
        self.m = int(known.shape[frame_axis])
        self.num_steps = int(num_steps)
        self.tie_until = float(tie_until)
        self.frame_axis = frame_axis
        self.noise = torch.randn(known.shape, generator=generator, device="cpu", dtype=torch.float32)
        self.log = log

    def active(self, i: int) -> bool:
        """Tie before the first step and after steps while the fraction done is <= tie_until."""
        if self.m == 0:
            return False
        return i < 0 or (i + 1) <= self.tie_until * self.num_steps + 1e-9

    def __call__(self, i: int, t: Any, latents: torch.Tensor, scheduler: Any) -> torch.Tensor:
        import torch

        if not self.active(i):
            return latents
        known = self.known.to(latents.device, latents.dtype)
        if t is None:
            target = known  # after the last step the latents are clean: copy exactly
        else:
            noise = self.noise.to(latents.device, latents.dtype)
            target = scheduler.add_noise(known, noise, _timestep_tensor(t, latents.device))
        idx = [slice(None)] * latents.ndim
        idx[self.frame_axis] = slice(0, self.m)
        out = latents.clone()
        out[tuple(idx)] = target
        if self.log is not None:
            self.log.append((i, None if t is None else int(torch.as_tensor(t))))
        return out


StepHook = Callable[[int, Any, "torch.Tensor", Any], "torch.Tensor"]
# denoise(segment, guidance, init_latents, step_hook) -> final latents of the segment (frames on frame_axis)
SegmentDenoiser = Callable[[Segment, Any, "torch.Tensor", "StepHook | None"], "torch.Tensor"]


def denoise_song(
    plan: SegmentPlan,
    guidance: Iterator[tuple[Segment, Any]],
    denoise: SegmentDenoiser,
    init_latents: Callable[[Segment], torch.Tensor],
    num_steps: int,
    config: ContinuationConfig = ContinuationConfig(),
    generator: torch.Generator | None = None,
    frame_axis: int = 2,
    tie_log: dict[int, list] | None = None,
) -> Iterator[tuple[Segment, torch.Tensor]]:
    """Denoise the song segment by segment, each continuing the previous one.

    Holds the latents of the previous segment only (for the tie), so memory does not grow with
    the song. ``guidance`` yields ``(segment, guidance)`` in plan order (a
    :class:`~stm2pe_core.diffusion.segments.GuidanceFeed`). Yields each segment's final latents.
    """
    prev: torch.Tensor | None = None
    prev_seg: Segment | None = None
    for seg, g in guidance:
        init = init_latents(seg)
        hook: StepHook | None = None
        if prev is not None and prev_seg is not None and seg.overlap_prev > 0 and config.tie_until > 0:
            idx = [slice(None)] * prev.ndim
            idx[frame_axis] = slice(seg.start - prev_seg.start, prev_seg.length)
            known = prev[tuple(idx)].detach()
            log = tie_log.setdefault(seg.index, []) if tie_log is not None else None
            hook = OverlapTie(known, num_steps, config.tie_until, generator, frame_axis, log)
        latents = denoise(seg, g, init, hook)
        if latents.shape[frame_axis] != seg.length:
            raise RuntimeError(f"denoiser returned {latents.shape[frame_axis]} frames for a {seg.length}-frame segment")
        yield seg, latents
        prev, prev_seg = latents, seg
