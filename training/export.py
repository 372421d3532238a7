"""Export a training checkpoint (an ``accelerate`` state folder, or a run folder) to the
inference file: one ``.safetensors`` with the M2PEnc config in its metadata, plus a ``.json``
copy of the config beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from stm2pe_core.errors import InputError
from stm2pe_core.models.m2penc import M2PEnc, M2PEncConfig
from stm2pe_core.weights.loading import load_file_strict


def _run_dir_of(checkpoint: Path) -> Path:
    # <run>/checkpoints/step_N -> <run>; <run> -> <run>
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint


def _latest(run_dir: Path) -> Path | None:
    d = run_dir / "checkpoints"
    c = sorted(d.glob("step_*"), key=lambda p: int(p.name.split("_")[1])) if d.is_dir() else []
    return c[-1] if c else None


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, dtype: torch.dtype | None = None, notes: str = ""
) -> Path:
    """Write ``out`` from a checkpoint folder (``<run>/checkpoints/step_N``) or a run folder."""

    ckpt = Path(checkpoint)
    if not ckpt.exists():
        raise InputError(f"{ckpt}: checkpoint not found. Pass <run>/checkpoints/step_N or the run folder.")
    if not (ckpt / "model.safetensors").is_file():
        latest = _latest(ckpt)
        if latest is None:
            raise InputError(
                f"{ckpt}: no model.safetensors and no checkpoints/step_* inside. Pass a training run or checkpoint folder."
            )
        ckpt = latest
    run_dir = _run_dir_of(ckpt)
    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        raise InputError(f"{cfg_file}: the run's config.json is missing; it is written when training starts.")
    model_cfg = json.loads(cfg_file.read_text())["model"]
    cfg = M2PEncConfig.from_dict(model_cfg)
    if notes:
        cfg.notes = notes
    model = M2PEnc(cfg)
    load_file_strict(model, ckpt / "model.safetensors", dtype=torch.float32)
    return model.save_pretrained(out, dtype=dtype)


def _cmd(args: argparse.Namespace) -> int:
    path = export_checkpoint(args.checkpoint, args.out, torch.float16 if args.fp16 else None, args.notes)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="checkpoint -> M2PEnc .safetensors (+ config .json)")
    p.add_argument("--checkpoint", required=True, help="<run>/checkpoints/step_N or the run folder (latest step)")
    p.add_argument("--out", required=True, help="output .safetensors path")
    p.add_argument("--fp16", action="store_true", help="store weights in float16 (half the size)")
    p.add_argument("--notes", default="", help="free text stored in the config (e.g. the training command)")
    p.set_defaults(func=_cmd)
