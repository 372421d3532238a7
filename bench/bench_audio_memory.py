"""Peak memory and time of Load Music + librosa features on a long song.

    python bench/bench_audio_memory.py [--minutes 10] [--format ogg|flac|mp3]

Writes a synthetic stereo 44.1 kHz song (demo-song loop) to a temporary folder block by block,
then measures, each in a fresh process: a 5-s excerpt (imports + librosa's one-time start-up), ``load_music`` (library path:
mono analysis waveform only), ``load_music(keep_audio=True)`` (node path: also the excerpt for
ComfyUI's AUDIO) and ``encode_music(mode="librosa")``. Peak RSS = ru_maxrss of that process.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WRITE = r"""
import sys, numpy as np, soundfile as sf
sys.path.insert(0, {root!r})
path, minutes, fmt = sys.argv[1], float(sys.argv[2]), sys.argv[3]
loop, sr = sf.read({demo!r}, dtype="float32")
loop = np.stack([np.interp(np.arange(int(len(loop) * 44100 / sr)) * sr / 44100, np.arange(len(loop)), loop[:, c]) for c in range(2)], 1).astype(np.float32)
total = int(minutes * 60 * 44100)
if fmt == "mp3":
    import av
    with av.open(path, "w") as out:
        st = out.add_stream("mp3", rate=44100); st.layout = "stereo"; st.bit_rate = 192000
        done = 0
        while done < total:
            chunk = loop[: min(len(loop), total - done)]
            for i in range(0, len(chunk), 4096):
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk[i:i + 4096].T), format="fltp", layout="stereo"); fr.sample_rate = 44100
                for p in st.encode(fr): out.mux(p)
            done += len(chunk)
        for p in st.encode(None): out.mux(p)
else:
    kw = dict(format="OGG", subtype="VORBIS") if fmt == "ogg" else dict(format="FLAC")
    with sf.SoundFile(path, "w", 44100, 2, **kw) as f:
        done = 0
        while done < total:
            chunk = loop[: min(len(loop), total - done)]
            f.write(chunk); done += len(chunk)
"""

MEASURE = r"""
import sys, time, resource, json
sys.path.insert(0, {root!r})
import numpy as np, librosa, soundfile, soxr, av, torch  # baseline: everything the node pack imports anyway
from stm2pe_core.audio import load_music, encode_music, FeatureCache
step, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
out = {{}}
if step == "warm":  # imports + librosa/numba first-call overhead, on a 5-s excerpt
    m = load_music(path, duration=5.0).music
    encode_music(m, "librosa", use_cache=False)
elif step == "load":
    m = load_music(path).music
    out.update(n_frames=m.n_frames, tempo=m.tempo, beats=len(m.beat_times))
elif step == "load_keep_audio":
    lm = load_music(path, keep_audio=True)
    out.update(audio_mb=lm.audio.nbytes / 1e6)
elif step == "librosa":
    m = load_music(path).music
    t1 = time.perf_counter()
    f = encode_music(m, "librosa", use_cache=False)
    out.update(features=list(f.features.shape), encode_s=time.perf_counter() - t1)
out["seconds"] = time.perf_counter() - t0
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run(code: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1]) if res.stdout.strip() else {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--format", choices=("ogg", "flac", "mp3"), default="mp3")
    args = ap.parse_args()
    demo = str(ROOT / "stm2pe_core" / "assets" / "demo_song.ogg")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / f"long.{args.format}")
        subprocess.run(
            [sys.executable, "-c", WRITE.format(root=str(ROOT), demo=demo), path, str(args.minutes), args.format],
            check=True,
        )
        size = Path(path).stat().st_size / 1e6
        print(
            f"# {args.minutes:g} min stereo 44.1 kHz {args.format} ({size:.1f} MB), {platform.processor() or platform.machine()}, python {platform.python_version()}"
        )
        code = MEASURE.format(root=str(ROOT))
        for step in ("warm", "load", "load_keep_audio", "librosa"):
            r = run(code, step, path)
            print(f"{step}: " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
