"""The DDIM scheduler with CHAMP's inference settings (configs/inference/inference.yaml + zero SNR)."""

from __future__ import annotations

from typing import Any

# CHAMP inference: the yaml's "linear" betas (training used scaled_linear), zero-terminal-SNR
# rescale, trailing spacing, v-prediction; eta 0.
CHAMP_DDIM: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "linear",
    "steps_offset": 1,
    "clip_sample": False,
    "set_alpha_to_one": True,
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "prediction_type": "v_prediction",
}
DEFAULT_STEPS = 20
DEFAULT_CFG = 3.5
DEFAULT_SEED = 42


def make_scheduler(**overrides: Any):
    """A fresh diffusers ``DDIMScheduler``; ``overrides`` e.g. ``beta_schedule='scaled_linear'``."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**{**CHAMP_DDIM, **overrides})
