"""The README's main command on a 30-s song: wall time and CPU time of the guidance preview.

Product target: 30 s of music -> preview mp4 in <= 10 s on the 2-core CPU machine, nothing
downloaded. Runs ``python -m stm2pe_core -v dance --music <30 s> --out <tmp>.mp4`` in fresh
processes (imports included, as a user sees it) ``--repeat`` times and reports each run's wall
and CPU seconds, the per-stage timings the CLI logs, and the load average (other processes on
the machine inflate wall time; CPU seconds are the steadier number).

    python bench/bench_preview.py [--seconds 30] [--repeat 3] [-- extra dance options]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "stm2pe_core" / "assets" / "demo_song.ogg"


def make_song(seconds: float, folder: Path) -> Path:
    """The demo song, repeated until it lasts ``seconds`` (a wav, so decoding is not the question)."""
    import av
    import numpy as np
    import soundfile as sf

    with av.open(str(DEMO)) as c:
        stream = c.streams.audio[0]
        rate = stream.rate
        chunks = [f.to_ndarray() for f in c.decode(stream)]
    wave = np.concatenate(chunks, axis=-1)
    wave = wave if wave.ndim == 2 else wave[None]
    reps = int(np.ceil(seconds * rate / wave.shape[1]))
    wave = np.tile(wave, (1, reps))[:, : int(seconds * rate)]
    out = folder / f"song_{int(seconds)}s.wav"
    sf.write(out, wave.T.astype(np.float32), rate)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("extra", nargs="*", help="extra options for dance (after --)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        song = make_song(args.seconds, Path(tmp))
        env = {**os.environ, "STM2PE_CACHE": str(Path(tmp) / "cache")}  # a cold feature cache, as on a fresh machine
        for i in range(args.repeat):
            out = Path(tmp) / f"dance{i}.mp4"
            cmd = [
                sys.executable,
                "-m",
                "stm2pe_core",
                "-v",
                "dance",
                "--music",
                str(song),
                "--out",
                str(out),
                *args.extra,
            ]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            stages = next((ln.split(": ", 1)[1] for ln in proc.stderr.splitlines() if ln.startswith("timings (s)")), "")
            row = {
                "run": i,
                "wall_s": round(wall, 2),
                "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
                "load_before": round(load, 2),
                "stages": stages,
                "summary": proc.stdout.splitlines()[0] if proc.stdout else "",
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "seconds_of_music": args.seconds,
        "machine": platform.node(),
        "cores": os.cpu_count(),
        "extra": args.extra,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "best_wall_s": min(r["wall_s"] for r in rows),
        "best_cpu_s": min(r["cpu_s"] for r in rows),
    }
    print(json.dumps(meta))
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
