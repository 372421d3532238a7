"""Stage-1 training configuration: YAML files validated against dataclasses.

Unknown keys are rejected with their dotted path, so a typo never trains with a silent default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stm2pe_core.errors import InputError
from stm2pe_core.models.m2penc import M2PEncConfig


@dataclass
class DataConfig:
    corpus: str = "runs/corpus"  # folder written by `python -m training sdgpip` (or npz songs)
    clip_frames: int = 120  # training window; must equal model.window
    val_songs: int = 16  # songs held out for evaluation (taken from the corpus' val split first)
    heatmap_sigma: float = 1.5  # Gaussian sigma in 64x64 heatmap pixels
    workers: int = 0
    clips_per_epoch: int = 20000


@dataclass
class LossConfig:
    rot: float = 1.0  # L1 on rotation matrices (from 6D)
    fk: float = 2.0  # L1 on root-relative FK joint positions (m)
    vel: float = 4.0  # L1 on root-relative joint velocities (m/frame)
    acc: float = 1.0  # L1 on joint accelerations (m/frame^2)
    speed: float = 4.0  # L1 on per-joint speed magnitudes (m/frame): against averaged, frozen dancing
    root: float = 2.0  # L1 on root (vx, y, vz)
    traj: float = 0.5  # L1 on the integrated root path
    contact: float = 1.0  # foot sliding: foot speed where the teacher's foot is planted
    betas: float = 0.1
    heatmap: float = 30.0  # MSE on 64x64 Gaussian keypoint heatmaps (values are small)
    guidance: float = 1.0  # L1 on guidance features, only where targets exist


@dataclass
class OptimConfig:
    lr: float = 4e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 200
    max_steps: int = 20000
    batch_size: int = 32
    grad_clip: float = 1.0
    min_lr_ratio: float = 0.05  # cosine decay floor


@dataclass
class TrainLoopConfig:
    output_dir: str = "runs/stage1"
    seed: int = 0
    mixed_precision: str = "no"  # no | bf16 | fp16
    log_every: int = 50
    eval_every: int = 1000
    save_every: int = 2000
    max_minutes: float = 0.0  # stop (eval + save + export) after this wall time; 0 = no limit
    eval_songs: int = 8  # held-out songs scored (BAS, speed) at each evaluation
    heads: tuple[str, ...] = ("smpl", "heatmap")  # heads trained (guidance needs targets)
    # fine-tuning: start from the weights (and feature statistics) of this exported .safetensors
    # instead of a fresh init; its architecture must match `model` (strict load). "" = fresh init
    init_from: str = ""


@dataclass
class TrainConfig:
    model: M2PEncConfig = field(default_factory=M2PEncConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    if not isinstance(raw, dict):
        raise InputError(f"{where or 'config'}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise InputError(
            f"unknown config key(s) {[f'{where}.{k}'.lstrip('.') for k in unknown]}; known under {where or 'top level'}: {sorted(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        sub = _DATACLASS_FIELDS.get((cls, name))
        if sub is not None:
            kwargs[name] = _build(sub, value or {}, f"{where}.{name}".lstrip("."))
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where or 'config'}: {exc}") from exc


_DATACLASS_FIELDS = {
    (TrainConfig, "model"): M2PEncConfig,
    (TrainConfig, "data"): DataConfig,
    (TrainConfig, "loss"): LossConfig,
    (TrainConfig, "optim"): OptimConfig,
    (TrainConfig, "train"): TrainLoopConfig,
}


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    cfg = _build(TrainConfig, raw, "")
    _check(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config; ``overrides`` are ``a.b=value`` strings (YAML-parsed values)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: config file not found. See training/configs/ for examples.")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{p.name}: not valid YAML ({exc}). Fix the file.") from exc
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"override {item!r} must look like section.key=value")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    try:
        return config_from_dict(raw)
    except InputError as exc:
        raise InputError(f"{p.name}: {exc}") from exc


def _check(cfg: TrainConfig) -> None:
    if cfg.data.clip_frames != cfg.model.window:
        raise InputError(
            f"data.clip_frames ({cfg.data.clip_frames}) must equal model.window ({cfg.model.window}): inference runs the windows training saw"
        )
    missing = [h for h in cfg.train.heads if h not in cfg.model.heads]
    if missing:
        raise InputError(f"train.heads {missing} are not in model.heads {list(cfg.model.heads)}")
    if cfg.train.mixed_precision not in ("no", "bf16", "fp16"):
        raise InputError(f"train.mixed_precision must be no, bf16 or fp16, got {cfg.train.mixed_precision!r}")
