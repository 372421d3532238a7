"""Strict, safe reading of weight files.

CHAMP's own loader and every ComfyUI port load with ``strict=False``, so a wrong or truncated
file silently leaves random weights behind. Here every load is strict: missing keys,
unexpected keys and shape mismatches are reported by name together with the file, and
unreadable files say how to fix them. Pickles are only read with ``weights_only=True``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import MissingModelError, WeightsError

_SHOW = 8  # names listed per problem before "... and N more"


def _names(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    head = ", ".join(keys[:_SHOW])
    return head + (f", ... and {len(keys) - _SHOW} more" if len(keys) > _SHOW else "")


def _corrupt(path: Path, exc: BaseException) -> WeightsError:
    return WeightsError(
        f"{path}: cannot read the weights ({type(exc).__name__}: {exc}). The file is truncated or not a "
        f"weight file; download it again (compare its size with the source) or convert it with "
        f"`python -m stm2pe_core convert-weights`."
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` / ``.ckpt`` file, on the CPU.

    ``.pth`` files are memory-mapped where possible, so a 3.4 GB UNet is not copied twice.
    A wrapper dict with a single ``state_dict`` entry is unwrapped; anything that is not a
    flat ``name -> tensor`` mapping is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingModelError(f"{path}: file not found. Put the weight file there (see the README's model table).")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the file is empty (0 bytes); download it again.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise _corrupt(path, exc) from exc
    else:
        sd = _read_pickle(path)
    if isinstance(sd, Mapping) and set(sd) == {"state_dict"}:
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path}: not a flat state dict of tensors; this is not a weight file this pack can use.")
    return dict(sd)


def _read_pickle(path: Path):
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip() if path.stat().st_size < 64 * 2**20 else None
            if bad is not None:
                raise WeightsError(f"{path}: member {bad} is damaged; download the file again.")
        except zipfile.BadZipFile as exc:
            raise _corrupt(path, exc) from exc
    errors: list[BaseException] = []
    for mmap in (True, False):
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear message below
            errors.append(exc)
            if "weights_only" in str(exc) or "Unsupported global" in str(exc):
                raise WeightsError(
                    f"{path}: the file holds Python objects other than tensors, which this pack does not "
                    f"unpickle for safety ({exc}). Convert it to .safetensors in a trusted environment."
                ) from exc
    raise _corrupt(path, errors[-1]) from errors[-1]


def state_dict_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_keys(
    expected: Mapping[str, tuple[int, ...]],
    found: Mapping[str, tuple[int, ...]],
    source: str,
    *,
    optional_prefixes: tuple[str, ...] = (),
) -> None:
    """Raise :class:`WeightsError` naming missing / unexpected keys and shape mismatches."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected and not k.startswith(optional_prefixes)]
    shapes = [
        f"{k} {tuple(found[k])} (network wants {tuple(expected[k])})"
        for k in expected
        if k in found and tuple(found[k]) != tuple(expected[k])
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {_names(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {_names(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches: {_names(shapes)}")
    raise WeightsError(
        f"{source}: does not match the network ({'; '.join(parts)}). Check that this is the right file "
        f"for this slot (see the README's model table) and that it downloaded completely."
    )


def load_strict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source: str | Path,
    *,
    optional_prefixes: tuple[str, ...] = (),
    dtype: torch.dtype | None = None,
    assign: bool = False,
) -> nn.Module:
    """Load ``state_dict`` into ``module`` with every key and shape checked first.

    ``optional_prefixes`` name keys that a file may carry but the network ignores (CHAMP's
    unused ``guidance_attention``). ``assign=True`` lets a network built on the ``meta``
    device take the file's tensors without a second copy.
    """
    check_keys(
        state_dict_shapes(module),
        {k: tuple(v.shape) for k, v in state_dict.items()},
        str(source),
        optional_prefixes=optional_prefixes,
    )
    sd = {k: v for k, v in state_dict.items() if not k.startswith(optional_prefixes) or k in module.state_dict()}
    if dtype is not None:
        sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    module.load_state_dict(sd, strict=True, assign=assign)
    return module


def load_file_strict(module: nn.Module, path: str | Path, **kwargs) -> nn.Module:
    """:func:`read_state_dict` + :func:`load_strict`, naming ``path`` in every message."""
    return load_strict(module, read_state_dict(path), path, **kwargs)
