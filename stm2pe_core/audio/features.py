"""Jukebox Encode: MUSIC -> MUSIC_FEATURES (N x D, row i = video frame i at time i / fps).

``librosa`` mode is EDGE's 35-d baseline (onset envelope 1 + MFCC 20 + chroma CENS 12 + onset
peaks 1 + beats 1) computed with one STFT hop per video frame; ``jukebox`` mode is jukemirlib's
5B-prior layer-66 activations (4800-d), see :mod:`.jukebox`. Either can get an extra one-hot
beat channel. Results are cached on disk (:mod:`.cache`).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from ..errors import InputError
from ..progress import Progress
from ..types import Music, MusicFeatures
from .analysis import FRAME_N_FFT, analysis_grid, resample_to_frames
from .cache import FeatureCache, cache_key
from .spectral import banked_power, mel_bank, onset_from_mel

log = logging.getLogger(__name__)

Mode = Literal["librosa", "jukebox"]
MODES: tuple[str, ...] = ("librosa", "jukebox")
LIBROSA_COLUMNS: tuple[tuple[str, int], ...] = (
    ("onset_env", 1),
    ("mfcc", 20),
    ("chroma_cens", 12),
    ("onset_peaks", 1),
    ("beats", 1),
)
BEAT_COLUMN = ("beat_channel", 1)
LIBROSA_VERSION = "1"


def beat_onehot(music: Music) -> np.ndarray:
    """(N, 1) float32 with 1 at the frame nearest to each beat."""
    col = np.zeros((music.n_frames, 1), np.float32)
    col[music.beat_frames, 0] = 1.0
    return col


def librosa_features(music: Music) -> MusicFeatures:
    """EDGE's baseline recipe at the video fps; beats come from :attr:`Music.beat_times`."""
    import librosa

    y, sr, n = music.waveform, music.sample_rate, music.n_frames
    grid = analysis_grid(music.fps)
    if grid.sample_rate != sr:
        raise InputError(
            f"{music.source}: MUSIC analysed at {sr} Hz does not match fps {music.fps} (expected {grid.sample_rate} Hz). Re-run Load Music"
        )
    hop = grid.hop
    (mel,) = banked_power(y, FRAME_N_FFT, hop, [mel_bank(sr, FRAME_N_FFT)])  # = librosa's melspectrogram(y)
    env = onset_from_mel(mel, sr, hop, FRAME_N_FFT)  # = onset_strength(y=y)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20).T  # = mfcc(y=y, n_mfcc=20)
    del mel
    chroma = chunked_chroma_cens(y, sr, hop).T
    m = min(len(env), len(mfcc), len(chroma))
    peaks = np.zeros((m, 1), np.float32)
    idx = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop)
    peaks[idx[idx < m], 0] = 1.0
    dense = np.concatenate([env[:m, None], mfcc[:m], chroma[:m], peaks], axis=1).astype(np.float32)
    if not grid.exact:  # frames do not coincide with hops: interpolate onto frame times
        dense = resample_to_frames(dense, sr / hop, music.fps, n)
        dense[:, -1] = (dense[:, -1] > 0.5).astype(np.float32)
    dense = dense[:n]
    if len(dense) < n:  # cannot happen with centre frames; guard anyway
        dense = np.pad(dense, ((0, n - len(dense)), (0, 0)), mode="edge")
    feats = np.concatenate([dense, beat_onehot(music)], axis=1)
    return MusicFeatures(
        np.ascontiguousarray(feats, dtype=np.float32), "librosa", music.fps, LIBROSA_COLUMNS, music.content_hash
    )


def chunked_chroma_cens(
    y: np.ndarray, sr: int, hop: int, chunk_seconds: float = 60.0, context_seconds: float = 6.0
) -> np.ndarray:
    """librosa.feature.chroma_cens(y) (12, frames), computed on overlapping pieces of a long song.

    The CQT's longest filter (~1 s at C1) and CENS's 41-frame smoothing reach a few seconds, so
    each piece carries ``context_seconds`` of extra audio on both sides that is cut off again.
    """
    import librosa

    total = 1 + len(y) // hop
    step = max(1, int(chunk_seconds * sr / hop))
    ctx = int(context_seconds * sr / hop)
    if total <= step + 2 * ctx:
        return librosa.feature.chroma_cens(y=y, sr=sr, hop_length=hop, n_chroma=12)
    out = np.empty((12, total), np.float32)
    for k0 in range(0, total, step):
        k1 = min(total, k0 + step)
        a, b = max(0, k0 - ctx), min(total, k1 + ctx)  # frames computed for this piece
        piece = y[a * hop : min(len(y), b * hop)]
        c = librosa.feature.chroma_cens(y=piece, sr=sr, hop_length=hop, n_chroma=12)
        out[:, k0:k1] = c[:, k0 - a : k1 - a]
    return out


def with_beat_channel(feats: MusicFeatures, music: Music) -> MusicFeatures:
    return MusicFeatures(
        np.concatenate([feats.features, beat_onehot(music)], axis=1),
        feats.kind,
        feats.fps,
        feats.columns + (BEAT_COLUMN,),
        feats.source_hash,
    )


def feature_params(music: Music, mode: str, **options) -> dict:
    """Everything that changes the features (the cache key)."""
    params = {
        "content": music.content_hash,
        "mode": mode,
        "fps": music.fps,
        "n": music.n_frames,
        "sr": music.sample_rate,
    }
    if mode == "librosa":
        import librosa

        params.update(version=LIBROSA_VERSION, librosa=librosa.__version__)
    params.update(options)
    return params


def encode_music(
    music: Music,
    mode: Mode = "librosa",
    beat_channel: bool = False,
    use_cache: bool = True,
    cache: FeatureCache | None = None,
    progress: Progress | None = None,
    **jukebox_options,
) -> MusicFeatures:
    """Per-frame features for ``music`` (N rows); cached on disk when ``use_cache``.

    ``jukebox_options`` go to :func:`.jukebox.jukebox_features` (window/overlap seconds,
    resample method, device, weights dir). The beat channel is appended after the cache, so one
    cached Jukebox run serves both settings.
    """
    if mode not in MODES:
        raise InputError(f"unknown feature mode {mode!r}. Use one of {', '.join(MODES)}")
    if music.n_frames < 1:
        raise InputError(f"{music.source}: the music is shorter than one video frame. Use a longer excerpt")
    if mode == "jukebox":
        from . import jukebox

        opts = jukebox.normalise_options(**jukebox_options)
        params = feature_params(
            music, mode, adapter=jukebox.ADAPTER_VERSION, **{k: v for k, v in opts.items() if k in jukebox.KEY_OPTIONS}
        )
    else:
        if jukebox_options:
            log.debug("librosa mode ignores Jukebox options %s", sorted(jukebox_options))
        params = feature_params(music, mode)
    store = cache if cache is not None else FeatureCache()
    key = cache_key(params)
    feats = store.load(key) if use_cache else None
    if feats is not None and feats.features.shape[0] == music.n_frames:
        log.info("STM2PE: music features from cache %s", store.path(key))
    else:
        if mode == "jukebox":
            feats = jukebox.jukebox_features(music, progress=progress, **opts)
        else:
            feats = librosa_features(music)
        if use_cache:
            store.save(key, feats)
    return with_beat_channel(feats, music) if beat_channel else feats
