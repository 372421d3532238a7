"""TEST STAND-IN for jukemirlib (never used outside the tests).

Mirrors what stm2pe_core.audio.jukebox relies on in the real package (rodrigo-castellon/jukemirlib):
``extract``'s signature, the 44.1 kHz input / 128-sample hop (344.53125 tokens per second), the
8192-token cut, the module globals ``lib.VQVAE`` / ``lib.TOP_PRIOR`` that ``extract`` checks
(and the default-cache ``setup_models()`` it falls back to, which here raises instead of
downloading), the batch-size-bound ``x_cond`` cache, ``DEVICE`` / ``CACHE_DIR`` and librosa FFT
downsampling for ``downsample_target_rate``.

Instead of Jukebox activations it returns (n_tokens, 4800) rows whose first columns encode the
input, so tests can check windowing, joining and resampling:

* col 0: instantaneous frequency (Hz) of the window's audio averaged over each token
  (a chirp therefore encodes absolute time);
* col 1: token index inside the window;
* col 2: peak |x| of the window's audio (1.0 when the caller peak-normalised it);
* col 3: number of samples in the window.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np

JUKEBOX_SAMPLE_RATE = 44100
T = 8192
HOP = 128
TOKEN_RATE = JUKEBOX_SAMPLE_RATE / HOP
WIDTH = 4800
WEIGHT_FILES = ("vqvae.pth.tar", "prior_level_2.pth.tar")

DEVICE = "cpu"
CACHE_DIR = os.path.expanduser("~/.cache/jukemirlib")

# what the real package keeps in jukemirlib.lib
lib = types.SimpleNamespace(VQVAE=None, TOP_PRIOR=None, x_cond=None, y_cond=None)
constants = types.SimpleNamespace(DEVICE=DEVICE, CACHE_DIR=CACHE_DIR, JUKEBOX_SAMPLE_RATE=JUKEBOX_SAMPLE_RATE, T=T)

calls: list[dict] = []  # every extract() call: audio length/peak/dtype/kwargs
setup_calls: list[dict] = []


def reset() -> None:
    lib.VQVAE = lib.TOP_PRIOR = lib.x_cond = lib.y_cond = None
    calls.clear()
    setup_calls.clear()


def setup_models(cache_dir=None, remote_prefix=None, device=None, verbose=True):
    cache_dir = cache_dir or CACHE_DIR
    setup_calls.append({"cache_dir": cache_dir, "device": device})
    missing = [f for f in WEIGHT_FILES if not os.path.exists(os.path.join(cache_dir, f))]
    if missing:
        raise RuntimeError(f"stand-in: the real jukemirlib would now download {missing} into {cache_dir}")
    return ("vqvae", cache_dir), ("top_prior", cache_dir)


def load_audio(fpath, offset=0.0, duration=None):
    import librosa

    audio, _ = librosa.load(fpath, sr=JUKEBOX_SAMPLE_RATE, offset=offset, duration=duration, mono=True)
    peak = np.abs(audio).max()
    return audio / peak if peak > 0 else audio


def _features(audio: np.ndarray) -> np.ndarray:
    from scipy.signal import hilbert

    x = np.asarray(audio, dtype=np.float64)[: JUKEBOX_SAMPLE_RATE * 25]
    n_tok = min(len(x) // HOP, T)
    analytic = hilbert(x)
    phase = np.unwrap(np.angle(analytic))
    inst = np.empty_like(x)
    inst[1:] = np.diff(phase) * JUKEBOX_SAMPLE_RATE / (2 * np.pi)
    inst[0] = inst[1]
    reps = np.zeros((n_tok, WIDTH), np.float32)
    reps[:, 0] = inst[: n_tok * HOP].reshape(n_tok, HOP).mean(axis=1)
    reps[:, 1] = np.arange(n_tok)
    reps[:, 2] = np.abs(x).max() if len(x) else 0.0
    reps[:, 3] = len(x)
    return reps


def extract(
    audio=None,
    fpath=None,
    meanpool=False,
    layers=None,
    offset=0.0,
    duration=None,
    downsample_target_rate=None,
    downsample_method=None,
    fp16=False,
    fp16_out=False,
    force_empty_cache=True,
):
    if lib.VQVAE is None and lib.TOP_PRIOR is None:
        lib.VQVAE, lib.TOP_PRIOR = setup_models()  # the real one: default cache dir + download
    if layers is None:
        layers = [36]
    if audio is None:
        audio = load_audio(fpath, offset=offset, duration=duration)
    bsize = len(audio) if isinstance(audio, list) else 1
    if lib.x_cond is None:
        lib.x_cond = np.zeros((bsize, 1, 1))
        lib.y_cond = np.zeros((bsize, 1, 1))
    elif lib.x_cond.shape[0] != bsize:
        raise AssertionError("stand-in: x_cond was cached for another batch size (the real jukemirlib asserts here)")
    calls.append(
        {
            "n": len(audio) if bsize == 1 else None,
            "ndim": np.ndim(audio),
            "dtype": str(np.asarray(audio).dtype),
            "peak": float(np.abs(np.asarray(audio)).max()),
            "layers": list(layers),
            "rate": downsample_target_rate,
            "device": DEVICE,
        }
    )
    reps = _features(audio)
    out = {}
    for layer in layers:
        r = reps
        if downsample_target_rate is not None:
            import librosa

            r = librosa.resample(
                np.asfortranarray(r.T), orig_sr=TOKEN_RATE, target_sr=downsample_target_rate, res_type="fft"
            ).T
        if meanpool:
            r = r.mean(axis=0)
        out[layer] = np.asarray(r, dtype=np.float16 if fp16_out else np.float32)
    return out


def install(monkeypatch) -> types.ModuleType:
    """Register this module as ``jukemirlib`` for one test."""
    mod = sys.modules[__name__]
    reset()
    monkeypatch.setitem(sys.modules, "jukemirlib", mod)
    return mod
