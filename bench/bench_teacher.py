"""Choreography teacher and SDGPip: speed and dance quality on synthetic songs.

Songs come from the procedural synth and go through the real analysis path
(``music_from_waveform``: beat tracker, downbeats, sections), as SDGPip does.
Prints a markdown table; numbers go to bench/RESULTS.md.

    python bench/bench_teacher.py [--songs 12] [--seconds 30]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from stm2pe_core.audio import music_from_waveform
from training import metrics
from training.music_synth import corpus_specs, generate_song
from training.teacher import choreograph_full


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--songs", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    specs = corpus_specs(args.songs, "train", seed=11, duration=(args.seconds, args.seconds))
    specs += corpus_specs(max(2, args.songs // 3), "heldout", seed=11, duration=(args.seconds, args.seconds))
    warm = generate_song(specs[0])
    music_from_waveform(warm.waveform[: 22050 * 6], warm.sample_rate)  # librosa/numba warm-up
    rows, musics, dances, synth_t, analysis_t, teacher_t = [], [], [], [], [], []
    for spec in specs:
        t = time.perf_counter()
        song = generate_song(spec)
        synth_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        music = music_from_waveform(song.waveform, song.sample_rate, name=spec.name).music
        analysis_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        ch = choreograph_full(music)
        teacher_t.append(time.perf_counter() - t)
        musics.append(music)
        dances.append(ch)
    n = len(specs)
    for i, (spec, music, ch) in enumerate(zip(specs, musics, dances)):
        j = ch.joints
        bas = metrics.beat_align_score(j, music.beat_times, music.fps, "bailando")
        mis = np.mean(
            [metrics.beat_align_score(j, musics[k].beat_times, music.fps, "bailando") for k in range(n) if k != i]
        )
        mb = metrics.motion_beats(j, music.fps, "bailando")
        bas_c = metrics.beat_alignment(mb + 0.5 / music.fps, music.beat_times, "bailando")
        rows.append(
            (
                spec.style,
                spec.tempo,
                music.tempo,
                bas,
                bas_c,
                mis,
                metrics.mean_joint_speed(j, music.fps),
                metrics.pfc(j, music.fps),
                len({p.move for p in ch.phrases}),
            )
        )
    print(f"machine: {platform.processor() or platform.machine()}, {n} songs of {args.seconds:.0f} s")
    print(
        f"synth {np.mean(synth_t):.3f} s/song, analysis {np.mean(analysis_t):.3f} s/song, teacher {np.mean(teacher_t):.3f} s/song (max {np.max(teacher_t):.3f})"
    )
    print("| style | BPM | tracked | BAS | BAS (i+0.5) | BAS vs other songs | joint speed m/s | PFC | moves |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.2f} | {r[7]:.2f} | {r[8]} |"
        )
    a = np.array([r[3:8] for r in rows])
    print(
        f"| **mean** | | | **{a[:, 0].mean():.3f}** | {a[:, 1].mean():.3f} | **{a[:, 2].mean():.3f}** | {a[:, 3].mean():.2f} | {a[:, 4].mean():.2f} | |"
    )
    # different songs -> different dances: phrase descriptors (mean and spread of body-relative
    # joints over the phrase); nearest other phrase in the same song (repetition) vs in other songs
    desc, owner = [], []
    for i, (music, ch) in enumerate(zip(musics, dances)):
        rel = ch.joints - ch.joints[:, :1]
        for p in ch.phrases:
            f0 = max(0, int(round(ch.key_times[p.start] * music.fps)))
            f1 = min(len(rel), int(round(ch.key_times[min(p.stop, len(ch.key_times) - 1)] * music.fps)))
            if f1 - f0 >= 8:
                seg = rel[f0:f1].reshape(f1 - f0, -1)
                desc.append(np.concatenate([seg.mean(0), seg.std(0)]))
                owner.append(i)
    desc, owner = np.array(desc), np.array(owner)
    d = np.linalg.norm(desc[:, None] - desc[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    same = owner[:, None] == owner[None]
    within = np.where(same, d, np.inf).min(1)
    across = np.where(~same, d, np.inf).min(1)
    ok = np.isfinite(within)
    print(
        f"phrase pose-descriptor NN distance: within a song {np.median(within[ok]):.3f}, to other songs {np.median(across):.3f} (medians over {len(desc)} phrases)"
    )
    print(
        f"kinetic diversity (Dist_k-like) over the {n} dances: {metrics.diversity([c.joints for c in dances], 15.0):.2f}"
    )


if __name__ == "__main__":
    main()
