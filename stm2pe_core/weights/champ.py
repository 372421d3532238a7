"""Locate, check and load the photoreal networks (CHAMP + SD VAE + CLIP image encoder).

One loader for the ComfyUI node (**Load STM2PE Models**), the CLI and the pipeline. Every
file is located (and its size/header checked) before anything heavy is read, so missing or
broken files fail at once, all of them in one message; every load is strict and names the file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, MissingModelError, WeightsError
from .paths import ModelTree

log = logging.getLogger(__name__)

GUIDANCE_TYPES = ("depth", "normal", "semantic_map", "dwpose")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
OFFLOAD = ("none", "idle")  # idle: networks live on the CPU and visit the GPU while they work

# slot -> (folder key, accepted names in order of preference, what it is)
SLOTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "denoising_unet": ("champ", ("denoising_unet.safetensors", "denoising_unet.pth"), "CHAMP denoising UNet"),
    "motion_module": ("champ", ("motion_module.safetensors", "motion_module.pth"), "CHAMP motion modules"),
    "reference_unet": ("champ", ("reference_unet.safetensors", "reference_unet.pth"), "CHAMP reference UNet"),
    "vae": (
        "vae",
        ("sd-vae-ft-mse", "sd-vae-ft-mse.safetensors", "vae-ft-mse-840000-ema-pruned.safetensors"),
        "SD VAE (sd-vae-ft-mse)",
    ),
    "image_encoder": (
        "clip_vision",
        ("image_encoder", "sd-image-variations-image-encoder.safetensors", "sd-image-variations"),
        "CLIP image encoder (sd-image-variations image_encoder)",
    ),
}
for _t in GUIDANCE_TYPES:
    SLOTS[f"guidance_encoder_{_t}"] = (
        "champ",
        (f"guidance_encoder_{_t}.safetensors", f"guidance_encoder_{_t}.pth"),
        f"CHAMP guidance encoder ({_t})",
    )


# folder key -> where its files come from (named in the missing-files message)
SOURCES: dict[str, str] = {
    "champ": "the champ/ folder of https://huggingface.co/fudan-generative-ai/champ (CHAMP's release)",
    "vae": "https://huggingface.co/stabilityai/sd-vae-ft-mse (also in CHAMP's pretrained_models/)",
    "clip_vision": (
        "image_encoder/ of https://huggingface.co/lambdalabs/sd-image-variations-diffusers "
        "(CHAMP's pretrained_models/image_encoder)"
    ),
}

Trees = ModelTree | Sequence[ModelTree]


def _trees(tree: Trees) -> list[ModelTree]:
    return [tree] if isinstance(tree, ModelTree) else list(tree) or [ModelTree(None)]


def locate(tree: Trees, slot: str) -> Path | None:
    """First match of ``slot`` in the model tree(s) (ComfyUI may register several model roots)."""
    key, names, _ = SLOTS[slot]
    for t in _trees(tree):
        found = t.find(key, names)
        if found is None and slot == "image_encoder":  # CHAMP's own layout: pretrained_models/image_encoder
            found = t.find("champ", ("image_encoder",))
        if found is not None:
            return found
    return None


def require(tree: Trees, slot: str) -> Path:
    found = locate(tree, slot)
    if found is not None:
        return found
    key, names, what = SLOTS[slot]
    return _trees(tree)[0].require(key, names, what)  # raises MissingModelError naming folder and files


def _file_problem(path: Path) -> str | None:
    """Cheap sanity check of a weight file (size and header only; keys are checked when it loads)."""
    import zipfile

    if not path.is_file():
        return "is not a file"
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                f.keys()
        except Exception as exc:  # noqa: BLE001 - any header failure means the same thing to the user
            return f"has an unreadable safetensors header ({type(exc).__name__}); truncated or not a weight file"
        return None
    with open(path, "rb") as f:
        magic = f.read(1)
    if not zipfile.is_zipfile(path) and magic != b"\x80":  # torch zip archive, or a legacy torch pickle
        return f"is not a torch weight file ({size} bytes; truncated download?)"
    return None


def _slot_problem(slot: str, path: Path) -> str | None:
    """Why a located file/folder cannot be used, or None."""
    from ..models.encoders import _weights_in

    if path.is_dir():
        if slot not in ("vae", "image_encoder"):
            return "is a folder, not a weight file"
        weights = _weights_in(path)
        if weights is None:
            return "folder has no diffusion_pytorch_model.safetensors / model.safetensors / pytorch_model.bin"
        problem = _file_problem(weights)
        return None if problem is None else f"{weights.name} {problem}"
    return _file_problem(path)


def _accepted(names: Sequence[str]) -> str:
    return " or ".join(n if "." in n else f"{n}/" for n in names)  # no suffix: a diffusers/transformers folder


def missing_or_invalid(tree: Trees, slots: Sequence[str]) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """Locate and sanity-check every slot: the usable paths, and (folder key, line) per problem."""
    files: dict[str, Path] = {}
    problems: list[tuple[str, str]] = []
    for slot in slots:
        key, names, what = SLOTS[slot]
        path = locate(tree, slot)
        if path is None:
            problems.append((key, f"{what}: missing; accepted names: {_accepted(names)}"))
            continue
        problem = _slot_problem(slot, path)
        if problem is None:
            files[slot] = path
        else:
            problems.append((key, f"{what}: {path} {problem}; replace it"))
    return files, problems


def missing_models_error(problems: Sequence[tuple[str, str]], tree: Trees) -> MissingModelError:
    """One error listing every problem grouped by folder; the hint fits ComfyUI and the CLI."""
    trees = _trees(tree)
    lines: list[str] = []
    for key in dict.fromkeys(k for k, _ in problems):
        where = trees[0].folder(key) or Path("<models>") / key
        lines.append(f"in {where} (from {SOURCES[key]}):")
        lines += [f"  - {line}" for k, line in problems if k == key]
    others = [str(t.root) for t in trees[1:] if t.root is not None]
    also = f" Also looked in: {', '.join(others)}." if others else ""
    return MissingModelError(
        f"{len(problems)} photoreal model file(s) missing or unusable:\n"
        + "\n".join(lines)
        + "\nIn ComfyUI these folders are ComfyUI/models/<folder>; for the command line use the same layout "
        f"under --models DIR (or $STM2PE_MODELS). See the README's Model files table.{also}"
    )


@dataclass
class ModelSet:
    """STM2PE_MODELS: the loaded networks and where/how they run."""

    reference_unet: Any
    denoising_unet: Any
    vae: Any
    image_encoder: Any
    guidance_encoders: dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    offload: str = "none"
    sources: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def use(self, *names: str) -> Iterator[None]:
        """Have the named networks on the compute device for the block (offload: back to CPU after)."""
        mods = [getattr(self, n) for n in names]
        if self.offload != "idle" or self.device.type == "cpu":
            yield
            return
        for m in mods:
            _to(m, self.device)
        try:
            yield
        finally:
            for m in mods:
                _to(m, "cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()


def _to(m: Any, device: Any) -> None:
    if isinstance(m, dict):
        for v in m.values():
            v.to(device)
    elif m is not None:
        m.to(device)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"{name!r} is not a torch device ({exc}); use auto, cpu, cuda or cuda:N") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but no CUDA GPU is available; use cpu or auto")
    return dev


def load_denoising_unet(den_file: Path, mm_file: Path, dtype: torch.dtype) -> Any:
    """denoising_unet (686 2D keys) ∪ motion_module (588 keys), each file checked on its own."""
    from ..models.unet import DenoisingUNet
    from .loading import check_keys, read_state_dict

    with torch.device("meta"):
        den = DenoisingUNet()
    want = {k: tuple(v.shape) for k, v in den.state_dict().items()}
    sd2 = read_state_dict(den_file)
    check_keys({k: s for k, s in want.items() if ".motion_modules." not in k}, _shapes(sd2), str(den_file))
    sdm = read_state_dict(mm_file)
    check_keys({k: s for k, s in want.items() if ".motion_modules." in k}, _shapes(sdm), str(mm_file))
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in {**sd2, **sdm}.items()}
    del sd2, sdm
    den.load_state_dict(state, strict=True, assign=True)
    return den.eval()


def load_reference_unet(path: Path, dtype: torch.dtype) -> Any:
    from ..models.unet import ReferenceUNet
    from .loading import load_file_strict

    with torch.device("meta"):
        ref = ReferenceUNet()
    return load_file_strict(ref, path, dtype=dtype, assign=True).eval()


def _shapes(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def load_models(
    tree: Trees,
    *,
    dtype: str | torch.dtype = "fp16",
    device: str | torch.device = "auto",
    offload: str = "none",
    guidance_types: tuple[str, ...] | str = GUIDANCE_TYPES,
    with_guidance_encoders: bool = True,
    compile: bool = False,
) -> ModelSet:
    """Strictly load CHAMP's UNets, the VAE, the CLIP image encoder and the guidance encoders.

    ``compile`` wraps the denoising UNet and the VAE decoder in ``torch.compile`` (CUDA only;
    ignored elsewhere) and gives the motion modules the Triton temporal attention (SDPA where
    triton is missing): 1-2 min of compiling on the first segment of each window size, then
    ~1.5x faster segments in bf16 (bench/RESULTS.md, "Third pass"). The decoder then wants one
    chunk size throughout.
    """
    from ..models.encoders import load_clip, load_vae
    from ..models.guidance_encoder import ablation_types, load_guidance_encoder

    dev = device if isinstance(device, torch.device) else pick_device(device)
    dt = dtype if isinstance(dtype, torch.dtype) else DTYPES.get(dtype)
    if dt is None:
        raise InputError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    if dev.type == "cpu" and dt != torch.float32:
        log.warning("STM2PE: %s on the CPU is slow or unsupported; using fp32", dtype)
        dt = torch.float32
    if offload not in OFFLOAD:
        raise InputError(f"unknown offload mode {offload!r}; choose one of {OFFLOAD}")
    if isinstance(guidance_types, str):
        guidance_types = ablation_types(guidance_types)
    slots = ["denoising_unet", "motion_module", "reference_unet", "vae", "image_encoder"]
    if with_guidance_encoders:
        slots += [f"guidance_encoder_{t}" for t in guidance_types]
    files, problems = missing_or_invalid(tree, slots)  # all located and checked before any heavy read
    if problems:
        raise missing_models_error(problems, tree)
    home = torch.device("cpu") if offload == "idle" else dev
    den = load_denoising_unet(files["denoising_unet"], files["motion_module"], dt).to(home)
    ref = load_reference_unet(files["reference_unet"], dt).to(home)
    vae = load_vae(files["vae"], home, dt)
    clip = load_clip(files["image_encoder"], home, dt)
    encs = {
        t: load_guidance_encoder(files[f"guidance_encoder_{t}"], home, dt)
        for t in guidance_types
        if with_guidance_encoders
    }
    for net in (den, ref, vae, clip, *encs.values()):  # inference only: never record autograd graphs
        net.requires_grad_(False)
    sources = {k: str(v) for k, v in files.items()}
    if compile and dev.type != "cuda":
        log.warning("STM2PE: compile is for CUDA devices; running %s uncompiled", dev.type)
    elif compile:
        from ..models.motion_module import set_temporal_attention

        set_temporal_attention(den, "triton")
        den = torch.compile(den, dynamic=False)
        vae.decoder = torch.compile(vae.decoder, dynamic=False)
        sources["compiled"] = "torch.compile: denoising UNet, VAE decoder"
    return ModelSet(ref, den, vae, clip, encs, dev, dt, offload, sources)


@dataclass
class SlotReport:
    slot: str
    status: str  # ok | missing | invalid
    path: str | None
    detail: str = ""


def check_models(tree: Trees, slots: list[str] | None = None, deep: bool = True) -> list[SlotReport]:
    """Which model files are present, missing or invalid (keys/shapes checked without building weights)."""
    reports = []
    for slot in slots or list(SLOTS):
        path = locate(tree, slot)
        if path is None:
            key, names, what = SLOTS[slot]
            where = _trees(tree)[0].folder(key) or f"<models>/{key}"
            hint = f"{names[0]}/ (folder) or {names[1]}" if key in ("vae", "clip_vision") else names[-1]
            reports.append(SlotReport(slot, "missing", None, f"{what}: put {hint} in {where}"))
            continue
        if not deep:
            reports.append(SlotReport(slot, "ok", str(path)))
            continue
        try:
            _validate(slot, path)
        except (WeightsError, MissingModelError, InputError) as exc:
            reports.append(SlotReport(slot, "invalid", str(path), str(exc)))
        else:
            reports.append(SlotReport(slot, "ok", str(path)))
    return reports


def _validate(slot: str, path: Path) -> None:
    from ..models.guidance_encoder import OPTIONAL_PREFIXES, build_guidance_encoder
    from ..models.unet import DenoisingUNet, ReferenceUNet
    from .loading import check_keys, read_state_dict

    if slot in ("vae", "image_encoder"):
        from ..models.encoders import load_clip, load_vae

        (load_vae if slot == "vae" else load_clip)(path, "cpu", torch.float16)
        return
    if slot.startswith("guidance_encoder_"):
        net = build_guidance_encoder("meta")
        want = _shapes(net.state_dict())
        check_keys(want, _shapes(read_state_dict(path)), str(path), optional_prefixes=OPTIONAL_PREFIXES)
        return
    with torch.device("meta"):
        net = ReferenceUNet() if slot == "reference_unet" else DenoisingUNet()
    want = _shapes(net.state_dict())
    if slot == "denoising_unet":
        want = {k: s for k, s in want.items() if ".motion_modules." not in k}
    elif slot == "motion_module":
        want = {k: s for k, s in want.items() if ".motion_modules." in k}
    check_keys(want, _shapes(read_state_dict(path)), str(path))
