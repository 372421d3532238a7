"""Stage 1: train M2PEnc on the synthetic corpus (music features -> teacher dance).

Run ``python -m training train --config training/configs/stage1_default.yaml`` on one device,
or ``accelerate launch -m training train --config ...`` on several GPUs. Checkpoints are
``accelerate`` states (model, optimizer, RNG) under ``<output_dir>/checkpoints``;
``--resume latest`` continues from the newest one with the optimizer state and step restored.
At the end (or at ``train.max_minutes``) the model is evaluated on held-out songs and exported
to ``<output_dir>/m2penc.safetensors``; TensorBoard scalars go to ``<output_dir>/logs``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from stm2pe_core.errors import InputError
from stm2pe_core.models.m2penc import M2PEnc

from .config import TrainConfig, load_config
from .losses import total_loss
from .stage1_data import ClipSampler, feature_stats, load_songs, split_songs

log = logging.getLogger(__name__)

MAP_FRAMES = 8  # frames per clip that go through the 64x64 heads in a training step


def lr_factor(cfg: TrainConfig, step: int, minutes: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio``. With ``train.max_minutes`` the
    decay follows whichever runs out first, steps or wall time, so a time-boxed run still ends
    at the low learning rate."""
    o = cfg.optim
    if step < o.warmup_steps:
        return (step + 1) / max(1, o.warmup_steps)
    t = (step - o.warmup_steps) / max(1, o.max_steps - o.warmup_steps)
    if cfg.train.max_minutes:
        t = max(t, minutes / cfg.train.max_minutes)
    t = min(1.0, t)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def build_model(cfg: TrainConfig, train_songs) -> M2PEnc:
    dim = train_songs[0].features.shape[1]
    if dim != cfg.model.in_dim:
        raise InputError(
            f"the corpus has {dim}-d features but model.in_dim is {cfg.model.in_dim}; set model.in_dim: {dim}"
        )
    model = M2PEnc(cfg.model)
    mean, std = feature_stats(train_songs)
    model.set_feature_stats(torch.from_numpy(mean), torch.from_numpy(std))
    if hasattr(model, "smpl_head"):
        # start at the corpus' mean pelvis height instead of 0 (the first steps then learn motion)
        height = float(np.mean([s.trans[:, 1].mean() for s in train_songs]))
        with torch.no_grad():
            model.smpl_head.root.bias[2] = height / float(model.smpl_head.root_scale[2])
    return model


def init_model(cfg: TrainConfig, path: str | Path) -> M2PEnc:
    """Fine-tuning start: the config's architecture with an exported file's weights and feature
    statistics (strict: a mismatch names the keys). The optimizer starts fresh."""
    from stm2pe_core.weights.loading import load_strict, read_state_dict

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: train.init_from file not found; give an exported M2PEnc .safetensors")
    model = M2PEnc(cfg.model)
    load_strict(model, read_state_dict(path), path, dtype=torch.float32)
    log.info("initialised from %s", path)
    return model


def train_step(
    model, batch, cfg: TrainConfig, image_size, gen: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    heads = tuple(cfg.train.heads)
    map_frames = None
    if any(h in heads for h in ("heatmap", "guidance")):
        n = batch["features"].shape[1]
        map_frames = torch.randperm(n, generator=gen)[:MAP_FRAMES].sort().values.to(batch["features"].device)
        if "keypoints" in batch:
            batch = {**batch, "keypoints": batch["keypoints"][:, map_frames]}
        if "guidance" in batch:
            batch = {**batch, "guidance": batch["guidance"][:, map_frames]}
    pred = model(batch["features"], heads=heads, map_frames=map_frames)
    return total_loss(pred, batch, cfg.loss, cfg.data.heatmap_sigma, image_size)


def checkpoints_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.train.output_dir) / "checkpoints"


def latest_checkpoint(cfg: TrainConfig) -> Path | None:
    d = checkpoints_dir(cfg)
    cands = sorted(d.glob("step_*"), key=lambda p: int(p.name.split("_")[1])) if d.is_dir() else []
    return cands[-1] if cands else None


def run(cfg: TrainConfig, resume: str | None = None, corpus_songs=None) -> dict:
    """Train; returns a summary dict (steps, losses, throughput, final eval)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    out_dir = Path(cfg.train.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trackers = "tensorboard" if _has_tensorboard() else None
    acc = Accelerator(
        mixed_precision=cfg.train.mixed_precision,
        log_with=trackers,
        project_config=ProjectConfiguration(project_dir=str(out_dir), logging_dir=str(out_dir / "logs")),
    )
    set_seed(cfg.train.seed + acc.process_index)
    songs = corpus_songs if corpus_songs is not None else load_songs(cfg.data.corpus, cfg.model.fps)
    train_songs, val_songs = split_songs(songs, cfg.data.val_songs)
    if not train_songs:
        raise InputError(f"{cfg.data.corpus}: no training songs (all are in the val split)")
    # heads only count as trained when their targets exist
    sampler = ClipSampler(train_songs, cfg.data.clip_frames, acc.device, seed=cfg.train.seed + 7919 * acc.process_index)
    heads = list(cfg.train.heads)
    if "heatmap" in heads and not sampler.has_keypoints:
        log.warning("corpus has no 2D keypoints: the heatmap head is not trained")
        heads.remove("heatmap")
    if "heatmap" in heads and sampler.keypoints.shape[1] != cfg.model.heatmap_channels:
        raise InputError(
            f"corpus keypoints have {sampler.keypoints.shape[1]} joints but model.heatmap_channels is {cfg.model.heatmap_channels}"
        )
    if "guidance" in heads:
        log.warning(
            "no guidance-feature targets in this corpus: the guidance head is not trained (needs CHAMP guidance encoders)"
        )
        heads.remove("guidance")
    cfg = replace(cfg, train=replace(cfg.train, heads=tuple(heads)))
    cfg.model.trained_heads = tuple(heads)
    if cfg.train.init_from:
        model = init_model(cfg, cfg.train.init_from)
    else:
        model = build_model(cfg, train_songs)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, betas=tuple(cfg.optim.betas)
    )
    model, opt = acc.prepare(model, opt)
    step_box = {"step": 0}
    start_step = 0
    if resume:
        ckpt = latest_checkpoint(cfg) if resume == "latest" else Path(resume)
        if ckpt is None or not ckpt.exists():
            raise InputError(
                f"nothing to resume from in {checkpoints_dir(cfg)}"
                if resume == "latest"
                else f"{resume}: checkpoint folder not found"
            )
        acc.load_state(str(ckpt))
        start_step = json.loads((ckpt / "step.json").read_text())["step"]
        log.info("resumed from %s at step %d", ckpt, start_step)
    if acc.is_main_process:
        (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=list) + "\n")
        if trackers:
            acc.init_trackers("stage1", config=_flat_hparams(cfg))
    val_sampler = ClipSampler(val_songs, cfg.data.clip_frames, acc.device) if val_songs else None
    val_batches = val_sampler.fixed_batches(4, min(cfg.optim.batch_size, 32)) if val_sampler else []
    image_size = sampler.image_size if sampler.has_keypoints else None
    gen = torch.Generator().manual_seed(cfg.train.seed)
    t0 = time.perf_counter()
    seen = 0
    last_log = (time.perf_counter(), 0)
    history: list[dict] = []
    step = start_step
    stop_reason = "max_steps"
    model.train()
    while step < cfg.optim.max_steps:
        sampler.reseed(cfg.train.seed * 1_000_003 + step * 7 + acc.process_index)
        batch = sampler.sample(cfg.optim.batch_size)
        lr = cfg.optim.lr * lr_factor(cfg, step, (time.perf_counter() - t0) / 60)
        for group in opt.param_groups:
            group["lr"] = lr
        with acc.autocast():
            parts = train_step(model, batch, cfg, image_size, gen)
        acc.backward(parts["loss"])
        if cfg.optim.grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        step_box["step"] = step
        seen += cfg.optim.batch_size * acc.num_processes
        if step % cfg.train.log_every == 0 or step == 1:
            now = time.perf_counter()
            rate = (seen - last_log[1]) / max(now - last_log[0], 1e-9)
            last_log = (now, seen)
            scalars = {f"train/{k}": float(v.detach()) for k, v in parts.items() if v.ndim == 0}
            scalars["train/lr"] = lr
            scalars["train/clips_per_s"] = rate
            acc.log(scalars, step=step)
            if acc.is_main_process:
                log.info("step %d loss %.4f (%.0f clips/s)", step, scalars["train/loss"], rate)
        minutes = (time.perf_counter() - t0) / 60
        if cfg.train.max_minutes and minutes >= cfg.train.max_minutes:
            stop_reason = "max_minutes"
            break
        if val_batches and step % cfg.train.eval_every == 0:
            history.append(_evaluate(acc, model, cfg, val_batches, val_songs, image_size, step))
        if step % cfg.train.save_every == 0:
            _save(acc, cfg, step)
    elapsed = time.perf_counter() - t0
    _save(acc, cfg, step)
    if history and history[-1]["step"] == step:
        final = history[-1]
    else:
        final = _evaluate(acc, model, cfg, val_batches, val_songs, image_size, step) if val_batches else {}
    summary = {
        "steps": step,
        "start_step": start_step,
        "stop_reason": stop_reason,
        "seconds": elapsed,
        "clips_per_s": (seen / elapsed) if elapsed > 0 else 0.0,
        "batch_size": cfg.optim.batch_size,
        "processes": acc.num_processes,
        "device": str(acc.device),
        "train_songs": len(train_songs),
        "val_songs": len(val_songs),
        "trained_heads": list(cfg.model.trained_heads),
        "final_eval": final,
        "history": history,
    }
    if acc.is_main_process:
        unwrapped = acc.unwrap_model(model, keep_fp32_wrapper=False)
        unwrapped.config.trained_heads = tuple(heads)
        unwrapped.save_pretrained(out_dir / "m2penc.safetensors")
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    acc.end_training()
    return summary


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            return False
    return True


def _flat_hparams(cfg: TrainConfig) -> dict:
    flat = {}
    for sec, d in cfg.to_dict().items():
        for k, v in d.items():
            flat[f"{sec}.{k}"] = v if isinstance(v, int | float | str | bool) else str(v)
    return flat


def _save(acc, cfg: TrainConfig, step: int) -> None:
    path = checkpoints_dir(cfg) / f"step_{step}"
    acc.wait_for_everyone()
    acc.save_state(str(path))
    if acc.is_main_process:
        (path / "step.json").write_text(json.dumps({"step": step}) + "\n")


@torch.no_grad()
def _evaluate(acc, model, cfg: TrainConfig, val_batches, val_songs, image_size, step: int) -> dict:
    from .evaluate import evaluate_songs

    model.eval()
    sums: dict[str, float] = {}
    gen = torch.Generator().manual_seed(0)
    for b in val_batches:
        with acc.autocast():
            parts = train_step(model, b, cfg, image_size, gen)
        for k, v in parts.items():
            if v.ndim == 0:
                sums[k] = sums.get(k, 0.0) + float(v) / len(val_batches)
    res = {f"val/{k}": v for k, v in sums.items()}
    if acc.is_main_process and val_songs:
        unwrapped = acc.unwrap_model(model, keep_fp32_wrapper=False)  # full precision: BAS reads small speeds
        scores = evaluate_songs(unwrapped, val_songs[: cfg.train.eval_songs])
        res.update({f"eval/{k}": v for k, v in scores["summary"].items() if isinstance(v, int | float)})
    acc.log(res, step=step)
    if acc.is_main_process:
        log.info("eval step %d: %s", step, {k: round(v, 4) for k, v in res.items()})
    model.train()
    return {"step": step, **res}


def _cmd(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.set)
    if args.init:
        cfg = replace(cfg, train=replace(cfg.train, init_from=args.init))
    logging.getLogger("training").setLevel(logging.INFO)
    summary = run(cfg, resume=args.resume)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2, default=float))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="stage 1: train M2PEnc on the synthetic corpus")
    p.add_argument("--config", required=True, help="YAML file (see training/configs/)")
    p.add_argument("--resume", default=None, help="'latest' or a checkpoint folder")
    p.add_argument(
        "--init",
        default=None,
        metavar="FILE.safetensors",
        help="fine-tune: start from these exported weights (same as --set train.init_from=FILE)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. optim.max_steps=100",
    )
    p.set_defaults(func=_cmd)
