"""Rhythm analysis on the analysis waveform: beats, tempo, downbeats, sections, onset envelope.

The analysis rate is chosen so that one STFT hop is exactly one video frame (EDGE computes its
baseline features at sr = 30 * 512 for 30 fps); at 15 fps that is 15360 Hz with a 1024-sample
hop, i.e. EDGE's own sample rate. Beats are tracked on a finer 60 Hz onset envelope so beat
times are not quantised to video frames.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..types import DEFAULT_FPS, Music, frame_count

log = logging.getLogger(__name__)

TARGET_RATE = 15360  # EDGE's analysis sample rate (30 fps * 512)
BEAT_RATE = 60.0  # beat-tracking onset envelope rate (Hz), whatever the video fps
BEAT_N_FFT = 1024  # short window: onset peaks land close to the true attack
FRAME_N_FFT = 2048  # librosa default, as in EDGE's baseline features
DEFAULT_START_BPM = 120.0
DOWNBEAT_WEIGHTS = (1.0, 0.5, 0.5)  # bass onset, chord change, accent (see find_downbeats)
ANALYSIS_VERSION = "2"  # bump when the analysis changes results (part of the content hash)


@dataclass(frozen=True)
class Grid:
    """Analysis sample rate and hop such that ``sample_rate / hop == fps`` when ``exact``."""

    fps: float
    sample_rate: int
    hop: int
    exact: bool

    @property
    def beat_hop(self) -> int:
        """~60 Hz onset envelope: beats resolved to ~17 ms at any fps (256 samples at 15360 Hz)."""
        return max(1, int(round(self.sample_rate / BEAT_RATE)))


def analysis_grid(fps: float) -> Grid:
    """Pick (sr, hop) with sr = fps * hop an integer near 15360 Hz so frames align exactly."""
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    hop0 = TARGET_RATE / fps
    frac = Fraction(fps).limit_denominator(1001)
    if abs(float(frac) - fps) < 1e-9:
        # sr = fps * hop is an integer iff hop is a multiple of fps's denominator
        q = frac.denominator
        hop = max(q, int(round(hop0 / q)) * q)
        sr = frac * hop
        if sr.denominator == 1:
            return Grid(float(fps), int(sr), hop, True)
    return Grid(float(fps), TARGET_RATE, max(1, int(round(hop0))), False)


@dataclass
class Spectra:
    """Small filter-bank outputs of two chunked STFT passes (see :mod:`.spectral`)."""

    frame_mel: np.ndarray  # (128, N+1) mel power, hop = one video frame, n_fft 2048
    frame_mel40: np.ndarray  # (40, N+1) coarser mel power for section timbre
    frame_power: np.ndarray  # (1, N+1) total power
    beat_mel: np.ndarray  # (128, M) mel power at the fine beat hop, n_fft BEAT_N_FFT
    beat_chroma: np.ndarray  # (12, M) chroma power at the fine beat hop


def compute_spectra(y: np.ndarray, grid: Grid) -> Spectra:
    from .spectral import banked_power, chroma_bank, mel_bank

    sr = grid.sample_rate
    n_bins = 1 + FRAME_N_FFT // 2
    frame_mel, frame_mel40, power = banked_power(
        y,
        FRAME_N_FFT,
        grid.hop,
        [mel_bank(sr, FRAME_N_FFT), mel_bank(sr, FRAME_N_FFT, 40), np.ones((1, n_bins), np.float32)],
    )
    beat_mel, beat_chroma = banked_power(
        y, BEAT_N_FFT, grid.beat_hop, [mel_bank(sr, BEAT_N_FFT), chroma_bank(sr, BEAT_N_FFT)]
    )
    return Spectra(frame_mel, frame_mel40, power, beat_mel, beat_chroma)


def onset_envelope_frames(spec: Spectra, grid: Grid, n: int) -> np.ndarray:
    """librosa onset strength with one hop per video frame, ``n`` frames (frame j at j / fps)."""
    from .spectral import onset_from_mel

    env = onset_from_mel(spec.frame_mel, grid.sample_rate, grid.hop, FRAME_N_FFT)
    if not grid.exact:
        env = resample_to_frames(env[:, None], grid.sample_rate / grid.hop, grid.fps, n)[:, 0]
    env = env[:n]
    return np.pad(env, (0, n - len(env))).astype(np.float32) if len(env) < n else env.astype(np.float32)


def resample_to_frames(x: np.ndarray, rate: float, fps: float, n: int) -> np.ndarray:
    """Linear interpolation of rows sampled at ``rate`` (row k at k / rate) onto frames j / fps."""
    t_src = np.arange(x.shape[0]) / rate
    t_dst = np.arange(n) / fps
    return np.stack([np.interp(t_dst, t_src, x[:, c]) for c in range(x.shape[1])], axis=1).astype(np.float32)


def beat_envelope(spec: Spectra, grid: Grid) -> np.ndarray:
    """Onset strength at the fine beat hop that the beat tracker follows."""
    from .spectral import onset_from_mel

    return onset_from_mel(spec.beat_mel, grid.sample_rate, grid.beat_hop, BEAT_N_FFT)


def track_beats(
    spec: Spectra, grid: Grid, duration: float, start_bpm: float = 0.0
) -> tuple[np.ndarray, float, np.ndarray]:
    """Beat times (s), tempo (BPM) and the fine onset envelope used to find them.

    The tempo estimate and the tracker follow librosa (``feature.tempo``; the beat_track DP is
    reimplemented in :mod:`.beats`). librosa's tempo estimate is quantised to autocorrelation lags
    (~3 % steps at 60 Hz), so the reported tempo is refit from the tracked beats: the slope of
    beat time against beat index over the steady beats.
    """
    from .beats import beat_track

    sr, hop = grid.sample_rate, grid.beat_hop
    env = beat_envelope(spec, grid)
    bpm0 = float(start_bpm) if start_bpm and start_bpm > 0 else DEFAULT_START_BPM
    tempo_q = estimate_tempo(env, sr, hop, bpm0)
    # librosa.beat.beat_track's tracker, reimplemented in numpy (see .beats: importing
    # librosa.beat JIT-compiles an uncached numba kernel in every process)
    frames = beat_track(env, sr / hop, tempo_q, tightness=100.0)
    times = frames * hop / float(sr)
    times = refine_beat_times(times, env, sr / hop)
    tempo = refit_tempo(times, tempo_q)
    times = extend_beats(times, env, sr / hop, tempo, duration)
    return times.astype(np.float64), tempo, env


def estimate_tempo(
    env: np.ndarray, sr: int, hop: int, start_bpm: float, ac_size: float = 8.0, chunk: int = 6000
) -> float:
    """librosa's global tempo estimate (mean autocorrelation tempogram + log-normal prior at
    ``start_bpm``), with the tempogram averaged chunk by chunk: a whole-song tempogram of a
    10-minute song at 60 Hz would need ~1 GB."""
    import librosa

    win = int(round(ac_size * sr / hop))
    if len(env) <= chunk:
        return float(
            np.atleast_1d(
                librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop, start_bpm=start_bpm, ac_size=ac_size)
            )[0]
        )
    total = np.zeros(win)
    for k in range(0, len(env), chunk):
        part = env[k : k + chunk]
        if len(part) < win:  # a short tail adds little and distorts the mean
            continue
        tg = librosa.feature.tempogram(onset_envelope=part, sr=sr, hop_length=hop, win_length=win)
        total += tg.sum(axis=1)
    tg_mean = (total / len(env))[:, None]
    return float(
        np.atleast_1d(librosa.feature.tempo(tg=tg_mean, sr=sr, hop_length=hop, start_bpm=start_bpm, ac_size=ac_size))[0]
    )


def extend_beats(times: np.ndarray, env: np.ndarray, env_rate: float, tempo: float, duration: float) -> np.ndarray:
    """Add beats the tracker trimmed at either end: one period further while an onset is there.

    librosa trims weak beats at the edges; a quiet intro (kick on 1 and 3 only) loses its first
    bar that way. A beat is added only where the onset envelope has a peak of at least a quarter
    of the median beat strength within +-2 envelope frames of the predicted time.
    """
    if len(times) < 2 or tempo <= 0:
        return times
    period = 60.0 / tempo
    strength = np.median(
        [env[int(round(t * env_rate)) + 1] for t in times if int(round(t * env_rate)) + 1 < len(env)] or [0.0]
    )
    if strength <= 0:
        return times

    def onset_near(t: float) -> float | None:
        k = int(round(t * env_rate)) + 1  # envelope peaks one frame after the attack
        lo, hi = max(1, k - 2), min(len(env) - 1, k + 3)
        if hi <= lo or env[lo:hi].max() < 0.25 * strength:
            return None
        return (lo + int(np.argmax(env[lo:hi])) - 1) / env_rate

    out = list(times)
    while out[0] - period > -0.5 * period / 2:
        t = onset_near(max(0.0, out[0] - period))
        if t is None or out[0] - t < 0.75 * period:
            break
        out.insert(0, t)
    while out[-1] + period < duration:
        t = onset_near(out[-1] + period)
        if t is None or t - out[-1] < 0.75 * period:
            break
        out.append(t)
    return np.asarray(out)


def refine_beat_times(times: np.ndarray, env: np.ndarray, env_rate: float, reach: int = 3) -> np.ndarray:
    """Snap each beat to the strongest onset peak within +-``reach`` envelope frames.

    The peak is parabolic-interpolated, and one frame is subtracted because the onset envelope
    (a first difference, lag 1) peaks one frame after the attack (measured on click tracks).
    """
    out = times.copy()
    for i, t in enumerate(times):
        k = int(round(t * env_rate))
        lo, hi = max(1, k - reach), min(len(env) - 2, k + reach)
        if hi < lo:
            continue
        j = lo + int(np.argmax(env[lo : hi + 1]))
        a, b, c = env[j - 1], env[j], env[j + 1]
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if den < 0 else 0.0
        out[i] = max(0.0, (j - 1 + float(np.clip(shift, -0.5, 0.5))) / env_rate)
    return out


def refit_tempo(times: np.ndarray, fallback: float) -> float:
    """Tempo from the steady run of beats (inter-beat intervals within 15 % of the median)."""
    if len(times) < 3:
        return float(fallback)
    ibi = np.diff(times)
    med = float(np.median(ibi))
    if med <= 0:
        return float(fallback)
    ok = np.abs(ibi - med) < 0.15 * med
    # longest run of steady intervals
    best_len, best_start, run_start = 0, 0, None
    for i, good in enumerate(np.append(ok, False)):
        if good and run_start is None:
            run_start = i
        elif not good and run_start is not None:
            if i - run_start > best_len:
                best_len, best_start = i - run_start, run_start
            run_start = None
    if best_len < 2:
        return 60.0 / med
    seg = times[best_start : best_start + best_len + 1]
    slope = np.polyfit(np.arange(len(seg)), seg, 1)[0]
    return float(60.0 / slope)


def find_downbeats(spec: Spectra, grid: Grid, beat_times: np.ndarray, beats_per_bar: int = 4) -> np.ndarray:
    """Downbeats assuming a constant metre: the beat phase where bass onsets and chord changes land.

    librosa has no downbeat tracker; in dance music the bar starts carry the kick/bass note, the
    harmony changes and accents, so each phase of the bar is scored by the low-band onset
    strength, the chroma change and the overall onset strength at its beats; the strongest wins.
    """
    import librosa

    if len(beat_times) < beats_per_bar * 2:
        return beat_times[:1].copy()
    sr, hop = grid.sample_rate, grid.beat_hop
    mel = spec.beat_mel
    freqs = librosa.mel_frequencies(n_mels=mel.shape[0], fmax=sr / 2)
    low = librosa.onset.onset_strength(S=librosa.power_to_db(mel[freqs < 200]), sr=sr, hop_length=hop, n_fft=BEAT_N_FFT)
    chroma = librosa.util.normalize(spec.beat_chroma, norm=np.inf, axis=0)
    bf = np.clip(np.round(beat_times * sr / hop).astype(int), 0, chroma.shape[1] - 1)
    sync = librosa.util.sync(chroma, bf, aggregate=np.median)  # columns: [0, b0), [b0, b1), ...
    sync = sync / (np.linalg.norm(sync, axis=0, keepdims=True) + 1e-9)
    change = np.zeros(len(bf))
    change[1:] = 1.0 - np.sum(sync[:, 1:-1] * sync[:, 2:], axis=0)[: len(bf) - 1] if sync.shape[1] > 2 else 0.0
    low_at = np.array([low[max(0, b - 1) : b + 2].max() for b in bf])
    full = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=hop, n_fft=BEAT_N_FFT)
    full_at = np.array([full[max(0, b - 1) : b + 2].max() for b in bf])

    def z(v: np.ndarray) -> np.ndarray:
        return (v - v.mean()) / (v.std() + 1e-9)

    w_low, w_change, w_accent = DOWNBEAT_WEIGHTS
    score = w_low * z(low_at) + w_change * z(change) + w_accent * z(full_at)
    phase_scores = [score[p::beats_per_bar].mean() for p in range(beats_per_bar)]
    phase = int(np.argmax(phase_scores))
    return beat_times[phase::beats_per_bar].copy()


def find_sections(
    spec: Spectra, grid: Grid, downbeat_times: np.ndarray, min_bars: int = 2, min_ratio: float = 2.5, max_bars: int = 8
) -> np.ndarray:
    """Section starts (s, on downbeats) where bar-level timbre/loudness changes for good.

    For each downbeat, the mean bar feature of the bars before and after it is compared; the
    distance between the two means is divided by the spread of the bars inside each side. A
    ratio above ``min_ratio`` that is a local maximum marks a section start (a verse -> chorus
    change), while bar-to-bar chord changes inside a section stay below it.
    """
    import librosa

    from .spectral import onset_from_mel

    nb = len(downbeat_times)
    if nb < 2 * min_bars:
        return np.zeros(0)
    sr, hop = grid.sample_rate, grid.hop
    mel = librosa.power_to_db(spec.frame_mel40, ref=1.0, top_db=None)
    # mean-square amplitude per frame from the power spectrum (Parseval, Hann window) -> dB
    rms = librosa.power_to_db(spec.frame_power / (0.375 * FRAME_N_FFT**2 / 2), ref=1.0, top_db=None)
    onset = onset_from_mel(spec.frame_mel, sr, hop, FRAME_N_FFT)[None]
    x = np.concatenate([mel / 10.0, rms / 5.0, onset], axis=0)  # roughly comparable units (dB/10)
    bf = np.clip(np.round(downbeat_times * sr / hop).astype(int), 0, x.shape[1] - 1)
    bars = librosa.util.sync(x, bf, aggregate=np.mean)[:, 1:]  # column k: bar starting at downbeat k
    nbar = bars.shape[1]
    k = int(np.clip(nbar // 3, min_bars, max_bars))
    ratio = np.zeros(nbar)
    for i in range(min_bars, nbar - min_bars + 1):
        left, right = bars[:, max(0, i - k) : i], bars[:, i : min(nbar, i + k)]
        between = np.linalg.norm(left.mean(axis=1) - right.mean(axis=1))
        within = np.sqrt(0.5 * (left.var(axis=1).sum() + right.var(axis=1).sum())) + 0.5
        ratio[i] = between / within
    picks = [
        i
        for i in range(min_bars, nbar)
        if ratio[i] >= min_ratio and ratio[i] == ratio[max(0, i - min_bars) : i + min_bars + 1].max()
    ]
    log.debug("section novelty per bar: %s", np.round(ratio, 2))
    return downbeat_times[np.array(picks, dtype=int)].astype(np.float64) if picks else np.zeros(0)


def content_hash(audio_sha256: str, grid: Grid, start_bpm: float) -> str:
    h = hashlib.sha256(
        f"{audio_sha256}|{grid.sample_rate}|{grid.hop}|{grid.fps!r}|{start_bpm!r}|v{ANALYSIS_VERSION}".encode()
    )
    return h.hexdigest()[:32]


def analyse(
    mono: np.ndarray,
    grid: Grid,
    audio_sha256: str,
    source: str,
    offset: float = 0.0,
    start_bpm: float = 0.0,
    **extra,
) -> Music:
    """Build a :class:`Music` from a mono waveform at ``grid.sample_rate``."""
    y = np.ascontiguousarray(mono, dtype=np.float32)
    duration = len(y) / float(grid.sample_rate)
    n = frame_count(duration, grid.fps)
    spec = compute_spectra(y, grid)
    env = onset_envelope_frames(spec, grid, n)
    peak = float(env.max()) if len(env) else 0.0
    env = (env / peak if peak > 0 else env).astype(np.float32)
    beats, tempo, _ = track_beats(spec, grid, duration, start_bpm)
    beats = beats[(beats >= 0) & (beats < duration)]
    downbeats = find_downbeats(spec, grid, beats)
    sections = find_sections(spec, grid, downbeats)
    del spec
    return Music(
        waveform=y,
        sample_rate=grid.sample_rate,
        fps=grid.fps,
        n_frames=n,
        beat_times=beats,
        tempo=float(tempo),
        onset_envelope=env,
        source=source,
        content_hash=content_hash(audio_sha256, grid, start_bpm),
        offset=float(offset),
        downbeat_times=downbeats,
        section_times=sections,
        **extra,
    )


__all__ = ["DEFAULT_FPS", "Grid", "analysis_grid", "analyse", "track_beats", "find_downbeats", "find_sections"]
