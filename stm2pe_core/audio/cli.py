"""``python -m stm2pe_core features SONG`` and ``python -m stm2pe_core cache info|clear``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..types import DEFAULT_FPS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="analyse a music file: frames, tempo, beats; optionally save features")
    p.add_argument("music", type=Path, help="wav / flac / ogg / mp3 / m4a file")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"video frame rate (default {DEFAULT_FPS:g})")
    p.add_argument("--offset", type=float, default=0.0, help="start offset in seconds")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to use (0 = to the end)")
    p.add_argument("--bpm-hint", type=float, default=0.0, help="tempo hint for the beat tracker (0 = automatic)")
    p.add_argument(
        "--mode", choices=("librosa", "jukebox"), default="librosa", help="feature extractor (default librosa)"
    )
    p.add_argument("--beat-channel", action="store_true", help="append a one-hot beat column")
    p.add_argument("--window", type=float, default=5.0, help="Jukebox window seconds (<= 23.5)")
    p.add_argument("--overlap", type=float, default=1.0, help="Jukebox window overlap seconds")
    p.add_argument(
        "--jukebox-weights", type=Path, default=None, help="folder with vqvae.pth.tar and prior_level_2.pth.tar"
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    p.add_argument("--save", type=Path, default=None, help="write features + rhythm analysis to this .npz")
    p.set_defaults(func=_features)

    c = sub.add_parser("cache", help="inspect or clear the music-feature cache ($STM2PE_CACHE or ~/.cache/stm2pe)")
    c.add_argument("action", choices=("info", "clear"))
    c.set_defaults(func=_cache)


def _features(args: argparse.Namespace) -> int:
    from ..progress import tqdm_progress
    from .features import encode_music
    from .load import load_music

    music = load_music(args.music, args.offset, args.duration or None, args.fps, args.bpm_hint).music
    opts = {}
    if args.mode == "jukebox":
        opts = {
            "window_seconds": args.window,
            "overlap_seconds": args.overlap,
            "weights_dir": args.jukebox_weights,
            "models_root": os.environ.get("STM2PE_MODELS"),
        }
    feats = encode_music(
        music,
        args.mode,
        args.beat_channel,
        use_cache=not args.no_cache,
        progress=tqdm_progress("jukebox windows"),
        **opts,
    )
    print(f"file      {args.music}")
    print(f"duration  {music.duration:.2f} s from offset {music.offset:.2f} s")
    print(f"frames    N = {music.n_frames} at {music.fps:g} fps")
    print(f"tempo     {music.tempo:.1f} BPM")
    print(
        f"beats     {len(music.beat_times)}: {np.array2string(music.beat_times[:16], precision=2, separator=', ')}{' ...' if len(music.beat_times) > 16 else ''}"
    )
    print(
        f"downbeats {len(music.downbeat_times)}: {np.array2string(music.downbeat_times[:8], precision=2, separator=', ')}{' ...' if len(music.downbeat_times) > 8 else ''}"
    )
    print(f"sections  {np.array2string(music.section_times, precision=2, separator=', ')}")
    print(
        f"features  {feats.kind} {feats.features.shape[0]} x {feats.dim}: {', '.join(f'{n}[{w}]' for n, w in feats.columns)}"
    )
    if args.save:
        save_npz(args.save, music, feats)
        print(f"saved     {args.save}")
    return 0


def save_npz(path: Path, music, feats) -> None:
    """Features + rhythm analysis as a plain .npz (no pickles), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "kind": feats.kind,
        "fps": feats.fps,
        "columns": [list(c) for c in feats.columns],
        "source": music.source,
        "offset": music.offset,
        "source_hash": feats.source_hash,
    }
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            features=feats.features,
            beat_times=music.beat_times,
            downbeat_times=music.downbeat_times,
            section_times=music.section_times,
            onset_envelope=music.onset_envelope,
            tempo=np.float64(music.tempo),
            fps=np.float64(music.fps),
            meta=np.array(json.dumps(meta)),
        )


def _cache(args: argparse.Namespace) -> int:
    from .cache import FeatureCache

    cache = FeatureCache()
    if args.action == "clear":
        n = cache.clear()
        print(f"removed {n} cached feature file(s) from {cache.folder}")
    else:
        print(cache.info())
    return 0
