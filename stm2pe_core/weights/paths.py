"""Where each model file lives: one registry for ComfyUI (``models/…``) and the CLI (``--models``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingModelError

# folder key under models/ -> what belongs there (used in messages and the README table)
MODEL_FOLDERS: dict[str, str] = {
    "stm2pe": "M2PEnc and other STM2PE Dance weights (*.safetensors)",
    "champ": "CHAMP: denoising_unet.pth, reference_unet.pth, motion_module.pth, guidance_encoder_*.pth",
    "smpl": "SMPL body model files (SMPL_NEUTRAL.pkl / .npz), downloaded under the SMPL licence",
    "vae": "sd-vae-ft-mse (diffusers folder: config.json + diffusion_pytorch_model.safetensors)",
    "clip_vision": "sd-image-variations image_encoder (transformers folder: config.json + weights)",
}

ASSETS = Path(__file__).resolve().parent.parent / "assets"


@dataclass(frozen=True)
class ModelTree:
    """A ``models/`` tree: ComfyUI's, or the one given to the CLI with ``--models``."""

    root: Path | None

    @classmethod
    def default(cls) -> ModelTree:
        env = os.environ.get("STM2PE_MODELS")
        return cls(Path(env) if env else None)

    def folder(self, key: str) -> Path | None:
        if key not in MODEL_FOLDERS:
            raise KeyError(f"unknown model folder {key!r}; known: {sorted(MODEL_FOLDERS)}")
        return None if self.root is None else self.root / key

    def find(self, key: str, names: list[str] | tuple[str, ...]) -> Path | None:
        """First existing file or folder among ``names`` inside folder ``key``."""
        folder = self.folder(key)
        if folder is None:
            return None
        for name in names:
            p = folder / name
            if p.exists():
                return p
        return None

    def require(self, key: str, names: list[str] | tuple[str, ...], purpose: str) -> Path:
        found = self.find(key, names)
        if found is not None:
            return found
        where = self.folder(key) or Path("<models>") / key
        raise MissingModelError(
            f"{purpose} needs {' or '.join(names)} in {where} ({MODEL_FOLDERS[key]}). "
            f"Put the file there (see the README's model table) or pass --models DIR."
        )
