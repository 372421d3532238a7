"""Rhythm-analysis accuracy on songs with known beats: the training corpus synthesiser.

    python bench/bench_audio_beats.py [--per-style 2] [--seconds 30] [--fps 15]

For every style of ``training.music_synth`` (13 grooves, 70-170 BPM, swing, syncopation,
half-time) songs are generated with their ground truth, passed through ``load_music`` and scored:
tempo within 2 % (and octave errors), beat F-measure (+-70 ms, the MIREX window), mean beat
offset, downbeat phase, and section starts found within one beat. Ground truth comes from the
generator, so this measures the analysis, not annotators.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def f_measure(est: np.ndarray, ref: np.ndarray, tol: float = 0.07) -> tuple[float, float]:
    """Greedy one-to-one matching within ``tol``; returns (F, mean signed offset of matches)."""
    used = np.zeros(len(ref), bool)
    hits, offs = 0, []
    for t in est:
        d = np.abs(ref - t)
        d[used] = np.inf
        j = int(np.argmin(d)) if len(d) else -1
        if j >= 0 and d[j] <= tol:
            used[j] = True
            hits += 1
            offs.append(t - ref[j])
    p = hits / max(len(est), 1)
    r = hits / max(len(ref), 1)
    return (2 * p * r / (p + r) if p + r else 0.0), (float(np.mean(offs)) if offs else float("nan"))


def main() -> None:
    import soundfile as sf

    from stm2pe_core.audio import load_music
    from training.music_synth import STYLES, SongSpec, generate_song

    ap = argparse.ArgumentParser()
    ap.add_argument("--per-style", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=15.0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for si, style in enumerate(STYLES.values()):
            for k in range(args.per_style):
                lo, hi = style.tempo
                tempo = float(np.round(lo + (hi - lo) * (k + 0.5) / args.per_style, 1))
                spec = SongSpec(style=style.name, tempo=tempo, duration=args.seconds, seed=1000 * si + k)
                song = generate_song(spec)
                path = Path(tmp) / f"{spec.name}.wav"
                sf.write(path, song.waveform, song.sample_rate)
                t0 = time.perf_counter()
                m = load_music(path, fps=args.fps).music
                dt = time.perf_counter() - t0
                ref = song.beat_times[song.beat_times < m.duration]
                f, off = f_measure(m.beat_times, ref)
                ratio = m.tempo / tempo
                bar = 4 * 60 / tempo
                down_ok = len(m.downbeat_times) > 0 and bool(
                    np.all(np.min(np.abs(m.downbeat_times[:, None] - song.downbeat_times[None]), axis=1) < 0.07)
                )
                starts = np.array([s for _, s, _ in song.sections[1:] if s < m.duration - bar])
                found = [bool(np.any(np.abs(m.section_times - s) < 60 / tempo)) for s in starts]
                false = [t for t in m.section_times if not np.any(np.abs(starts - t) < 60 / tempo)]
                near = sum(bool(np.any(np.abs(m.section_times - s) < bar)) for s in starts)  # within a bar
                rows.append(
                    (spec.name, tempo, m.tempo, ratio, f, off, down_ok, sum(found), len(starts), len(false), dt, near)
                )
                print(
                    f"{spec.name:28s} tempo {tempo:6.1f} -> {m.tempo:6.1f}  beatF {f:.3f}  offset {off * 1000:+5.1f} ms  downbeats {'ok' if down_ok else 'WRONG'}  sections {sum(found)}/{len(starts)} (+{len(false)} extra)  {dt:.1f} s",
                    flush=True,
                )
    r = np.array([row[3] for row in rows])
    print()
    print(
        f"songs {len(rows)}: tempo within 2 %: {np.mean(np.abs(r - 1) < 0.02):.0%}; "
        f"octave errors (x2 / x0.5): {np.mean(np.abs(r - 2) < 0.04) + np.mean(np.abs(r - 0.5) < 0.01):.0%}"
    )
    print(
        f"beat F-measure (70 ms): mean {np.mean([row[4] for row in rows]):.3f}, min {np.min([row[4] for row in rows]):.3f}; "
        f"mean offset {np.nanmean([row[5] for row in rows]) * 1000:+.1f} ms"
    )
    good = [row for row in rows if row[4] > 0.9]
    print(
        f"downbeat phase right: {np.mean([row[6] for row in rows]):.0%} of all songs, "
        f"{np.mean([row[6] for row in good]):.0%} of the {len(good)} songs whose beats are right (F > 0.9)"
    )
    print(
        f"section starts found within a beat: {sum(row[7] for row in rows)}/{sum(row[8] for row in rows)} "
        f"(within a bar: {sum(row[11] for row in rows)}), boundaries matching none: {sum(row[9] for row in rows)}"
    )
    print(f"analysis time per {args.seconds:g}-s song: {np.mean([row[10] for row in rows]):.2f} s")


if __name__ == "__main__":
    main()
