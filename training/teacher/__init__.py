"""The choreography teacher: a deterministic, beat-synchronous SMPL dance for any music.

SDGPip trains the Music-to-Pose Encoder on (music, teacher dance) pairs, so the dance must be a
*function of the music* (learnable) that still differs clearly between songs:

1. Analysis: beats, downbeats and section starts come from :class:`~stm2pe_core.types.Music`;
   one STFT gives per-phrase descriptors (loudness, brightness = spectral centroid,
   percussiveness = onset strength on beats, bass weight = energy below 200 Hz, tempo).
2. Phrases of 8 beats start on downbeats (a section start also starts a phrase). Each phrase
   picks a move from the vocabulary (:mod:`.moves`) by the move's affinity to the phrase's
   z-scored descriptors, plus a small deterministic preference that hashes the quantised
   song-level descriptors (so two songs of similar character still dance differently), minus a
   penalty for repeating recent moves. Energy sets the amplitude, brightness the arm height,
   bass weight the lean, the onset strength on each beat its accent.
3. One key pose per beat, placed exactly at the beat time; between keys the pose follows a
   smoothstep ease, so joint speed falls to zero on every beat (what the Beat Alignment Score
   measures) and peaks between beats.
4. DOFs are clamped to joint limits, converted to SMPL axis-angle, then the ground pass sets
   the pelvis height (lowest foot on the floor) and keeps the stance foot still.

``seed=None`` gives the pure function of the music; an integer seed perturbs move choice and
parameters (user-requested variations) while keeping the beat structure.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass

import numpy as np

from stm2pe_core.types import Motion, Music

from .body import DOF_INDEX, DOF_NAMES, NEUTRAL, clamp, dofs_to_poses, ground_and_lock
from .moves import AFFINITY, BOTH, MOVE_NAMES, MOVES, Params

TEACHER_VERSION = "teacher/3"
PHRASE_BEATS = 8
PALETTE = 4  # moves per song
# fixed descriptor scales (not per song, so loud/bright songs differ from quiet/dark ones)
# (calibrated on the synthetic corpus; loudness in dBFS, centroid in Hz, onset strength on beats
# of the max-normalised envelope, share of power below 200 Hz, BPM)
_DESC_MEAN = np.array([-19.0, 1590.0, 0.12, 0.75, 107.0])
_DESC_STD = np.array([3.5, 450.0, 0.09, 0.12, 25.0])


@dataclass
class Phrase:
    start: int  # index of its first beat in the (extended) beat grid
    stop: int  # exclusive
    move: str
    params: Params
    descriptors: np.ndarray  # z-scored (energy, brightness, percussive, bass, tempo)


@dataclass
class Choreography:
    motion: Motion
    phrases: list[Phrase]
    key_times: np.ndarray  # (K,) seconds: one key pose per beat
    joints: np.ndarray  # (N, 24, 3) posed joints (world, y-up)
    stance: np.ndarray  # (N,) foot held still: 0 left, 1 right, 3 airborne


def _beat_grid(music: Music) -> np.ndarray:
    """Music beats extended (at the local beat period) to cover the whole excerpt."""
    dur = max(music.n_frames / music.fps, 1e-3)
    beats = np.asarray(music.beat_times, dtype=np.float64)
    beats = np.unique(beats[(beats >= 0) & (beats <= dur)])
    period = 60.0 / music.tempo if music.tempo and music.tempo > 0 else 0.5
    if len(beats) >= 2:
        period_lo, period_hi = np.median(np.diff(beats[: min(len(beats), 9)])), np.median(np.diff(beats[-9:]))
    else:
        period_lo = period_hi = period
        if len(beats) == 0:
            beats = np.array([0.0])
    period_lo = float(np.clip(period_lo, 0.25, 1.5))
    period_hi = float(np.clip(period_hi, 0.25, 1.5))
    head = beats[0] - period_lo * np.arange(1, int(beats[0] / period_lo) + 2)[::-1]
    tail = beats[-1] + period_hi * np.arange(1, int((dur - beats[-1]) / period_hi) + 2)
    return np.concatenate([head, beats, tail])


def _spectral_frames(music: Music) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-STFT-frame times, loudness (dB), spectral centroid (Hz), low-band (<200 Hz) share."""
    import librosa

    y = np.asarray(music.waveform, dtype=np.float32)
    sr = music.sample_rate
    hop = 512
    if len(y) < 2048:
        y = np.pad(y, (0, 2048 - len(y)))
    mag = np.abs(librosa.stft(y, n_fft=2048, hop_length=hop, center=True))
    power = mag**2
    freqs = librosa.fft_frequencies(sr=sr, n_fft=2048)
    total = power.sum(0) + 1e-12
    loud = 20 * np.log10(librosa.feature.rms(S=mag, frame_length=2048)[0] + 1e-6)
    band = freqs <= 7000.0  # below every analysis rate's Nyquist, so the rate does not matter
    centroid = (freqs[band, None] * mag[band]).sum(0) / (mag[band].sum(0) + 1e-9)
    low = power[freqs < 200].sum(0) / total
    times = np.arange(mag.shape[1]) * hop / sr
    return times, loud, centroid, low


def _phrase_bounds(grid: np.ndarray, music: Music) -> list[tuple[int, int]]:
    """Phrase start indices into ``grid``: every 8 beats from the first downbeat; section starts
    and the first downbeat also start phrases."""
    starts = {0}
    down = np.asarray(music.downbeat_times, dtype=np.float64)
    if len(down) == 0 and len(music.beat_times):
        down = np.asarray(music.beat_times)[::4]
    first = int(np.argmin(np.abs(grid - down[0]))) if len(down) else 0
    for i in range(first % PHRASE_BEATS, len(grid), PHRASE_BEATS):
        starts.add(i)
    starts.add(first)
    for t in np.asarray(getattr(music, "section_times", np.zeros(0)), dtype=np.float64):
        starts.add(int(np.argmin(np.abs(grid - t))))
    s = sorted(x for x in starts if x < len(grid) - 1)
    # merge slivers (< 2 beats) into the previous phrase
    merged = [s[0]]
    for x in s[1:]:
        if x - merged[-1] >= 2:
            merged.append(x)
    bounds = [(a, b) for a, b in zip(merged, merged[1:] + [len(grid)])]
    return bounds


def _hash_unit(*parts: object) -> np.ndarray:
    """Deterministic pseudo-random numbers in [0, 1) from the parts (stable across runs)."""
    h = hashlib.sha256(repr(parts).encode()).digest()
    return np.frombuffer(h, dtype=np.uint8).astype(np.float64) / 256.0


def choreograph_full(music: Music, seed: int | None = None) -> Choreography:
    """The teacher dance for ``music`` with its phrase plan (see the module docstring)."""
    fps = music.fps
    n = music.n_frames
    grid = _beat_grid(music)
    times, loud, centroid, low = _spectral_frames(music)
    env = np.asarray(music.onset_envelope, dtype=np.float64)
    env_t = np.arange(len(env)) / fps
    beat_onset = np.interp(grid, env_t, env) if len(env) else np.zeros(len(grid))
    tempo = float(music.tempo) if music.tempo and music.tempo > 0 else 60.0 / max(np.median(np.diff(grid)), 1e-3)
    song_loud = float(np.median(loud)) if len(loud) else -30.0

    bounds = _phrase_bounds(grid, music)
    aff = np.array([AFFINITY[m] for m in MOVE_NAMES])
    # song-level character, quantised, picks a stable per-song preference among moves
    q = (
        int(np.clip(tempo // 15, 0, 20)),
        int(np.clip(np.median(centroid) // 600, 0, 20)),
        int(np.clip(np.mean(low) // 0.12, 0, 10)),
        int(np.clip(song_loud // 6, -20, 5)),
    )
    pref = _hash_unit("song", q)[: len(MOVE_NAMES)] * 0.9
    rng = np.random.default_rng(seed) if seed is not None else None
    if rng is not None:
        pref = pref + rng.uniform(0, 1.2, len(MOVE_NAMES))

    # per-phrase descriptors
    descs = []
    for a, b in bounds:
        t0, t1 = grid[a], grid[min(b, len(grid) - 1)]
        m = (times >= t0) & (times < max(t1, t0 + 1e-3))
        if not m.any():
            m = np.abs(times - t0) == np.abs(times - t0).min()
        raw = [
            np.mean(loud[m]),
            np.mean(centroid[m]),
            np.mean(beat_onset[a:b]) if b > a else 0.0,
            np.mean(low[m]),
            tempo,
        ]
        descs.append(np.clip((np.array(raw, dtype=np.float64) - _DESC_MEAN) / _DESC_STD, -2.5, 2.5))
    descs_a = np.array(descs)
    song_z = np.median(descs_a, axis=0)

    # the song's palette: its PALETTE best moves for the song's overall character; phrases then
    # choose within it, so a song has a recognisable set of moves that returns when the music does
    palette_score = 0.5 * (aff @ song_z) + 1.6 * pref
    palette = [int(i) for i in np.argsort(-palette_score)[:PALETTE]]
    # the song's personal style: DOF biases every key pose shares (depth of the groove, arm
    # carriage, stance width, lean), from the quantised song character (or the seed)
    u_style = _hash_unit("style", q) if rng is None else rng.uniform(0, 1, 32)
    style = np.zeros(len(DOF_NAMES))
    knee = 14.0 * u_style[0]
    for side in ("l_", "r_"):
        style[DOF_INDEX[side + "knee"]] = knee
        style[DOF_INDEX[side + "hip_flex"]] = 0.6 * knee
        style[DOF_INDEX[side + "ankle"]] = -0.3 * knee
        style[DOF_INDEX[side + "sh_abd"]] = -5.0 + 30.0 * u_style[1]
        style[DOF_INDEX[side + "elbow"]] = -10.0 + 40.0 * u_style[2]
        style[DOF_INDEX[side + "sh_flex"]] = 20.0 * u_style[3]
        style[DOF_INDEX[side + "hip_abd"]] = 8.0 * u_style[4]
        style[DOF_INDEX[side + "sh_twist"]] = -15.0 + 35.0 * u_style[5]
    style[DOF_INDEX["lean"]] = -4.0 + 12.0 * u_style[6]
    style[DOF_INDEX["tilt"]] = -6.0 + 12.0 * u_style[7]
    song_amp = 0.85 + 0.3 * u_style[8]
    song_side = 1 if u_style[9] < 0.5 else -1

    phrases: list[Phrase] = []
    recent: list[str] = []
    song_rel = np.median(descs_a[:, 0])
    for (a, b), z in zip(bounds, descs_a):
        # local loudness relative to the song: sections that get louder dance bigger
        rel = float(np.clip((z[0] - song_rel) * _DESC_STD[0] / 4.0, -1.5, 1.5))
        z_sel = z.copy()
        z_sel[0] = 0.5 * z[0] + 0.8 * rel
        score = aff[palette] @ z_sel + 0.5 * palette_score[palette]
        for j, idx in enumerate(palette):
            name = MOVE_NAMES[idx]
            if len(recent) >= 2 and recent[-1] == recent[-2] == name:
                score[j] -= 5.0  # at most two phrases of the same move in a row
            if name == "turn" and b - a < PHRASE_BEATS:
                score[j] -= 5.0
            if name == "jump" and tempo > 150:
                score[j] -= 1.0
        move = MOVE_NAMES[palette[int(np.argmax(score))]]
        recent.append(move)
        energy = 0.75 + 0.2 * (z[0] + rel) + (0.15 * float(rng.standard_normal()) if rng is not None else 0.0)
        params = Params(
            amp=float(np.clip(song_amp * energy * np.clip(115.0 / tempo, 0.85, 1.3), 0.6, 1.4)),
            arm=float(np.clip(0.5 + 0.3 * z[1], 0.0, 1.0)),
            side=song_side if recent.count(move) % 2 == 1 else -song_side,
            lean=float(np.clip(0.5 + 0.35 * z[3], 0.0, 1.0)),
        )
        phrases.append(Phrase(a, b, move, params, z))

    # one key pose per beat
    keys = np.tile(NEUTRAL + style, (len(grid), 1))
    stance_k = np.full(len(grid), BOTH, dtype=np.int64)
    onset_ref = float(np.percentile(beat_onset, 75)) + 1e-6 if len(beat_onset) else 1.0
    yaw_base = 0.0
    for ph in phrases:
        fn, cycle = MOVES[ph.move]
        last_yaw = 0.0
        for k, gi in enumerate(range(ph.start, ph.stop)):
            accent = float(np.clip(0.75 + 0.35 * beat_onset[gi] / onset_ref, 0.6, 1.4))
            p = Params(ph.params.amp, ph.params.arm, ph.params.side, ph.params.lean, accent)
            d, st = fn(k % cycle, p)
            for name, v in d.items():
                keys[gi, DOF_INDEX[name]] += v
            last_yaw = d.get("yaw", 0.0)
            keys[gi, DOF_INDEX["yaw"]] = yaw_base + last_yaw
            stance_k[gi] = st
        yaw_base += last_yaw
    keys = clamp(keys)

    # ease between keys: frame time -> (key interval, eased fraction)
    t = np.arange(n) / fps
    i = np.clip(np.searchsorted(grid, t, side="right") - 1, 0, len(grid) - 2)
    u = np.clip((t - grid[i]) / (grid[i + 1] - grid[i]), 0.0, 1.0)
    s = u * u * (3.0 - 2.0 * u)
    dofs = keys[i] + (keys[i + 1] - keys[i]) * s[:, None]
    # stance between two keys: the foot planted in both; a swap of feet changes at mid-interval
    sa, sb = stance_k[i], stance_k[i + 1]
    stance = np.where(sa == sb, sa, np.where(sa == BOTH, sb, np.where(sb == BOTH, sa, np.where(u < 0.5, sa, sb))))
    air = ((sa == 3) & (u < 0.85)) | ((sb == 3) & (u > 0.15))
    stance = np.where(air, 3, np.where(stance == 3, BOTH, stance))
    hop = dofs[:, DOF_INDEX["hop"]]

    poses = dofs_to_poses(dofs)
    trans, joints, locked = ground_and_lock(poses, stance, hop, fps)
    motion = Motion(
        poses.astype(np.float32),
        trans.astype(np.float32),
        np.zeros(10, np.float32),
        fps,
        source=f"teacher:{music.source}",
    )
    return Choreography(motion, phrases, grid, joints, locked)


def choreograph(music: Music, features: object | None = None, seed: int | None = None) -> Motion:
    """The teacher dance for ``music`` (``features`` is accepted for API symmetry and unused)."""
    del features
    return choreograph_full(music, seed).motion


__all__ = ["Choreography", "DOF_NAMES", "TEACHER_VERSION", "choreograph", "choreograph_full"]


def _cmd(args: argparse.Namespace) -> int:
    from stm2pe_core.audio import load_music

    music = load_music(args.music, offset=args.offset, duration=args.duration or None).music
    ch = choreograph_full(music, args.seed)
    from stm2pe_core.body.motion import save_motion

    save_motion(ch.motion, args.out)  # the STM2PE .npz form: Load Motion / render read it
    print(f"{args.out}: {ch.motion.n_frames} frames; moves " + ", ".join(p.move for p in ch.phrases))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teacher", help="dance a music file with the choreography teacher (writes .npz motion)")
    p.add_argument("--music", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=None, help="a variation (default: the pure function of the music)")
    p.add_argument("--offset", type=float, default=0.0)
    p.add_argument("--duration", type=float, default=0.0)
    p.set_defaults(func=_cmd)
