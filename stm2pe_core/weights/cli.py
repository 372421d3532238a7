"""CLI: ``convert-weights`` (CHAMP .pth → .safetensors) and ``check-models`` (what is present / valid)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..atomic import atomic_write
from ..errors import InputError
from .paths import ModelTree


def convert_file(src: Path, out_dir: Path, dtype: str = "keep", check: bool = True) -> Path:
    """Convert one weight file to ``out_dir/<stem>.safetensors`` (atomic write); checked strictly
    against its network when the name is a known CHAMP slot."""
    from safetensors.torch import save_file

    from .champ import DTYPES, SLOTS, _validate
    from .loading import read_state_dict

    sd = read_state_dict(src)
    slot = src.name.split(".")[0]
    if check and slot in SLOTS and SLOTS[slot][0] == "champ":
        _validate(slot, src)
    if dtype != "keep":
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype {dtype!r}; choose keep, fp16, bf16 or fp32")
        dt = DTYPES[dtype]
        sd = {k: (v.to(dt) if v.is_floating_point() else v) for k, v in sd.items()}
    sd = {k: v.contiguous() for k, v in sd.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{src.name.split('.')[0]}.safetensors"
    with atomic_write(dst) as tmp:
        save_file(sd, str(tmp), metadata={"source": src.name, "converted_by": "stm2pe_core convert-weights"})
    return dst


def _convert(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    for src in args.files:
        src = Path(src)
        dst = convert_file(src, out or src.parent, args.dtype, not args.no_check)
        print(f"{src} -> {dst}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .champ import check_models

    tree = ModelTree(Path(args.models)) if args.models else ModelTree.default()
    if tree.root is None:
        raise InputError("no models folder: pass --models DIR (laid out like ComfyUI's models/) or set STM2PE_MODELS")
    reports = check_models(tree, deep=not args.quick)
    width = max(len(r.slot) for r in reports)
    for r in reports:
        print(f"{r.slot:<{width}}  {r.status:<8} {r.path or ''}")
        if r.detail:
            print(f"{'':<{width}}  {r.detail}")
    return 0 if all(r.status == "ok" for r in reports) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert-weights", help="convert CHAMP .pth weight files to .safetensors (checked strictly)")
    p.add_argument("files", nargs="+", help="weight files (.pth/.bin/.ckpt/.safetensors)")
    p.add_argument("--out", help="output folder (default: next to each file)")
    p.add_argument(
        "--dtype", default="keep", choices=["keep", "fp16", "bf16", "fp32"], help="store tensors in this precision"
    )
    p.add_argument("--no-check", action="store_true", help="skip the strict key/shape check of known CHAMP files")
    p.set_defaults(func=_convert)
    c = sub.add_parser("check-models", help="report which model files are present, missing or invalid")
    c.add_argument("--models", help="models folder laid out like ComfyUI's models/ (default $STM2PE_MODELS)")
    c.add_argument("--quick", action="store_true", help="only look for the files; do not read them")
    c.set_defaults(func=_check)
