"""The VAE (sd-vae-ft-mse) and the CLIP image encoder (sd-image-variations), built from
configs kept in the repo and loaded strictly from local files only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import MissingModelError, WeightsError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _config(name: str) -> dict[str, Any]:
    return {k: v for k, v in json.loads((CONFIG_DIR / name).read_text()).items() if not k.startswith("_")}


def vae_config() -> dict[str, Any]:
    return _config("sd_vae_ft_mse.json")


def tiny_vae_config(blocks: int = 4) -> dict[str, Any]:
    """sd-vae-ft-mse's layout with 8-channel blocks (x2 per extra block), for CPU tests and smoke runs."""
    return {
        **vae_config(),
        "block_out_channels": [8] * blocks,
        "down_block_types": ["DownEncoderBlock2D"] * blocks,
        "up_block_types": ["UpDecoderBlock2D"] * blocks,
        "layers_per_block": 1,
        "norm_num_groups": 4,
    }


def clip_config() -> dict[str, Any]:
    return _config("clip_image_encoder.json")


def build_vae(device: str | torch.device = "cpu", config: dict[str, Any] | None = None):
    from diffusers import AutoencoderKL

    with torch.device(device):
        return AutoencoderKL(**(config or vae_config())).eval()


def build_clip(device: str | torch.device = "cpu", config: dict[str, Any] | None = None):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.device(device):
        return CLIPVisionModelWithProjection(CLIPVisionConfig(**(config or clip_config()))).eval()


def _locate(path: Path, what: str, missing_hint: str) -> tuple[dict[str, Any], Path]:
    """A folder (config.json + weights) or one weight file -> (folder config or {}, weight file)."""
    if not path.exists():
        raise MissingModelError(f"{path}: {what} not found. {missing_hint}")
    if not path.is_dir():
        return {}, path
    raw = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    file = _weights_in(path)
    if file is None:
        raise MissingModelError(
            f"{path}: no weight file (model.safetensors, pytorch_model.bin, ...) in this {what} folder."
        )
    return raw, file


def _weights_in(folder: Path) -> Path | None:
    for name in (
        "diffusion_pytorch_model.safetensors",
        "model.safetensors",
        "diffusion_pytorch_model.bin",
        "pytorch_model.bin",
    ):
        if (folder / name).is_file():
            return folder / name
    return None


def _convert_ldm_vae(sd: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Original-SD ('first_stage_model' / ComfyUI vae/*.safetensors) layout → diffusers layout."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    sd = {k.removeprefix("first_stage_model."): v for k, v in sd.items()}
    return convert_ldm_vae_checkpoint(sd, config)


def load_vae(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32):
    """A diffusers folder (config.json + weights) or one weight file (diffusers or original-SD keys)."""
    from ..weights.loading import load_strict, read_state_dict

    raw, file = _locate(Path(path), "VAE", "Put sd-vae-ft-mse (diffusers folder or .safetensors) there.")
    cfg = vae_config()
    cfg.update({k: v for k, v in raw.items() if k in cfg})
    sd = read_state_dict(file)
    if any(k.startswith(("encoder.down.", "first_stage_model.")) for k in sd):
        try:
            sd = _convert_ldm_vae(sd, cfg)
        except Exception as exc:  # noqa: BLE001
            raise WeightsError(f"{file}: looks like an original-SD VAE but could not be converted ({exc}).") from exc
    vae = build_vae("meta", cfg)
    load_strict(vae, sd, file, dtype=dtype, assign=True)
    return vae.to(device).eval()


def load_clip(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32):
    """A transformers folder (config.json + weights, local files only) or one weight file."""
    from ..weights.loading import load_strict, read_state_dict

    raw, file = _locate(Path(path), "CLIP image encoder", "Put sd-image-variations' image_encoder there.")
    raw = raw.get("vision_config", raw)
    cfg = clip_config()
    cfg.update({k: v for k, v in raw.items() if k in cfg})
    sd = read_state_dict(file)
    enc = build_clip("meta", cfg)
    want = enc.state_dict()
    # position_ids is a non-persistent buffer in recent transformers, present in older files
    sd = {k: v for k, v in sd.items() if k in want or not k.endswith("position_ids")}
    load_strict(enc, sd, file, dtype=dtype, assign=True)
    # buffers that are not in state_dict (non-persistent) were left on meta: rebuild them
    for name, buf in list(enc.named_buffers()):
        if buf.is_meta:
            owner = enc.get_submodule(name.rsplit(".", 1)[0]) if "." in name else enc
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "position_ids":
                owner.register_buffer(leaf, torch.arange(buf.shape[-1]).expand(buf.shape), persistent=False)
            else:
                raise WeightsError(f"{file}: buffer {name} was not initialised")
    return enc.to(device).eval()
