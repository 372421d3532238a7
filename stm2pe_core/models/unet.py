"""CHAMP's two UNets, built from diffusers' SD1.5 ``UNet2DConditionModel`` blocks.

* :class:`ReferenceUNet` — the SD1.5 UNet without ``conv_norm_out``/``conv_out`` (682 keys);
  run once per video at timestep 0 to fill a :class:`ReferenceBank`.
* :class:`DenoisingUNet` — the same 2D layers applied per frame (frames folded into the
  batch, so GroupNorm is per frame as CHAMP's inflated layers) plus 21 AnimateDiff-v2 motion
  modules (686 + 588 = 1274 keys): in each down/up block ``resnet → attention → motion``,
  in the mid block ``resnet0 → attention → motion → resnet1``; guidance features are added
  right after ``conv_in``; every ``attn1`` reads the reference bank.

The modules are diffusers' own (ResnetBlock2D, Transformer2DModel, Down/Upsample2D, time
embedding); only the block loop is written here, because the motion modules sit between
diffusers' steps. Key names equal CHAMP's files (``reference/champ_manifests``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .motion_module import MAX_FRAMES, MotionModule
from .reference_attention import ReferenceBank, install_reference_processors, prepare_reference

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
_PARTS = ("conv_in", "time_proj", "time_embedding", "down_blocks", "mid_block", "up_blocks")


def sd15_unet_config(**overrides: Any) -> dict[str, Any]:
    """SD1.5 ``unet/config.json`` (kept in the repo); ``overrides`` for tiny test networks."""
    cfg = {k: v for k, v in json.loads((CONFIG_DIR / "sd15_unet.json").read_text()).items() if not k.startswith("_")}
    cfg.update(overrides)
    return cfg


def tiny_unet_config() -> dict[str, Any]:
    """A few-channel UNet with SD1.5's block layout, for CPU tests."""
    return sd15_unet_config(
        block_out_channels=[32, 32, 64, 64], norm_num_groups=32, cross_attention_dim=16, attention_head_dim=2
    )


class _UNetBase(nn.Module):
    def __init__(self, config: dict[str, Any], head: bool) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        base = UNet2DConditionModel(**config)
        for name in _PARTS:
            setattr(self, name, getattr(base, name))
        if head:
            self.conv_norm_out, self.conv_act, self.conv_out = base.conv_norm_out, base.conv_act, base.conv_out
        self.config = dict(config)
        self.has_head = head
        self._ref = install_reference_processors(self)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.conv_in.weight.device

    def _time_embedding(self, timestep, batch: int, dtype: torch.dtype, device) -> torch.Tensor:
        t = torch.as_tensor(timestep, device=device)
        if t.ndim == 0:
            t = t[None]
        t = t.expand(batch)
        return self.time_embedding(self.time_proj(t).to(dtype))

    def _motion(self, block: nn.Module, j: int, h: torch.Tensor, num_frames: int) -> torch.Tensor:
        mms = getattr(block, "motion_modules", None)
        return mms[j](h, num_frames) if mms is not None else h

    def _unet(
        self,
        sample: torch.Tensor,
        timestep,
        context: torch.Tensor,
        num_frames: int,
        guidance: torch.Tensor | None,
    ) -> torch.Tensor:
        """sample (V·F, C, h, w) video-major; context (V, L, D); timestep scalar or (V,)."""
        n = sample.shape[0]
        videos = n // num_frames
        emb = self._time_embedding(timestep, videos, sample.dtype, sample.device)
        ctx = context.to(sample.dtype)
        if num_frames > 1:
            emb = emb.repeat_interleave(num_frames, 0)
            ctx = ctx.repeat_interleave(num_frames, 0)
        h = self.conv_in(sample)
        if guidance is not None:
            h = h + guidance.to(h.dtype)  # CHAMP: the single injection point, before the first skip
        skips: list[torch.Tensor] = [h]
        for block in self.down_blocks:
            attns = getattr(block, "attentions", None)
            for j, resnet in enumerate(block.resnets):
                h = resnet(h, emb)
                if attns is not None:
                    h = attns[j](h, encoder_hidden_states=ctx, return_dict=False)[0]
                h = self._motion(block, j, h, num_frames)
                skips.append(h)
            for down in block.downsamplers or []:
                h = down(h)
                skips.append(h)
        mid = self.mid_block
        h = mid.resnets[0](h, emb)
        for j, (attn, resnet) in enumerate(zip(mid.attentions, mid.resnets[1:])):
            h = attn(h, encoder_hidden_states=ctx, return_dict=False)[0]
            h = self._motion(mid, j, h, num_frames)
            h = resnet(h, emb)
        n_up = len(self.up_blocks)
        odd = any(s % (2 ** (n_up - 1)) for s in sample.shape[-2:])
        for i, block in enumerate(self.up_blocks):
            attns = getattr(block, "attentions", None)
            for j, resnet in enumerate(block.resnets):
                h = resnet(torch.cat([h, skips.pop()], 1), emb)
                if attns is not None:
                    h = attns[j](h, encoder_hidden_states=ctx, return_dict=False)[0]
                h = self._motion(block, j, h, num_frames)
            if block.upsamplers is not None:
                size = skips[-1].shape[2:] if (odd and i < n_up - 1) else None
                for up in block.upsamplers:
                    h = up(h, size)
        return h


class ReferenceUNet(_UNetBase):
    """CHAMP's reference UNet: SD1.5 layout without the output head; fills a reference bank."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config or sd15_unet_config(), head=False)

    def forward(self, latent: torch.Tensor, context: torch.Tensor, timestep=0) -> torch.Tensor:
        return self._unet(latent, timestep, context, 1, None)

    @torch.no_grad()
    def write_bank(self, latent: torch.Tensor, context: torch.Tensor) -> ReferenceBank:
        """Run once at timestep 0 (CHAMP) and return the post-norm1 tokens of all 16 blocks.

        ``latent`` (R, 4, h, w) = VAE posterior mean × 0.18215; ``context`` (R, 1, 768) CLIP
        image embedding.
        """
        bank = ReferenceBank()
        ctl = self._ref
        ctl.mode, ctl.bank = "write", bank
        try:
            self._unet(latent.to(self.dtype), 0, context.to(self.dtype), 1, None)
        finally:
            ctl.mode, ctl.bank = "off", None
        bank.writes += 1
        return bank


class DenoisingUNet(_UNetBase):
    """CHAMP's denoising UNet: per-frame SD1.5 layers + AnimateDiff-v2 motion modules."""

    def __init__(self, config: dict[str, Any] | None = None, motion_max_len: int = MAX_FRAMES, heads: int = 8) -> None:
        super().__init__(config or sd15_unet_config(), head=True)
        for block in self.down_blocks:
            ch = block.resnets[-1].out_channels
            block.motion_modules = nn.ModuleList([MotionModule(ch, heads, motion_max_len) for _ in block.resnets])
        ch = self.mid_block.resnets[-1].out_channels
        self.mid_block.motion_modules = nn.ModuleList([MotionModule(ch, heads, motion_max_len)])
        for block in self.up_blocks:
            ch = block.resnets[-1].out_channels
            block.motion_modules = nn.ModuleList([MotionModule(ch, heads, motion_max_len) for _ in block.resnets])

    def prepare_reference(self, bank: ReferenceBank) -> None:
        """Cache the reference keys/values of every ``attn1`` (once per video)."""
        prepare_reference(self, bank)

    def motion_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if ".motion_modules." in k}

    def forward(
        self,
        sample: torch.Tensor,
        timestep,
        context: torch.Tensor,
        guidance: torch.Tensor | None = None,
        reference: ReferenceBank | None = None,
        uncond_videos: int = 0,
    ) -> torch.Tensor:
        """Predict for a batch of clips.

        sample (V, 4, F, h, w); context (V, 1, 768); guidance (V, 320, F, h, w) or None;
        ``reference``: bank read by the conditional videos; the first ``uncond_videos`` videos
        (CFG's unconditional half) attend without reference tokens. Returns (V, 4, F, h, w).
        """
        v, c, f, hh, ww = sample.shape
        x = sample.permute(0, 2, 1, 3, 4).reshape(v * f, c, hh, ww)
        g = None
        if guidance is not None:
            g = guidance.permute(0, 2, 1, 3, 4).reshape(v * f, guidance.shape[1], hh, ww)
        ctl = self._ref
        ctl.mode, ctl.bank, ctl.uncond_rows = ("read", reference, uncond_videos * f) if reference else ("off", None, 0)
        try:
            h = self._unet(x, timestep, context, f, g)
        finally:
            ctl.mode, ctl.bank, ctl.uncond_rows = "off", None, 0
        out = self.conv_out(self.conv_act(self.conv_norm_out(h)))
        return out.reshape(v, f, *out.shape[1:]).permute(0, 2, 1, 3, 4)


def build_unets(
    config: dict[str, Any] | None = None, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[ReferenceUNet, DenoisingUNet]:
    """Both UNets; ``device='meta'`` builds them without memory (then load with ``assign``)."""
    with torch.device(device):
        ref, den = ReferenceUNet(config), DenoisingUNet(config)
    if str(device) != "meta":
        ref, den = ref.to(dtype=dtype), den.to(dtype=dtype)
    return ref.eval(), den.eval()
