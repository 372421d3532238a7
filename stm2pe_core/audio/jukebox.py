"""Jukebox features through jukemirlib, the way EDGE computes them (5B prior, layer 66, 4800-d).

jukemirlib is optional (installed from its repository, not from PyPI) and is imported only
here. Its pitfalls, handled below:

* audio past 8192 tokens (~23.78 s) is silently cut -> the song is encoded in windows planned
  by :func:`stm2pe_core.windows.plan_windows` (each window encoded independently and
  peak-normalised like ``jukemirlib.load_audio``) and joined with a linear cross-fade;
* ``extract`` only looks at the module globals ``jukemirlib.lib.VQVAE/TOP_PRIOR``; when they are
  empty it calls ``setup_models()`` with the *default* cache dir (and downloads ~10 GB) -> we
  check the weight files first and fill those globals ourselves from the folder we found;
* ``x_cond/y_cond`` are cached with the first call's batch size -> we always call with one
  1-D array (batch 1) and reset them if something else left another batch size behind;
* input tensors go to the package-level ``jukemirlib.DEVICE`` -> we set it.

Token rate: VQ-VAE top level hop 128 at 44.1 kHz = 344.53125 tokens/s. Rows are resampled to
the video fps either by averaging the tokens inside each frame's interval centred on the frame
time (``box``, default: aligned with the librosa features, no ringing) or by jukemirlib's own FFT
resampling (``fft``: EDGE's ``downsample_target_rate`` path, frame j = window start + j / fps).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingModelError, WeightsError
from ..progress import Progress, track
from ..types import Music, MusicFeatures
from ..windows import fuse_windows, plan_windows

log = logging.getLogger(__name__)

JUKEBOX_SR = 44100
HOP = 128
TOKEN_RATE = JUKEBOX_SR / HOP  # 344.53125 tokens per second
MAX_TOKENS = 8192
MAX_SECONDS = MAX_TOKENS / TOKEN_RATE  # 23.78 s: jukemirlib cuts longer input
LAYER = 66  # EDGE's layer
DIM = 4800  # width of the 5B prior
WEIGHT_FILES = ("vqvae.pth.tar", "prior_level_2.pth.tar")
RESAMPLE_METHODS = ("box", "fft")
KEY_OPTIONS = ("layer", "window_seconds", "overlap_seconds", "resample")  # options that change the features
JUKEMIRLIB_MODULE = "jukemirlib"
ADAPTER_VERSION = "1"  # bump when windowing/resampling changes results (part of the cache key)

INSTALL_HINT = (
    "Install it with `pip install git+https://github.com/rodrigo-castellon/jukemirlib.git` "
    "(pulls the jukebox fork; needs a GPU with >= 13 GB), put vqvae.pth.tar and prior_level_2.pth.tar "
    "from https://openaipublic.azureedge.net/jukebox/models/5b/ into models/jukebox/ (or ~/.cache/jukemirlib), "
    "or choose mode 'librosa', which needs nothing extra"
)


def normalise_options(
    window_seconds: float = 5.0,
    overlap_seconds: float = 1.0,
    resample: str = "box",
    device: str = "auto",
    weights_dir: str | Path | None = None,
    models_root: str | Path | None = None,
    layer: int = LAYER,
) -> dict:
    if not 0.5 <= window_seconds <= MAX_SECONDS - 0.25:
        raise InputError(
            f"Jukebox window of {window_seconds} s is out of range. Use 0.5 to {MAX_SECONDS - 0.25:.1f} s (jukemirlib cuts input after {MAX_SECONDS:.2f} s)"
        )
    if not 0 <= overlap_seconds < window_seconds:
        raise InputError(
            f"Jukebox window overlap {overlap_seconds} s must be >= 0 and shorter than the window ({window_seconds} s)"
        )
    if resample not in RESAMPLE_METHODS:
        raise InputError(f"unknown Jukebox resample method {resample!r}. Use one of {', '.join(RESAMPLE_METHODS)}")
    if not 1 <= int(layer) <= 72:
        raise InputError(f"Jukebox layer {layer} does not exist. The 5B prior has layers 1..72 (EDGE uses 66)")
    return {
        "window_seconds": float(window_seconds),
        "overlap_seconds": float(overlap_seconds),
        "resample": resample,
        "device": device,
        "weights_dir": None if weights_dir in (None, "") else str(weights_dir),
        "models_root": None if models_root in (None, "") else str(models_root),
        "layer": int(layer),
    }


def weight_dirs(weights_dir: str | Path | None = None, models_root: str | Path | None = None) -> list[Path]:
    """Folders searched for the Jukebox weights, in order."""
    dirs: list[Path] = []
    if weights_dir:
        dirs.append(Path(weights_dir).expanduser())
    if models_root:
        dirs.append(Path(models_root) / "jukebox")
    if os.environ.get("STM2PE_MODELS"):
        dirs.append(Path(os.environ["STM2PE_MODELS"]) / "jukebox")
    dirs.append(Path.home() / ".cache" / "jukemirlib")  # jukemirlib's own default
    return list(dict.fromkeys(dirs))


def find_weights(weights_dir: str | Path | None = None, models_root: str | Path | None = None) -> Path:
    searched = weight_dirs(weights_dir, models_root)
    for d in searched:
        if all((d / f).is_file() and (d / f).stat().st_size > 0 for f in WEIGHT_FILES):
            return d
    raise MissingModelError(
        f"Jukebox weights not found: need {' and '.join(WEIGHT_FILES)} in one of {', '.join(str(d) for d in searched)}. {INSTALL_HINT}"
    )


def import_jukemirlib():
    try:
        return importlib.import_module(JUKEMIRLIB_MODULE)
    except ImportError as exc:
        raise MissingModelError(
            f"Jukebox mode needs the optional package jukemirlib, which is not installed ({exc}). {INSTALL_HINT}"
        ) from exc


def _resolve_device(device: str) -> str:
    if device and device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare_jukemirlib(jm, weights: Path, device: str):
    """Point jukemirlib at ``weights`` and ``device`` and load the models once (module globals)."""
    lib = getattr(jm, "lib", jm)
    for mod in (jm, getattr(jm, "constants", None)):
        if mod is not None:
            mod.DEVICE = device
            mod.CACHE_DIR = str(weights)
    if getattr(lib, "VQVAE", None) is None or getattr(lib, "TOP_PRIOR", None) is None:
        setup = jm.setup_models
        accepted = inspect.signature(setup).parameters
        kwargs = {
            k: v for k, v in {"cache_dir": str(weights), "device": device, "verbose": False}.items() if k in accepted
        }
        log.info(
            "STM2PE: loading Jukebox (5B prior + VQ-VAE) from %s on %s; this takes about a minute", weights, device
        )
        try:
            vqvae, prior = setup(**kwargs)
        except (ImportError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - report any loader failure with the folder and the fix
            raise WeightsError(
                f"jukemirlib could not load the Jukebox weights from {weights} ({type(exc).__name__}: {exc}). "
                "Check that vqvae.pth.tar and prior_level_2.pth.tar are complete downloads (about 10 GB together) "
                "and that jukemirlib's own requirements are installed; or use mode 'librosa'"
            ) from exc
        lib.VQVAE, lib.TOP_PRIOR = vqvae, prior
        if lib is not jm:
            jm.VQVAE, jm.TOP_PRIOR = vqvae, prior
    x_cond = getattr(lib, "x_cond", None)
    if x_cond is not None and getattr(x_cond, "shape", (1,))[0] != 1:
        lib.x_cond = lib.y_cond = None  # cached for another batch size: would trip jukemirlib's assert
    return lib


def box_resample(
    tokens: np.ndarray, t0: float, frame_times: np.ndarray, fps: float, rate: float = TOKEN_RATE
) -> np.ndarray:
    """Mean of the piecewise-constant token signal over [t - 0.5/fps, t + 0.5/fps) for each frame.

    Token i covers [t0 + i / rate, t0 + (i + 1) / rate); intervals are clipped to the tokens
    available. Exact (integrates partial tokens), so a token signal linear in time comes back
    as its value at the frame time.
    """
    x = np.asarray(tokens, dtype=np.float64)
    n = x.shape[0]
    cum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)], axis=0) / rate
    end = t0 + n / rate

    def integral(t: np.ndarray) -> np.ndarray:
        u = np.clip((t - t0) * rate, 0, n)
        k = np.minimum(np.floor(u).astype(np.int64), n - 1)
        return cum[k] + (u - k)[:, None] * x[k] / rate

    lo = np.clip(frame_times - 0.5 / fps, t0, end)
    hi = np.clip(frame_times + 0.5 / fps, t0, end)
    width = hi - lo
    out = np.empty((len(frame_times), x.shape[1]))
    ok = width > 1e-9
    out[ok] = (integral(hi[ok]) - integral(lo[ok])) / width[ok, None]
    if (~ok).any():  # frame entirely outside the tokens: nearest token
        k = np.clip(np.round((frame_times[~ok] - t0) * rate - 0.5).astype(np.int64), 0, n - 1)
        out[~ok] = x[k]
    return out.astype(np.float32)


def _fit_rows(rows: np.ndarray, n: int) -> np.ndarray:
    if len(rows) >= n:
        return rows[:n]
    return np.concatenate([rows, np.repeat(rows[-1:], n - len(rows), axis=0)], axis=0)


def extract_window(jm, audio: np.ndarray, layer: int, fps: float | None) -> np.ndarray:
    """One jukemirlib call on one peak-normalised mono window (batch 1)."""
    x = np.ascontiguousarray(audio, dtype=np.float32)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0:
        x = x / peak  # like jukemirlib.load_audio, per window
    kwargs = {"audio": x, "layers": [layer]}
    if fps is not None:
        kwargs["downsample_target_rate"] = fps
    reps = np.asarray(jm.extract(**kwargs)[layer], dtype=np.float32)
    return reps[None] if reps.ndim == 1 else reps


def jukebox_features(
    music: Music,
    window_seconds: float = 5.0,
    overlap_seconds: float = 1.0,
    resample: str = "box",
    device: str = "auto",
    weights_dir: str | Path | None = None,
    models_root: str | Path | None = None,
    layer: int = LAYER,
    progress: Progress | None = None,
) -> MusicFeatures:
    """Layer-``layer`` Jukebox activations, one row per video frame (N x 4800)."""
    from .load import music_audio

    opts = normalise_options(window_seconds, overlap_seconds, resample, device, weights_dir, models_root, layer)
    jm = import_jukemirlib()
    weights = find_weights(opts["weights_dir"], opts["models_root"])
    dev = _resolve_device(device)
    if dev == "cpu":
        log.warning("STM2PE: Jukebox on the CPU takes minutes per 5 s window; a GPU with >= 13 GB is recommended")
    prepare_jukemirlib(jm, weights, dev)

    fps, n = music.fps, music.n_frames
    size = max(1, int(round(opts["window_seconds"] * fps)))
    overlap = min(int(round(opts["overlap_seconds"] * fps)), size - 1)
    windows = plan_windows(n, size, overlap)
    audio = music_audio(music, JUKEBOX_SR)
    dur = len(audio) / JUKEBOX_SR
    outs = []
    for w in track(windows, len(windows), progress):
        if resample == "box":  # audio covers every frame's centred interval
            a0, a1 = max(0.0, (w.start - 0.5) / fps), min(dur, (w.stop - 0.5) / fps)
        else:  # fft: output row k is at a0 + k / fps, so start exactly on frame w.start
            a0, a1 = w.start / fps, min(dur, w.stop / fps)
        i0, i1 = int(round(a0 * JUKEBOX_SR)), int(round(a1 * JUKEBOX_SR))
        seg = audio[i0:i1]
        if len(seg) < HOP:  # shorter than one token: pad with silence
            seg = np.pad(seg, (0, HOP - len(seg)))
        if len(seg) > MAX_TOKENS * HOP:
            raise AssertionError("window longer than jukemirlib's context; normalise_options should prevent this")
        if resample == "box":
            tokens = extract_window(jm, seg, opts["layer"], None)
            rows = box_resample(tokens, i0 / JUKEBOX_SR, np.arange(w.start, w.stop) / fps, fps)
        else:
            rows = _fit_rows(extract_window(jm, seg, opts["layer"], fps), w.length)
        outs.append(rows)
    feats = fuse_windows(windows, outs, n, mode="linear")
    d = feats.shape[1]
    return MusicFeatures(
        np.ascontiguousarray(feats, dtype=np.float32),
        "jukebox",
        fps,
        ((f"jukebox_layer{opts['layer']}", d),),
        music.content_hash,
    )
