"""M2PEnc inference speed on this machine: 30 s of music (450 frames at 15 fps) through the SMPL
head (whole music_to_motion: windows, fusion, axis-angle conversion, root integration), plus the
heatmap and guidance heads for one 5-s segment.

    python bench/bench_m2penc.py [--weights FILE] [--threads 2] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from stm2pe_core.models.m2penc import M2PEnc, M2PEncConfig, count_parameters
from stm2pe_core.motion_inference import DEFAULT_WEIGHTS, load_m2penc, music_to_motion, run_windows
from stm2pe_core.types import MusicFeatures


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.weights or DEFAULT_WEIGHTS.is_file():
        t = time.perf_counter()
        model = load_m2penc(args.weights)
        load_s = time.perf_counter() - t
        src = args.weights or str(DEFAULT_WEIGHTS)
    else:
        model, load_s, src = M2PEnc(M2PEncConfig()).eval(), 0.0, "random init (default config)"
    cfg = model.config
    n = int(args.seconds * cfg.fps)
    x = np.random.default_rng(0).normal(size=(n, cfg.in_dim)).astype(np.float32)
    feats = MusicFeatures(x, cfg.feature_kind, cfg.fps, (("x", cfg.in_dim),), "bench")
    res = {
        "weights": src,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads",
        "params_total_M": count_parameters(model) / 1e6,
        "params_smpl_head_M": count_parameters(model, "smpl") / 1e6,
        "load_s": load_s,
        "frames": n,
        "music_to_motion_s": best_of(lambda: music_to_motion(feats, model), args.repeats),
    }
    seg = slice(0, min(n, 75))
    if "heatmap" in cfg.heads:
        res["heatmap_5s_segment_s"] = best_of(lambda: run_windows(model, x, ("heatmap",), frames=seg), args.repeats)
    big = M2PEnc(M2PEncConfig(**{**cfg.to_dict(), "heads": ("smpl", "guidance")})).eval()
    res["guidance_5s_segment_s (untrained head, same trunk)"] = best_of(
        lambda: run_windows(big, x, ("guidance",), frames=seg), 1
    )
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
