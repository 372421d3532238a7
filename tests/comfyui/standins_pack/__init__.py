"""Test-only ComfyUI nodes that stand in for the photoreal model files (which are gigabytes and not
on a test machine): tiny randomly initialised networks of the same classes the pack loads.

The integration tests link this folder into the temporary custom_nodes/ beside the pack and swap
``STM2PELoadModels`` -> ``ZZTestTinyModels`` and core ``VAELoader`` -> ``ZZTestTinyVAE`` in the
example workflows, so every other node of the graph runs for real in ComfyUI. Never shipped.
"""

from __future__ import annotations

import importlib
import sys


def _pack(relative: str):
    """A module of the STM2PE pack as ComfyUI loaded it (its synthetic module name ends with the folder)."""
    for name, module in list(sys.modules.items()):
        if name.endswith("stm2pe-dance") and getattr(module, "NODE_CLASS_MAPPINGS", None):
            return importlib.import_module(f"{name}.{relative}")
    raise RuntimeError("the STM2PE pack is not loaded")


def _tiny_vae():
    import torch

    enc = _pack("stm2pe_core.models.encoders")
    torch.manual_seed(3)
    return enc.build_vae(config={**enc.vae_config(), "block_out_channels": [32, 32, 32, 32], "layers_per_block": 1})


class ZZTestTinyModels:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("STM2PE_MODELS",)
    FUNCTION = "load"
    CATEGORY = "testing"

    def load(self):
        import torch

        unet = _pack("stm2pe_core.models.unet")
        enc = _pack("stm2pe_core.models.encoders")
        genc = _pack("stm2pe_core.models.guidance_encoder")
        champ = _pack("stm2pe_core.weights.champ")
        torch.manual_seed(0)
        cfg = unet.tiny_unet_config()
        ref, den = unet.ReferenceUNet(cfg).eval(), unet.DenoisingUNet(cfg).eval()
        clip = enc.build_clip(
            config={
                **enc.clip_config(),
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "projection_dim": cfg["cross_attention_dim"],
            }
        )
        encs = {t: genc.GuidanceEncoder(out_channels=cfg["block_out_channels"][0]).eval() for t in champ.GUIDANCE_TYPES}
        return (champ.ModelSet(ref, den, _tiny_vae(), clip, encs, torch.device("cpu"), torch.float32),)


class ZZTestTinyVAE:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"
    CATEGORY = "testing"

    def load(self):
        return (_tiny_vae(),)


NODE_CLASS_MAPPINGS = {"ZZTestTinyModels": ZZTestTinyModels, "ZZTestTinyVAE": ZZTestTinyVAE}
NODE_DISPLAY_NAME_MAPPINGS = {"ZZTestTinyModels": "(test) tiny STM2PE models", "ZZTestTinyVAE": "(test) tiny VAE"}
