"""Procedural songs for the synthetic training corpus.

A seeded numpy synthesiser: drums (per-style 16-step patterns, swing), bass lines, chords,
melodies and a section plan (intro / verse / chorus / break / outro) whose energy changes at
phrase boundaries. Styles and tempos are split into a training part and a held-out part (styles
and tempo bands never seen in training) so the encoder's generalisation can be measured.

Everything is a pure function of a :class:`SongSpec`; the same spec gives the same samples.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

SAMPLE_RATE = 22050
GENERATOR_VERSION = "music_synth/1"


@dataclass(frozen=True)
class Style:
    """A groove: 16-step drum patterns (one bar of 16th notes), tempo range, instrument choices."""

    name: str
    tempo: tuple[float, float]
    kick: str
    snare: str
    hat: str
    open_hat: str = "................"
    perc: str = "................"  # rim / clave / conga line
    swing: float = 0.0  # 0 = straight 16ths; 0.33 = hard swing of every second 8th/16th
    bass: str = "roots"  # roots | offbeat | synco | sustained | walking
    chords: str = "pad"  # pad | stab | organ | keys
    lead: str = "square"  # square | sine | triangle | none


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "house",
            (118, 130),
            "x...x...x...x...",
            "....x.......x...",
            "x.x.x.x.x.x.x.x.",
            "..x...x...x...x.",
            bass="offbeat",
            chords="stab",
        ),
        Style(
            "techno",
            (125, 140),
            "x...x...x...x...",
            "................",
            "xxxxxxxxxxxxxxxx",
            "..x...x...x...x.",
            perc="...x.....x....x.",
            bass="offbeat",
            chords="pad",
            lead="none",
        ),
        Style(
            "disco",
            (110, 124),
            "x...x...x...x...",
            "....x.......x...",
            "xxxxxxxxxxxxxxxx",
            "..x...x...x...x.",
            bass="walking",
            chords="keys",
            lead="triangle",
        ),
        Style(
            "breakbeat",
            (125, 140),
            "x.x.......xx....",
            "....x..x.x..x..x",
            "x.x.x.x.x.x.x.x.",
            bass="synco",
            chords="stab",
            lead="square",
        ),
        Style(
            "hiphop",
            (80, 100),
            "x......xx.x.....",
            "....x.......x...",
            "x.x.x.x.x.x.x.x.",
            swing=0.18,
            bass="synco",
            chords="keys",
            lead="sine",
        ),
        Style(
            "halftime",
            (70, 90),
            "x.........x.....",
            "........x.......",
            "x.xxx.x.x.xxx.x.",
            bass="sustained",
            chords="pad",
            lead="sine",
        ),
        Style(
            "funk",
            (95, 115),
            "x.x...x..x......",
            "....x..x.x..x...",
            "xxxxxxxxxxxxxxxx",
            bass="synco",
            chords="stab",
            lead="square",
        ),
        Style(
            "rock",
            (100, 150),
            "x.......x.x.....",
            "....x.......x...",
            "x.x.x.x.x.x.x.x.",
            bass="roots",
            chords="organ",
            lead="square",
        ),
        Style(
            "pop",
            (90, 130),
            "x.....x.x.......",
            "....x.......x...",
            "x.x.x.x.x.x.x.x.",
            perc="....x.......x...",
            bass="roots",
            chords="pad",
            lead="triangle",
        ),
        Style(
            "latin",
            (90, 120),
            "x..x.x..x..x.x..",
            "................",
            "x.x.x.x.x.x.x.x.",
            perc="x..x..x...x.x...",
            bass="synco",
            chords="keys",
            lead="sine",
        ),
        Style(
            "dnb",
            (150, 170),
            "x.........x.....",
            "....x.......x...",
            "xxxxxxxxxxxxxxxx",
            bass="sustained",
            chords="pad",
            lead="none",
        ),
        Style(
            "reggaeton",
            (88, 100),
            "x...x...x...x...",
            "...x..x....x..x.",
            "x.x.x.x.x.x.x.x.",
            bass="roots",
            chords="stab",
            lead="square",
        ),
        Style(
            "swing",
            (100, 160),
            "x.......x.......",
            "....x.......x...",
            "x...x.xx....x.xx",
            swing=0.33,
            bass="walking",
            chords="keys",
            lead="triangle",
        ),
    )
}

# Held out of training: whole styles, and tempo bands for every style.
HELDOUT_STYLES = ("reggaeton", "swing")
HELDOUT_TEMPO_BANDS = ((104.0, 110.0), (160.0, 170.0))
TRAIN_STYLES = tuple(s for s in STYLES if s not in HELDOUT_STYLES)

SECTION_ENERGY = {"intro": 0.45, "verse": 0.7, "chorus": 1.0, "break": 0.35, "outro": 0.5}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10)}
PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 4), (0, 4, 5, 3), (5, 3, 0, 4), (0, 0, 3, 4), (1, 4, 0, 0))


@dataclass(frozen=True)
class SongSpec:
    """Everything a song is generated from."""

    style: str
    tempo: float
    duration: float
    seed: int
    key: int = 45  # MIDI note of the bass root (A2)
    scale: str = "minor"
    progression: tuple[int, ...] = (0, 5, 3, 4)
    gain: float = 0.8  # overall loudness (peak after limiting)

    @property
    def name(self) -> str:
        return f"{self.style}_{int(round(self.tempo))}bpm_{self.seed:06d}"


@dataclass
class Song:
    """Samples plus the ground truth the generator knows (beats, downbeats, sections)."""

    spec: SongSpec
    waveform: np.ndarray  # (T,) float32 in [-1, 1]
    sample_rate: int
    beat_times: np.ndarray  # (B,) seconds
    downbeat_times: np.ndarray  # (D,) seconds
    sections: list[tuple[str, float, float]] = field(default_factory=list)  # (name, start, end)


def in_heldout_tempo(tempo: float) -> bool:
    return any(lo <= tempo < hi for lo, hi in HELDOUT_TEMPO_BANDS)


def split_of(spec: SongSpec) -> str:
    """``train`` or ``heldout`` (a held-out style or a held-out tempo band)."""
    return "heldout" if spec.style in HELDOUT_STYLES or in_heldout_tempo(spec.tempo) else "train"


def random_spec(
    rng: np.random.Generator, split: str = "train", duration: tuple[float, float] = (20.0, 60.0)
) -> SongSpec:
    """Draw a song spec from ``split`` (``train`` or ``heldout``)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    seed = int(rng.integers(0, 1_000_000))
    for _ in range(1000):
        if split == "train":
            style = STYLES[TRAIN_STYLES[int(rng.integers(len(TRAIN_STYLES)))]]
        else:
            # half held-out styles at any tempo, half training styles in a held-out tempo band
            if rng.random() < 0.5:
                style = STYLES[HELDOUT_STYLES[int(rng.integers(len(HELDOUT_STYLES)))]]
            else:
                style = STYLES[TRAIN_STYLES[int(rng.integers(len(TRAIN_STYLES)))]]
        lo, hi = style.tempo
        if split == "heldout" and style.name not in HELDOUT_STYLES:
            bands = [(max(lo, a), min(hi, b)) for a, b in HELDOUT_TEMPO_BANDS if min(hi, b) > max(lo, a)]
            if not bands:
                continue
            lo, hi = bands[int(rng.integers(len(bands)))]
        tempo = float(np.round(rng.uniform(lo, hi), 1))
        spec = SongSpec(
            style=style.name,
            tempo=tempo,
            duration=float(np.round(rng.uniform(*duration), 2)),
            seed=seed,
            key=int(rng.integers(38, 50)),
            scale=("major", "minor", "dorian")[int(rng.integers(3))],
            progression=PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))],
            gain=float(np.round(rng.uniform(0.5, 0.95), 3)),
        )
        if split_of(spec) == split:
            return spec
    raise RuntimeError("could not draw a song spec for split " + split)


def corpus_specs(
    count: int, split: str = "train", seed: int = 0, duration: tuple[float, float] = (20.0, 60.0)
) -> list[SongSpec]:
    """``count`` specs of one split; a pure function of its arguments."""
    base = {"train": 0, "heldout": 1}[split]
    rng = np.random.default_rng([seed, base, 7919])
    return [random_spec(rng, split, duration) for _ in range(count)]


# ----------------------------------------------------------------------------- instruments


def _env(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    a = np.clip(t / max(attack, 1e-4), 0.0, 1.0)
    return a * np.exp(-t / max(decay, 1e-4))


def _midi_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69.0) / 12.0)


class _Kit:
    """One-shot drum sounds for one song (their character drawn from the song's rng)."""

    def __init__(self, rng: np.random.Generator, sr: int):
        self.sr = sr
        n = int(0.45 * sr)
        t = np.arange(n) / sr
        f_hi, f_lo = rng.uniform(110, 180), rng.uniform(40, 60)
        sweep = f_lo + (f_hi - f_lo) * np.exp(-t / rng.uniform(0.02, 0.05))
        phase = 2 * np.pi * np.cumsum(sweep) / sr
        self.kick = np.sin(phase) * _env(n, sr, 0.001, rng.uniform(0.12, 0.3))
        self.kick[: int(0.004 * sr)] += rng.uniform(0.1, 0.5) * rng.standard_normal(int(0.004 * sr))
        n = int(0.3 * sr)
        noise = rng.standard_normal(n)
        band = sosfilt(
            butter(2, [rng.uniform(800, 1500), rng.uniform(5000, 9000)], "bandpass", fs=sr, output="sos"), noise
        )
        tone = np.sin(2 * np.pi * rng.uniform(160, 240) * np.arange(n) / sr)
        self.snare = band * _env(n, sr, 0.001, rng.uniform(0.06, 0.15)) + 0.5 * tone * _env(n, sr, 0.001, 0.05)
        clap = np.zeros(n)
        for k in range(3):
            o = int(k * 0.011 * sr)
            clap[o:] += band[: n - o] * _env(n - o, sr, 0.001, 0.012 if k < 2 else 0.09)
        if rng.random() < 0.5:
            self.snare = 0.6 * self.snare + 0.6 * clap
        hp = butter(2, rng.uniform(6000, 9000), "highpass", fs=sr, output="sos")
        n = int(0.5 * sr)
        hiss = sosfilt(hp, rng.standard_normal(n))
        self.hat = hiss * _env(n, sr, 0.0005, rng.uniform(0.02, 0.05))
        self.open_hat = hiss * _env(n, sr, 0.001, rng.uniform(0.15, 0.3))
        n = int(0.25 * sr)
        f = rng.uniform(700, 2500)
        self.perc = np.sin(2 * np.pi * f * np.arange(n) / sr) * _env(n, sr, 0.0005, rng.uniform(0.02, 0.06))
        for name in ("kick", "snare", "hat", "open_hat", "perc"):
            x = getattr(self, name)
            setattr(self, name, (x / (np.abs(x).max() + 1e-9)).astype(np.float32))


def _tone(kind: str, freq: float, n: int, sr: int, rng: np.random.Generator, vibrato: float = 0.0) -> np.ndarray:
    t = np.arange(n) / sr
    f = freq * (1.0 + vibrato * np.sin(2 * np.pi * 5.5 * t))
    ph = 2 * np.pi * np.cumsum(f) / sr
    if kind == "sine":
        return np.sin(ph)
    if kind == "square":
        return np.tanh(4.0 * np.sin(ph))
    if kind == "triangle":
        return 2.0 / np.pi * np.arcsin(np.sin(ph))
    if kind == "saw":
        return 2.0 * ((ph / (2 * np.pi)) % 1.0) - 1.0
    if kind == "organ":
        return np.sin(ph) + 0.5 * np.sin(2 * ph) + 0.25 * np.sin(3 * ph) + 0.12 * np.sin(4 * ph)
    if kind == "keys":
        return (np.sin(ph) + 0.3 * np.sin(2 * ph) * np.exp(-t / 0.2)) * np.exp(-t / 0.6)
    raise ValueError(kind)


def _lowpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    b, a = butter(2, min(cutoff, 0.45 * sr), "lowpass", fs=sr)
    return lfilter(b, a, x)


def _add(buf: np.ndarray, x: np.ndarray, start: int, gain: float) -> None:
    if start >= len(buf) or start < 0:
        return
    end = min(len(buf), start + len(x))
    buf[start:end] += gain * x[: end - start]


# ----------------------------------------------------------------------------- song


def _section_plan(n_bars: int, rng: np.random.Generator) -> list[tuple[str, int, int]]:
    """Phrases of 4 bars (2 when the song is short) labelled intro/verse/chorus/break/outro."""
    phrase = 4 if n_bars >= 10 else 2
    starts = list(range(0, n_bars, phrase))
    names: list[str] = []
    cycle = ["verse", "chorus"] if rng.random() < 0.5 else ["verse", "verse", "chorus"]
    k = 0
    for i in range(len(starts)):
        if i == 0:
            names.append("intro")
        elif i == len(starts) - 1 and len(starts) > 3:
            names.append("outro")
        elif names[-1] == "chorus" and rng.random() < 0.35:
            names.append("break")
        else:
            names.append(cycle[k % len(cycle)])
            k += 1
    return [(nm, s, min(n_bars, s + phrase)) for nm, s in zip(names, starts)]


def generate_song(spec: SongSpec, sample_rate: int = SAMPLE_RATE) -> Song:
    """Render ``spec`` to samples. Deterministic: same spec, same samples."""
    style = STYLES[spec.style]
    rng = np.random.default_rng([spec.seed, int(spec.tempo * 10), 17])
    sr = sample_rate
    beat = 60.0 / spec.tempo
    step = beat / 4.0
    n = int(round(spec.duration * sr))
    n_bars = int(np.ceil(spec.duration / (4 * beat)))
    lead_in = 0.0  # beats start at t = 0
    kit = _Kit(rng, sr)
    drums = np.zeros(n + sr, np.float64)
    bass = np.zeros_like(drums)
    chords = np.zeros_like(drums)
    lead = np.zeros_like(drums)
    plan = _section_plan(n_bars, rng)
    scale = SCALES[spec.scale]
    bass_wave = ("saw", "square", "sine", "triangle")[int(rng.integers(4))]
    bass_cut = rng.uniform(300, 1200)
    lead_wave = style.lead if style.lead != "none" else "sine"
    chord_wave = {"pad": "saw", "stab": "saw", "organ": "organ", "keys": "keys"}[style.chords]
    fill_bar = rng.integers(2, 4)

    def degree_midi(deg: int, octave: int = 0) -> float:
        return spec.key + scale[deg % 7] + 12 * (deg // 7 + octave)

    def t_of(bar: int, s: float) -> float:
        """Onset time of 16th step ``s`` in ``bar`` with swing on the off 16ths."""
        swing = style.swing * step * (1 if int(s) % 2 == 1 else 0)
        return lead_in + bar * 4 * beat + s * step + swing

    melody_deg = 0
    for name, b0, b1 in plan:
        energy = SECTION_ENERGY[name] * rng.uniform(0.9, 1.1)
        for bar in range(b0, b1):
            chord_deg = spec.progression[bar % len(spec.progression)]
            last_in_phrase = bar == b1 - 1
            # drums: the break keeps hats only; intro thins the kit
            lines = [
                ("kick", style.kick, 1.0),
                ("snare", style.snare, 0.7),
                ("hat", style.hat, 0.25),
                ("open_hat", style.open_hat, 0.25),
                ("perc", style.perc, 0.35),
            ]
            for inst, pat, g in lines:
                if name == "break" and inst in ("kick", "snare"):
                    continue
                if name == "intro" and inst in ("snare", "open_hat", "perc") and bar < b1 - 1:
                    continue
                if last_in_phrase and inst == "snare" and bar % fill_bar == 0 and name != "break":
                    pat = pat[:12] + "x.xx"  # a short fill into the next phrase
                for s, c in enumerate(pat):
                    if c == "x":
                        accent = 1.0 if s % 4 == 0 else 0.8
                        _add(drums, getattr(kit, inst), int(t_of(bar, s) * sr), g * accent * (0.6 + 0.4 * energy))
            # bass
            root = degree_midi(chord_deg) - 12 * (1 if degree_midi(chord_deg) > 52 else 0)
            if style.bass == "roots":
                hits = [(s, 3.5) for s in (0, 4, 8, 12)]
            elif style.bass == "offbeat":
                hits = [(s, 1.8) for s in (2, 6, 10, 14)]
            elif style.bass == "synco":
                hits = [(0, 2.5), (3, 1.5), (6, 2.0), (10, 1.5), (12, 1.0), (14, 1.5)]
            elif style.bass == "walking":
                hits = [(s, 3.8) for s in (0, 4, 8, 12)]
            else:
                hits = [(0, 14.0)]
            if name != "break":
                for j, (s, dur) in enumerate(hits):
                    m = root
                    if style.bass == "walking":
                        m = root + scale[(j * 2) % 7] - scale[0]
                    elif style.bass == "synco" and j % 3 == 2:
                        m = root + 7
                    nn = int(dur * step * sr)
                    x = _tone(bass_wave, _midi_hz(m), nn, sr, rng) * _env(nn, sr, 0.005, dur * step * 0.8)
                    _add(bass, x, int(t_of(bar, s) * sr), 0.5 * energy)
            # chords
            if name not in ("intro",) or bar >= b1 - 2:
                notes = [degree_midi(chord_deg + k, 1) for k in (0, 2, 4)]
                if style.chords in ("pad", "organ"):
                    onsets, dur = [0], 16 * step
                else:
                    onsets, dur = ([2, 6, 10, 14] if style.chords == "stab" else [0, 6, 8]), 1.5 * step
                for s in onsets:
                    nn = int(dur * sr)
                    att = 0.15 * dur if style.chords == "pad" else 0.003
                    e = _env(nn, sr, att, dur * (0.9 if style.chords == "pad" else 0.3))
                    x = sum(_tone(chord_wave, _midi_hz(m) * (1 + 0.003 * k), nn, sr, rng) for k, m in enumerate(notes))
                    if chord_wave == "saw":
                        x = _lowpass(x, 1200 + 2500 * energy, sr)
                    _add(chords, x * e, int(t_of(bar, s) * sr), 0.12 * (0.5 + energy))
            # melody: a scale walk in 8ths, busier and higher in the chorus
            if style.lead != "none" and name in ("chorus", "verse") and (name == "chorus" or rng.random() < 0.5):
                for s in range(0, 16, 2):
                    if rng.random() < (0.25 if name == "chorus" else 0.5):
                        continue
                    melody_deg = int(np.clip(melody_deg + rng.integers(-2, 3), -3, 9))
                    nn = int(2 * step * sr * rng.uniform(0.6, 1.0))
                    x = _tone(lead_wave, _midi_hz(degree_midi(chord_deg + melody_deg, 2)), nn, sr, rng, vibrato=0.004)
                    _add(lead, x * _env(nn, sr, 0.01, 0.25), int(t_of(bar, s) * sr), 0.18 * energy)
    mix = drums + _lowpass(bass, bass_cut, sr) + chords + lead
    mix = np.tanh(1.2 * mix / (np.percentile(np.abs(mix), 99.5) + 1e-9))[:n]
    fade = min(n, int(0.05 * sr))
    mix[-fade:] *= np.linspace(1.0, 0.0, fade)
    mix = (spec.gain * mix / (np.abs(mix).max() + 1e-9)).astype(np.float32)
    beats = lead_in + np.arange(int(np.floor((spec.duration - lead_in) / beat)) + 1) * beat
    beats = beats[beats < spec.duration]
    sections = [(nm, lead_in + b0 * 4 * beat, min(spec.duration, lead_in + b1 * 4 * beat)) for nm, b0, b1 in plan]
    return Song(spec, mix, sr, beats, beats[::4].copy(), sections)


def write_song(song: Song, path: str | Path) -> Path:
    """Write ``.wav`` (16-bit PCM) or ``.ogg`` (Vorbis) by suffix, atomically."""
    import soundfile as sf

    path = Path(path)
    fmt = {".wav": ("WAV", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".flac": ("FLAC", "PCM_16")}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path.name}: write .wav, .ogg or .flac")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), song.waveform, song.sample_rate, format=fmt[0], subtype=fmt[1])
    tmp.replace(path)
    return path


def spec_hash(spec: SongSpec) -> str:
    return hashlib.sha1(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- CLI


def _cmd(args: argparse.Namespace) -> int:
    out = Path(args.out)
    specs = corpus_specs(args.count, args.split, args.seed, (args.min_seconds, args.max_seconds))
    index = []
    for spec in specs:
        song = generate_song(spec)
        path = write_song(song, out / f"{spec.name}.{args.format}")
        index.append({"file": path.name, "split": split_of(spec), **asdict(spec)})
    (out / "songs.json").write_text(json.dumps({"generator": GENERATOR_VERSION, "songs": index}, indent=1))
    print(f"wrote {len(index)} songs to {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("music-synth", help="write procedurally generated songs (wav/ogg)")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--out", required=True)
    p.add_argument("--split", choices=("train", "heldout"), default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("wav", "ogg", "flac"), default="ogg")
    p.add_argument("--min-seconds", type=float, default=20.0)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.set_defaults(func=_cmd)
