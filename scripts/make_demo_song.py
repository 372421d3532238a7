"""Synthesise the bundled demo song (numpy only) and save it as OGG/Vorbis.

    python scripts/make_demo_song.py [--out stm2pe_core/assets/demo_song.ogg]

About 20 s at 112 BPM in 4/4: section A (bars 1-4) is a quiet groove (kick on 1 and 3,
eighth-note hats, pad chords Am-F-C-G, bass on the half notes); section B (bars 5-9) is the full
groove (kick, snare on 2 and 4, sixteenth hats, eighth-note bass, brighter chords F-G-Em-Am-C and a
melody). The section change is at bar 5 (8.571 s). Fixed seed: the output is reproducible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SR = 32000
BPM = 112.0
BEAT = 60.0 / BPM
BAR = 4 * BEAT
LEAD_IN = 0.0  # the first downbeat is at t = 0
BARS_A, BARS_B = 4, 5
TAIL = 0.7
SECTION_CHANGE = LEAD_IN + BARS_A * BAR  # seconds

A4 = 440.0
NOTE = {n: i for i, n in enumerate(["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"])}


def hz(name: str) -> float:
    """'A3' -> 220.0."""
    pitch, octave = name[:-1], int(name[-1])
    midi = 12 * (octave + 1) + NOTE[pitch]
    return A4 * 2 ** ((midi - 69) / 12)


def env_adsr(n: int, a: float, d: float, s: float, r: float) -> np.ndarray:
    t = np.arange(n) / SR
    e = np.clip(t / max(a, 1e-4), 0, 1)
    e = np.where(t > a, s + (1 - s) * np.exp(-(t - a) / max(d, 1e-4)), e)
    return e * np.clip((n / SR - t) / max(r, 1e-4), 0, 1)  # linear release at the end


def saw(f: float, n: int, harmonics: int = 8, detune: float = 0.0) -> np.ndarray:
    t = np.arange(n) / SR
    y = np.zeros(n)
    for k in range(1, harmonics + 1):
        if k * f > SR / 2:
            break
        y += np.sin(2 * np.pi * k * f * (1 + detune) * t) / k
    return y


def kick(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    f = 45 + 85 * np.exp(-t * 30)
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t * 9)


def snare(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    noise = rng.standard_normal(n)
    noise = noise - np.concatenate([[0], noise[:-1]]) * 0.6  # brighten
    return 0.5 * noise * np.exp(-t * 22) + 0.5 * np.sin(2 * np.pi * 185 * t) * np.exp(-t * 30)


def hat(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    noise = rng.standard_normal(n)
    hp = noise - np.concatenate([[0], noise[:-1]])
    return hp * np.exp(-t * 90)


def place(track: np.ndarray, sound: np.ndarray, start: float, gain: float) -> None:
    s = int(round(start * SR))
    if s >= len(track):
        return
    e = min(len(track), s + len(sound))
    track[s:e] += gain * sound[: e - s]


def render() -> np.ndarray:
    rng = np.random.default_rng(112)
    total = LEAD_IN + (BARS_A + BARS_B) * BAR + TAIL
    n = int(total * SR)
    drums, bass, chords, melody = (np.zeros(n) for _ in range(4))
    k, sn, hh = kick(int(0.5 * SR)), snare(int(0.3 * SR), rng), hat(int(0.08 * SR), rng)

    prog_a = [["A3", "C4", "E4"], ["F3", "A3", "C4"], ["C4", "E4", "G4"], ["G3", "B3", "D4"]]
    prog_b = [["F4", "A4", "C5"], ["G4", "B4", "D5"], ["E4", "G4", "B4"], ["A4", "C5", "E5"], ["C4", "E4", "G4", "C5"]]
    roots_a = ["A2", "F2", "C3", "G2"]
    roots_b = ["F2", "G2", "E2", "A2", "C2"]
    # melody for section B: (beat offset within bar, note, beats)
    phrase = [
        [(0, "A5", 1), (1, "C6", 0.5), (1.5, "A5", 0.5), (2, "G5", 1), (3, "E5", 1)],
        [(0, "D5", 1.5), (1.5, "E5", 0.5), (2, "G5", 2)],
        [(0, "E5", 1), (1, "G5", 1), (2, "B5", 1), (3, "G5", 1)],
        [(0, "A5", 2), (2, "C6", 1), (3, "E6", 1)],
        [(0, "C6", 3)],
    ]

    for bar in range(BARS_A + BARS_B):
        t0 = LEAD_IN + bar * BAR
        in_b = bar >= BARS_A
        # drums
        for b in range(4):
            if b in (0, 2):
                place(drums, k, t0 + b * BEAT, 0.9 if b == 0 else 0.75)
            if in_b and b in (1, 3):
                place(drums, sn, t0 + b * BEAT, 0.55)
        if in_b:
            place(drums, k, t0 + 2.5 * BEAT, 0.5)
        steps = 16 if in_b else 8
        for s in range(steps):
            accent = 1.0 if s % (steps // 4) == 0 else 0.6
            place(drums, hh, t0 + s * BAR / steps, (0.22 if in_b else 0.15) * accent)
        # harmony
        chord = prog_b[bar - BARS_A] if in_b else prog_a[bar]
        dur = BAR + (TAIL if bar == BARS_A + BARS_B - 1 else 0)
        m = int(dur * SR)
        pad = sum(saw(hz(nm), m, harmonics=4 if not in_b else 7, detune=d) for nm in chord for d in (-0.003, 0.003))
        place(chords, pad * env_adsr(m, 0.05 if in_b else 0.3, 0.4, 0.6, 0.2), t0, 0.05 if in_b else 0.06)
        root = roots_b[bar - BARS_A] if in_b else roots_a[bar]
        hits = [0, 1, 2, 3, 4, 5, 6, 7] if in_b else [0, 4]
        step = BEAT / 2
        for h in hits:
            length = step * (0.9 if in_b else 3.8)
            mm = int(length * SR)
            f = hz(root) * (2 if in_b and h % 2 == 1 else 1)
            place(bass, saw(f, mm, harmonics=6) * env_adsr(mm, 0.005, 0.15, 0.5, 0.05), t0 + h * step, 0.35)
        if in_b:
            for off, nm, beats in phrase[bar - BARS_A]:
                mm = int(beats * BEAT * SR)
                tt = np.arange(mm) / SR
                vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * tt)
                tone = np.sin(2 * np.pi * hz(nm) * np.cumsum(vib) / SR) + 0.3 * np.sin(
                    4 * np.pi * hz(nm) * np.cumsum(vib) / SR
                )
                place(melody, tone * env_adsr(mm, 0.01, 0.2, 0.7, 0.08), t0 + off * BEAT, 0.18)

    mix = drums + bass + chords + melody
    # gentle stereo: melody right, pads left, the rest centred
    left = mix - 0.3 * melody + 0.2 * chords
    right = mix + 0.3 * melody - 0.2 * chords
    stereo = np.stack([left, right], axis=1)
    fade = np.clip((n - np.arange(n)) / (0.3 * SR), 0, 1)
    stereo *= fade[:, None]
    stereo *= 0.89 / np.abs(stereo).max()
    return stereo.astype(np.float32)


def main() -> None:
    default = Path(__file__).resolve().parent.parent / "stm2pe_core" / "assets" / "demo_song.ogg"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default)
    ap.add_argument(
        "--quality", type=float, default=0.25, help="Vorbis quality 0..1 (soundfile compression_level = 1 - quality)"
    )
    args = ap.parse_args()
    import soundfile as sf

    y = render()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.ogg")
    sf.write(str(tmp), y, SR, format="OGG", subtype="VORBIS", compression_level=1.0 - args.quality)
    tmp.replace(args.out)
    print(
        f"{args.out}: {len(y) / SR:.2f} s, {BPM:g} BPM, section change at {SECTION_CHANGE:.3f} s, {args.out.stat().st_size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
