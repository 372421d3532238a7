"""Whole-song generation: time and peak memory for 30 s, 2 min and 5 min songs (flat memory check).

Runs ``pipeline.generate_song`` (guidance feed -> denoise_segment with noise prior + overlap tie
-> latent stitching -> chunked VAE decode -> streaming mp4 with the music) once per song length,
each in a fresh process so peak memory is per length. Networks have random weights (speed and
memory do not depend on their values):

* ``--nets tiny`` (default, CPU): SD1.5-layout UNets with few channels and a few-channel VAE,
  small frames, 1 DDIM step: the song-length scaling of the loop itself.
* ``--nets full`` (GPU): SD1.5-size UNets + motion modules and the SD VAE at ``--size``.

    python bench/bench_longvideo.py                         # CPU, tiny, 30 s / 120 s / 300 s
    python bench/bench_longvideo.py --nets full --device cuda --size 512 --steps 1 --out $OUT/long.json

Reports per length: frames, segments, wall seconds, seconds per frame, peak resident memory
during the song (VmHWM reset just before it; CPU) and peak allocated GPU memory, plus the
resident memory just before the song started (networks and the music already loaded).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mb(field: str = "VmRSS") -> float:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process, MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> None:
    """Start VmHWM afresh (Linux: writing 5 to clear_refs), so set-up temporaries do not count."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _randomise(module, seed: int) -> None:
    """Small random weights, drawn on the module's own device (an SD-size UNet in seconds on a GPU)."""
    import torch

    for i, (name, p) in enumerate(module.named_parameters()):
        g = torch.Generator(device=p.device).manual_seed(seed * 100003 + i)
        with torch.no_grad():
            noise = torch.randn(p.shape, generator=g, device=p.device, dtype=torch.float32)
            p.copy_((0.05 * noise + (1.0 if p.ndim == 1 and "norm" in name else 0.0)).to(p.dtype))


def run_one(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from stm2pe_core.diffusion.continuation import ContinuationConfig
    from stm2pe_core.diffusion.reference import Reference
    from stm2pe_core.diffusion.segments import plan_segments
    from stm2pe_core.diffusion.stitch import vae_decoder
    from stm2pe_core.models.encoders import build_vae, tiny_vae_config
    from stm2pe_core.models.unet import DenoisingUNet, ReferenceUNet, sd15_unet_config
    from stm2pe_core.pipeline import generate_song
    from stm2pe_core.video.reader import video_info
    from stm2pe_core.video.writer import VideoWriter

    torch.manual_seed(0)
    dev = torch.device(args.device)
    dtype = torch.float16 if (args.nets == "full" and dev.type == "cuda") else torch.float32
    try:
        import av  # noqa: F401

        have_av = True
    except ImportError:  # the GPU machine may lack PyAV: decode everything, write nothing
        have_av = False
    if args.nets == "tiny":
        cfg = sd15_unet_config(
            block_out_channels=[32, 32, 32, 32],
            norm_num_groups=8,
            cross_attention_dim=16,
            attention_head_dim=2,
            layers_per_block=1,
        )
        vae = build_vae("cpu", tiny_vae_config())
    else:  # the real SD1.5 / sd-vae-ft-mse shapes, as the product builds them
        cfg = sd15_unet_config()
        vae = build_vae("cpu")
    with torch.device(dev):
        ref_net, den = ReferenceUNet(cfg).eval(), DenoisingUNet(cfg).eval()
    vae = vae.to(dev)
    for i, m in enumerate((ref_net, den, vae)):
        _randomise(m, i + 1)
    ref_net, den, vae = ref_net.to(dtype=dtype), den.to(dtype=dtype), vae.eval().to(dtype=dtype)
    h = w = args.size // 8
    g = torch.Generator().manual_seed(1)
    latent = torch.randn(1, 4, h, w, generator=g)
    emb = torch.randn(1, 1, cfg["cross_attention_dim"], generator=g)
    with torch.no_grad():
        bank = ref_net.write_bank(latent.to(dev, dtype), emb.to(dev, dtype))
    reference = Reference(latent=latent, clip_embedding=emb, bank=bank, image=torch.zeros(args.size, args.size, 3))
    channels = cfg["block_out_channels"][0]

    def guidance_for(a: int, b: int) -> torch.Tensor:
        t = torch.arange(a, b, dtype=torch.float32)[:, None, None, None]
        return (0.05 * torch.sin(t / 4.0)).expand(b - a, channels, h, w).contiguous()

    fps = 15.0
    total = int(args.one * fps)
    sr = 44100
    tt = np.arange(int(args.one * sr), dtype=np.float32) / sr
    music = np.stack([0.2 * np.sin(2 * np.pi * 220 * tt), 0.2 * np.sin(2 * np.pi * 330 * tt)]).astype(np.float32)
    del tt
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = _rss_mb()
    _reset_peak()
    out = Path(args.workdir) / f"song_{int(args.one)}s.mp4"
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    ctx = VideoWriter(out, fps, audio=(music, sr)) if have_av else contextlib.nullcontext()
    with ctx as writer:
        asm = generate_song(
            total,
            guidance_for,
            den,
            reference,
            vae_decoder(vae, chunk=args.decode_chunk),
            writer,
            continuation=ContinuationConfig(overlap=args.overlap),
            steps=args.steps,
            cfg=args.cfg,
        )
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    peak_song = _rss_mb("VmHWM")  # since _reset_peak(), before the check below decodes the file
    info = video_info(out, decode_audio=True) if have_av else None
    res = {
        "seconds_of_music": args.one,
        "frames": total,
        "segments": len(plan_segments(total, 75, args.overlap)),
        "written_frames": info.frames if info else None,
        "audio_s": round(info.audio_duration or 0.0, 3) if info else None,
        "wall_s": round(wall, 2),
        "cpu_s": round(time.process_time() - cpu0, 2),
        "ms_per_frame": round(1000 * wall / max(total, 1), 2),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak_song, 1),
        "music_buffer_mb": round(music.nbytes / 2**20, 1),
    }
    if dev.type == "cuda":
        res["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    assert asm.frames_done == total and (info is None or info.frames == total), (asm.frames_done, total)
    if info is not None:
        out.unlink()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=float, nargs="+", default=[30.0, 120.0, 300.0], help="song lengths in seconds")
    ap.add_argument("--nets", choices=("tiny", "full"), default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=64, help="frame size in pixels (square, multiple of 8)")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--cfg", type=float, default=3.5, help="guidance scale (<= 1 skips the unconditional pass)")
    ap.add_argument("--overlap", type=int, default=8)
    ap.add_argument("--decode-chunk", type=int, default=8)
    ap.add_argument("--workdir", default="/tmp")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--one", type=float, help=argparse.SUPPRESS)  # internal: one length, this process
    args = ap.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if args.one is not None:
        print(json.dumps(run_one(args)))
        return 0
    rows = []
    for seconds in args.lengths:
        cmd = [sys.executable, __file__, "--one", str(seconds)] + [
            a for k, v in vars(args).items() if k not in ("lengths", "one", "out") and v is not None
            for a in (f"--{k.replace('_', '-')}", str(v))
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {
        "machine": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "nets": args.nets,
        "device": args.device,
        "size": args.size,
        "steps": args.steps,
        "cfg": args.cfg,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_avg": os.getloadavg(),
    }
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
