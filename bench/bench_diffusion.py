"""Speed and memory of one 75-frame 640x640 segment (full-size CHAMP networks, random weights).

Run on the GPU machine:  python bench/bench_diffusion.py --variants eager-fp16,eager-bf16 --out $OUT/bench.json

Measures seconds per denoising step (all context windows, batched CFG), peak GPU memory, VAE
decode (chunked), the reference pass and the guidance encoders, projects a 25-step segment,
and compares it with the FLOP bound of longvideo_metrics.md section 3 (7.84 PFLOP -> 9.8 s at
800 TFLOP/s) and with a CHAMP-style baseline run in the same process: the same modules with
CHAMP's reference attention (bank tokens repeated per frame and projected again in every
call, unconditional half computed with the reference and then recomputed without it).
Speed does not depend on weight values, so the weights are random.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stm2pe_core.diffusion.cfg import guided_prediction  # noqa: E402
from stm2pe_core.diffusion.context import context_windows  # noqa: E402
from stm2pe_core.diffusion.reference import Reference, vae_decode  # noqa: E402
from stm2pe_core.diffusion.sampling import denoise_segment  # noqa: E402
from stm2pe_core.diffusion.scheduler import make_scheduler  # noqa: E402
from stm2pe_core.models.guidance_encoder import GuidanceEncoder, sum_guidance  # noqa: E402
from stm2pe_core.models.motion_module import set_temporal_attention  # noqa: E402
from stm2pe_core.models.reference_attention import ReferenceAttnProcessor, _attend, fuse_qkv  # noqa: E402
from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet, tiny_unet_config  # noqa: E402

BOUND_PFLOP_25 = 7.84  # longvideo_metrics.md section 3: 75 frames, 640^2, CFG, 25 steps, one window
BOUND_S = 9.8  # at 800 TFLOP/s


class ChampStyleProcessor(ReferenceAttnProcessor):
    """CHAMP's reader: cat([x, bank repeated per frame]) for every row, K/V projected each call,
    then the unconditional rows recomputed as plain self-attention."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        ctl = self.control
        x = hidden_states
        if ctl.mode != "read" or ctl.bank is None:
            return super().__call__(attn, hidden_states)
        ref = ctl.bank.tokens[self.path].to(x.dtype).expand(x.shape[0], -1, -1)
        kv = torch.cat([x, ref], 1)
        out = _attend(attn, attn.to_q(x), attn.to_k(kv), attn.to_v(kv))
        u = ctl.uncond_rows
        if u:
            xu = x[:u]
            out = out.clone()
            out[:u] = _attend(attn, attn.to_q(xu), attn.to_k(xu), attn.to_v(xu))
        return attn.to_out[0](out)


def use_processor(unet, cls) -> None:
    for mod in unet.modules():
        proc = getattr(mod, "processor", None)
        if isinstance(proc, ReferenceAttnProcessor):
            mod.set_processor(cls(proc.path, proc.control))


def cuda_time(fn, reps: int = 3, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    if not torch.cuda.is_available():  # CPU smoke test of the script
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out
    torch.cuda.synchronize()
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        out.append(s.elapsed_time(e) / 1000)
    return out


def sdpa(backends):
    import contextlib

    if not backends:
        return contextlib.nullcontext()
    from torch.nn.attention import sdpa_kernel

    return sdpa_kernel(backends, set_priority=True)


def check_temporal_kernel(dev, dtype, frames: int, h: int, w: int) -> dict:
    """Triton temporal attention vs SDPA at the motion modules' real shapes (CFG batch of 2):
    max abs / relative L2 difference and kernel time (events, median of 20) for the autotuned
    custom op and for each fixed configuration of the kernel."""
    import torch.nn.functional as F

    from stm2pe_core.models import temporal_triton

    res = {}
    for level, (c, div) in enumerate([(320, 1), (640, 2), (1280, 4), (1280, 8)]):
        heads = 8
        b = 2 * (h // div) * (w // div)
        d = c // heads
        q, k, v = (torch.randn(b, frames, c, device=dev, dtype=dtype) for _ in range(3))

        def sdpa_path(q=q, k=k, v=v, b=b, c=c, d=d, heads=heads):
            def sp(x_):
                return x_.view(b, frames, heads, d).transpose(1, 2)

            o = F.scaled_dot_product_attention(sp(q), sp(k), sp(v), scale=d**-0.5)
            return o.transpose(1, 2).reshape(b, frames, c)

        def tri_path(q=q, k=k, v=v, d=d, heads=heads):
            return temporal_triton.temporal_attention(q, k, v, heads, d**-0.5)

        ref = F.scaled_dot_product_attention(
            *(z.float().view(b, frames, heads, d).transpose(1, 2) for z in (q, k, v)), scale=d**-0.5
        )
        ref = ref.transpose(1, 2).reshape(b, frames, c)
        a, t = sdpa_path().float(), tri_path().float()
        row = {
            "bytes_moved_mb": 4 * q.numel() * q.element_size() / 1e6,
            "sdpa_ms": 1000 * median(cuda_time(sdpa_path, reps=20, warmup=3)),
            "triton_ms": 1000 * median(cuda_time(tri_path, reps=20, warmup=3)),
            "sdpa_vs_fp32_rel": float((a - ref).norm() / ref.norm()),
            "triton_vs_fp32_rel": float((t - ref).norm() / ref.norm()),
            "triton_vs_sdpa_maxabs": float((a - t).abs().max()),
            "finite": bool(torch.isfinite(t).all()),
        }
        for cf in temporal_triton.CONFIGS:
            cfg = dict(cf.kwargs, num_warps=cf.num_warps)
            if not temporal_triton._fits(cfg, b * frames, frames, heads):
                continue
            name = "cfg_m{BLOCK_M}_h{HEADS_PER_PROG}_w{num_warps}_hf{HEADS_FAST}".format(**cfg)
            row[name + "_ms"] = 1000 * median(
                cuda_time(
                    lambda cfg=cfg, q=q, k=k, v=v, d=d, heads=heads: temporal_triton.launch(
                        q, k, v, heads, d**-0.5, cfg
                    ),
                    reps=10,
                    warmup=2,
                )
            )
        row["autotuned"] = {str(key): str(val) for key, val in temporal_triton._tuned.cache.items()}
        res[f"level{level}_c{c}_b{b}"] = row
        print("kernel", json.dumps(row), flush=True)
    return res


def check_spatial_attention(dev, dtype, frames: int, h: int, w: int) -> dict:
    """The 80x80-level reference attention (head dim 40; cond rows: own + reference tokens) per
    SDPA backend, and with q/k/v zero-padded to a wider head (same result: scale kept)."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    n, d, heads = h * w, 40, 8
    q = torch.randn(frames, heads, n, d, device=dev, dtype=dtype)
    kv = [torch.randn(frames, heads, 2 * n, d, device=dev, dtype=dtype) for _ in range(2)]
    ref = F.scaled_dot_product_attention(q[:2].float(), kv[0][:2].float(), kv[1][:2].float()).to(dtype)
    res = {}
    for name in ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION"):
        for pad in (0, 8, 24):

            def run(name=name, pad=pad):
                with sdpa_kernel([getattr(SDPBackend, name)]):
                    qq, kk, vv = (F.pad(t, (0, pad)) if pad else t for t in (q, kv[0], kv[1]))
                    return F.scaled_dot_product_attention(qq, kk, vv, scale=d**-0.5)[..., :d]

            key = f"{name}_d{d + pad}"
            try:
                out = run()
                res[key] = {
                    "ms": 1000 * median(cuda_time(run, reps=5, warmup=1)),
                    "max_abs_vs_fp32": float((out[:2].float() - ref.float()).abs().max()),
                }
            except Exception as exc:  # backend refuses the shape
                res[key] = {"error": str(exc)[:160]}
            print("spatial", key, json.dumps(res[key]), flush=True)
    return res


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def build(dtype, device, config=None):
    with torch.device(device):
        ref, den = ReferenceUNet(config), DenoisingUNet(config)
    ref = ref.to(dtype).eval()
    den = den.to(dtype).eval()
    for m in (ref, den):  # keep random activations in range for fp16 (values do not change speed)
        for p in m.parameters():
            p.data.mul_(0.5)
    return ref, den


def extras(args, dev, h: int, w: int, extra: dict) -> None:
    # guidance encoders and VAE decode, once (fp16)
    dtype = torch.float16
    with torch.device(dev):
        encs = {t: GuidanceEncoder().to(dtype).eval() for t in ("depth", "normal", "semantic_map", "dwpose")}
    maps = {t: torch.rand(args.frames, 3, args.size, args.size, device=dev) for t in encs}
    with torch.no_grad():
        extra["guidance_encoders_4_s"] = median(
            cuda_time(lambda encs=encs, maps=maps: sum_guidance(encs, maps, chunk=16), reps=3)
        )
    del encs, maps
    if args.decode:
        from diffusers import AutoencoderKL

        from stm2pe_core.models.encoders import vae_config

        with torch.device(dev):
            vae = AutoencoderKL(**vae_config()).to(dtype).eval()
        z = torch.randn(1, 4, args.frames, h, w, device=dev) * 0.5
        compiled = False
        for tok in [x for x in args.decode_chunks.split(",") if x]:
            eager = tok.startswith("e")
            chunk = int(tok.lstrip("e"))
            if not eager and not compiled:
                vae.decoder = torch.compile(vae.decoder, dynamic=False)
                compiled = True
            key = f"vae_decode_{'' if eager else 'compiled_'}chunk{chunk}"
            t0 = time.perf_counter()
            vae_decode(vae, z, chunk=chunk, static_shapes=not eager)
            extra[key + "_first_s"] = time.perf_counter() - t0
            torch.cuda.reset_peak_memory_stats()
            extra[key + "_s"] = median(
                cuda_time(lambda c=chunk, e=eager: vae_decode(vae, z, chunk=c, static_shapes=not e), reps=2, warmup=0)
            )
            extra[key + "_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            print(key, extra[key + "_s"], flush=True)
            if args.out:
                Path(args.out).with_suffix(".extra.json").write_text(json.dumps(extra, indent=1))
        del vae
    torch.cuda.empty_cache()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=75)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--context", type=int, default=24)
    ap.add_argument("--overlap", type=int, default=4)
    ap.add_argument("--variants", default="eager-fp16,eager-bf16,champ-style-fp16")
    ap.add_argument("--full", default="", help="variant to also run a whole segment with (denoise_segment)")
    ap.add_argument("--profile", default="", help="variant to profile one step of (CUDA kernels)")
    ap.add_argument("--tiny", action="store_true", help="tiny networks (smoke test of this script)")
    ap.add_argument("--decode", action="store_true", help="time the chunked VAE decode")
    ap.add_argument(
        "--check",
        action="store_true",
        help="triton temporal kernel vs SDPA, and each compiled variant's window output vs eager",
    )
    ap.add_argument("--check-spatial", action="store_true", help="80x80 spatial attention per SDPA backend")
    ap.add_argument("--decode-chunks", default="8", help="compiled VAE decode chunk sizes to time")
    ap.add_argument(
        "--extras-first", action="store_true", help="time guidance encoders / decode before the UNet variants"
    )
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type != "cuda":  # CPU smoke test: make the CUDA-only calls harmless
        torch.cuda.synchronize = lambda *a, **k: None
        torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
        torch.cuda.max_memory_allocated = lambda *a, **k: 0
        torch.cuda.get_device_name = lambda *a, **k: "cpu"
        torch.cuda.empty_cache = lambda *a, **k: None
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "frames": args.frames,
        "size": args.size,
        "steps": args.steps,
        "context": [args.context, args.overlap],
    }
    import diffusers

    info["diffusers"] = diffusers.__version__
    print(json.dumps(info), flush=True)
    h = w = args.size // 8
    wins = context_windows(args.frames, args.context, args.overlap)
    info["windows"] = [(x.start, x.stop) for x in wins]
    info["frame_passes_per_step"] = sum(x.length for x in wins)
    results = {}
    extra: dict = {}
    if args.extras_first:
        extras(args, dev, h, w, extra)
        print("extra", json.dumps(extra), flush=True)
    if args.check and dev.type == "cuda":
        extra["temporal_kernel_check"] = check_temporal_kernel(dev, torch.bfloat16, 28, h, w)
        if args.check_spatial:
            extra["spatial_attention_check"] = check_spatial_attention(dev, torch.bfloat16, 28, h, w)
        if args.out:
            Path(args.out).write_text(json.dumps({"info": info, "results": results, "extra": extra}, indent=1))
    cache: dict = {}
    for variant in [v for v in args.variants.split(",") if v]:
        name, _, prec = variant.rpartition("-")
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[prec]
        if cache.get("dtype") != dtype:
            cache.clear()
            torch.cuda.empty_cache()
            ref, den = build(dtype, dev, tiny_unet_config() if args.tiny else None)
            cache.update(dtype=dtype, ref=ref, den=den)
        ref, den = cache["ref"], cache["den"]
        parts = set(name.split("+"))
        use_processor(den, ChampStyleProcessor if "champ-style" in parts else ReferenceAttnProcessor)
        unet = den
        if "cl" in parts:  # persists: list such variants last
            den.to(memory_format=torch.channels_last)
        if "fqkv" in parts:  # persists: list such variants last
            fuse_qkv(den)
        if "tmath" in parts:  # persists: list such variants last
            set_temporal_attention(den, "math")
        if "ttri" in parts:  # persists: list such variants last
            set_temporal_attention(den, "triton")
        if "xfull" in parts:  # persists: list such variants last (cross-attention without the one-token shortcut)
            from diffusers.models.attention_processor import AttnProcessor2_0

            for mod in den.modules():
                if getattr(mod, "attn2", None) is not None:
                    mod.attn2.set_processor(AttnProcessor2_0())
        if "compile" in parts:
            torch._dynamo.reset()
            unet = torch.compile(den, dynamic=False)
        ctx_size, ctx_overlap = args.context, args.overlap
        for p_ in parts:
            if p_.startswith("ctx"):  # e.g. ctx28o4
                a, _, b = p_[3:].partition("o")
                ctx_size, ctx_overlap = int(a), int(b or args.overlap)
        backends = None
        if "cudnn" in parts:
            from torch.nn.attention import SDPBackend

            backends = [
                SDPBackend.CUDNN_ATTENTION,
                SDPBackend.FLASH_ATTENTION,
                SDPBackend.EFFICIENT_ATTENTION,
                SDPBackend.MATH,
            ]
        torch.cuda.reset_peak_memory_stats()
        torch.manual_seed(0)  # same inputs for every variant (numerics check)
        latent = torch.randn(1, 4, h, w, device=dev)
        emb = torch.randn(1, 1, den.config["cross_attention_dim"], device=dev)
        t0 = time.perf_counter()
        bank = ref.write_bank(latent, emb)
        torch.cuda.synchronize()
        ref_s = time.perf_counter() - t0
        reference = Reference(latent=latent, clip_embedding=emb, bank=bank, image=torch.zeros(args.size, args.size, 3))
        guid = torch.randn(1, den.config["block_out_channels"][0], args.frames, h, w, device=dev, dtype=dtype) * 0.1
        sched = make_scheduler()
        sched.set_timesteps(args.steps, device=dev)
        lat = torch.randn(1, 4, args.frames, h, w, device=dev)

        def one_step(
            unet=unet, reference=reference, guid=guid, lat=lat, sched=sched, cs=ctx_size, co=ctx_overlap, be=backends
        ):
            # exactly denoise_segment's inner loop for one step (the library function, steps=1)
            with sdpa(be):
                return denoise_segment(
                    unet,
                    reference,
                    guid,
                    steps=1,
                    init_latents=lat,
                    context_size=cs,
                    context_overlap=co,
                    scheduler=sched,
                )

        try:
            t_compile = time.perf_counter()
            one_step()
            first = time.perf_counter() - t_compile
            times = cuda_time(one_step, reps=3, warmup=1)
        except torch.OutOfMemoryError as exc:
            results[variant] = {"error": f"OOM: {exc}"[:300]}
            print(variant, "OOM", flush=True)
            continue
        step = median(times)
        peak = torch.cuda.max_memory_allocated() / 2**30
        check = {}
        if args.check:  # first window's CFG prediction at the first timestep vs the first variant's
            win = context_windows(args.frames, ctx_size, ctx_overlap)[0]
            t_ = sched.timesteps[0]
            x_ = sched.scale_model_input(lat[:, :, win.slice()], t_).to(dtype)
            with torch.no_grad():
                pw = guided_prediction(unet, x_, t_, emb.to(dtype), guid[:, :, win.slice()], bank, 3.5).float()
            key = (dtype, win.length)
            if key not in cache.setdefault("check_ref", {}):
                cache["check_ref"][key] = (variant, pw)
            else:
                rv, rp = cache["check_ref"][key]
                check = {
                    "vs": rv,
                    "max_abs": float((pw - rp).abs().max()),
                    "rel_l2": float((pw - rp).norm() / rp.norm()),
                    "ref_abs_max": float(rp.abs().max()),
                    "finite": bool(torch.isfinite(pw).all()),
                }
        seg = args.steps * step
        results[variant] = {
            "frame_passes_per_step": sum(x.length for x in context_windows(args.frames, ctx_size, ctx_overlap)),
            "step_s": step,
            "step_times": times,
            "first_call_s": first,
            "segment_denoise_s": seg,
            "reference_unet_s": ref_s,
            "peak_gib": peak,
            "check": check,
        }
        print(variant, json.dumps(results[variant]), flush=True)
        if args.profile == variant:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                one_step()
                torch.cuda.synchronize()
            table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=90)
            if args.out:
                Path(args.out).with_suffix(".profile.txt").write_text(table)
            print(table[:6000], flush=True)
        if args.full == variant:  # a whole segment through the library, seeded noise included
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = denoise_segment(
                unet,
                reference,
                guid,
                steps=args.steps,
                seed=42,
                context_size=ctx_size,
                context_overlap=ctx_overlap,
            )
            torch.cuda.synchronize()
            results[variant]["full_segment_denoise_s"] = time.perf_counter() - t0
            results[variant]["full_segment_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            results[variant]["full_segment_finite"] = bool(torch.isfinite(out).all())
            print("full", variant, json.dumps(results[variant]), flush=True)
        del lat
        if args.out:  # keep what is measured even if a later variant runs out of time
            Path(args.out).write_text(json.dumps({"info": info, "results": results, "extra": extra}, indent=1))
    if not args.extras_first:
        extras(args, dev, h, w, extra)
    print("extra", json.dumps(extra), flush=True)
    # summary
    print("\n| variant | s/step | 25-step denoise s | + decode/ref/guid s | peak GiB | bound ratio |")
    print("|---|---|---|---|---|---|")
    decodes = [v for k, v in extra.items() if re.fullmatch(r"vae_decode_compiled_chunk\d+_s", k)]
    overhead = min(decodes, default=extra.get("vae_decode_chunk8_s", 0.0)) + extra.get("guidance_encoders_4_s", 0.0)
    for k, r in results.items():
        if "error" in r:
            print(f"| {k} | {r['error'][:40]} |")
            continue
        total = r["segment_denoise_s"] + overhead + r["reference_unet_s"]
        r["segment_total_s"] = total
        r["bound_ratio"] = BOUND_S / total
        print(
            f"| {k} | {r['step_s']:.3f} | {r['segment_denoise_s']:.1f} | {total:.1f} | {r['peak_gib']:.1f} | {BOUND_S / total:.2f} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"info": info, "results": results, "extra": extra}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
