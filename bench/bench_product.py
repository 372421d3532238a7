"""One 75-frame 640x640 segment the way the product makes it: files -> load_models -> Reference
UNet node -> Denoise Video Segment node (guidance maps through CHAMP's encoders, decode on).

Run on the GPU machine:  python bench/bench_product.py --out $OUT/product.json

Full-size networks with random weights are written first in the layouts users download
(CHAMP ``.safetensors`` files, a diffusers VAE folder, a transformers image-encoder folder),
then read back through ``load_models`` exactly as the node does (strict), so the timed path
is the product's own: ``reference_from_image`` and ``denoise_video_segment``. Each window
setting runs twice: the first call includes compiling, the second is the steady state.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stm2pe_core.diffusion.reference import reference_from_image  # noqa: E402
from stm2pe_core.diffusion.sampling import denoise_video_segment  # noqa: E402
from stm2pe_core.types import GuidanceMaps  # noqa: E402
from stm2pe_core.weights.champ import load_models  # noqa: E402
from stm2pe_core.weights.paths import ModelTree  # noqa: E402

BOUND_S = 9.8  # longvideo_metrics.md: 7.84 PFLOP at 800 TFLOP/s


def write_tree(root: Path, config=None) -> None:
    """Random full-size weights in the layouts of the real downloads (fp16 like CHAMP's files)."""
    from safetensors.torch import save_file

    from stm2pe_core.models.encoders import build_clip, build_vae
    from stm2pe_core.models.guidance_encoder import GuidanceEncoder
    from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet

    champ = root / "champ"
    champ.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)

    def half(sd):
        out = {}
        for k, v in sd.items():  # random values in a sane range (speed does not depend on them)
            out[k] = (v.float() * 0.5 + 0.001 * torch.randn(v.shape, generator=g)).half().contiguous()
        return out

    den = DenoisingUNet(config)
    sd = half(den.state_dict())
    save_file({k: v for k, v in sd.items() if ".motion_modules." not in k}, champ / "denoising_unet.safetensors")
    save_file({k: v for k, v in sd.items() if ".motion_modules." in k}, champ / "motion_module.safetensors")
    del den, sd
    save_file(half(ReferenceUNet(config).state_dict()), champ / "reference_unet.safetensors")
    for t in ("depth", "normal", "semantic_map", "dwpose"):
        save_file(half(GuidanceEncoder().state_dict()), champ / f"guidance_encoder_{t}.safetensors")
    build_vae().half().save_pretrained(root / "vae" / "sd-vae-ft-mse")
    build_clip().half().save_pretrained(root / "clip_vision" / "image_encoder")


PHASES: dict[str, list[float]] = {}


def instrument() -> None:
    """Time (and take the peak memory of) the phases inside the product's own calls."""
    import stm2pe_core.diffusion.reference as reference_mod
    import stm2pe_core.diffusion.sampling as sampling_mod

    def wrap(mod, name):
        fn = getattr(mod, name)

        def timed(*a, **k):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated() / 2**30
            t0 = time.perf_counter()
            out = fn(*a, **k)
            torch.cuda.synchronize()
            gib = 2**30
            PHASES[name] = [
                time.perf_counter() - t0,
                torch.cuda.max_memory_allocated() / gib,
                before,
                torch.cuda.memory_allocated() / gib,
            ]
            return out

        setattr(mod, name, timed)

    wrap(sampling_mod, "segment_guidance")
    wrap(sampling_mod, "denoise_segment")
    wrap(reference_mod, "vae_decode")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="/tmp/stm2pe_bench_models")
    ap.add_argument("--frames", type=int, default=75)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--windows", default="24/4,28/4", help="context windows to time, frames/overlap")
    ap.add_argument("--decode-chunk", type=int, default=8)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its algorithms (off in the product)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():  # CPU smoke test of the script: make the CUDA-only calls harmless
        torch.cuda.synchronize = lambda *a, **k: None
        torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
        torch.cuda.max_memory_allocated = lambda *a, **k: 0
    root = Path(args.models)
    res: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "frames": args.frames,
        "size": args.size,
        "steps": args.steps,
        "dtype": args.dtype,
        "decode_chunk": args.decode_chunk,
    }
    t0 = time.perf_counter()
    if not (root / "champ" / "denoising_unet.safetensors").exists():
        write_tree(root)
    res["write_models_s"] = time.perf_counter() - t0
    if args.cudnn_benchmark:  # not the product's setting (it leaves PyTorch's defaults)
        torch.backends.cudnn.benchmark = True
    if torch.cuda.is_available():
        instrument()
    t0 = time.perf_counter()
    models = load_models(ModelTree(root), dtype=args.dtype, device="auto", compile=not args.no_compile)
    torch.cuda.synchronize()
    res["load_models_s"] = time.perf_counter() - t0
    res["sources"] = models.sources
    print(json.dumps(res), flush=True)
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((720, 540, 3), dtype=np.float32))  # a portrait photo, cropped to 640x640
    n, s = args.frames, args.size
    maps = {
        t: rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8) for t in ("depth", "normal", "semantic_map", "dwpose")
    }
    guidance = GuidanceMaps(maps=maps, fps=15.0, size=(s, s))
    runs = []
    for spec in [w for w in args.windows.split(",") if w]:
        size, _, overlap = spec.partition("/")
        for attempt in ("first (compiles)", "steady"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            PHASES.clear()
            t0 = time.perf_counter()
            ref = reference_from_image(models, image, s, s)
            torch.cuda.synchronize()
            t_ref = time.perf_counter() - t0
            ref_peak = torch.cuda.max_memory_allocated() / 2**30
            seg, frames = denoise_video_segment(
                models,
                ref,
                guidance_maps=guidance,
                guidance_set="PDNS",
                steps=args.steps,
                cfg=3.5,
                seed=1,
                context_size=int(size),
                context_overlap=int(overlap or 4),
                decode=True,
                decode_chunk=args.decode_chunk,
            )
            torch.cuda.synchronize()
            total = time.perf_counter() - t0
            row = {
                "windows": spec,
                "call": attempt,
                "reference_s": t_ref,
                "reference_peak_gib": ref_peak,
                "segment_total_s": total,
                "bound_ratio": BOUND_S / total,
                "peak_gib": max(
                    [ref_peak, torch.cuda.max_memory_allocated() / 2**30] + [v[1] for v in PHASES.values()]
                ),
                "phases_s_gib": dict(PHASES),
                "frames_shape": list(frames.shape),
                "frames_finite": bool(torch.isfinite(frames).all()),
                "frames_range": [float(frames.min()), float(frames.max())],
            }
            runs.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps({"info": res, "runs": runs}, indent=1))
    print("\n| windows | call | whole segment s | vs bound | peak GiB |\n|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r['windows']} | {r['call']} | {r['segment_total_s']:.1f} | {r['bound_ratio']:.2f} | {r['peak_gib']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
