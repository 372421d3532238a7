"""Jukebox mode through a test stand-in for jukemirlib (tests/jukemirlib_standin.py).

The stand-in has jukemirlib's real ``extract`` signature, token rate (344.53125 Hz) and
8192-token cut; its column 0 is the instantaneous frequency of the window's audio, so with a
chirp as input it encodes absolute time and the joined, resampled rows can be checked for
alignment with the video frames.
"""

from __future__ import annotations

import importlib.util

import jukemirlib_standin as standin
import numpy as np
import pytest
from audio_testutil import chirp, write_sf

from stm2pe_core.audio import features as F
from stm2pe_core.audio import jukebox as J
from stm2pe_core.audio.load import load_music, music_from_waveform
from stm2pe_core.errors import InputError, MissingModelError, WeightsError
from stm2pe_core.windows import plan_windows

F0, SLOPE = 200.0, 50.0  # chirp: f(t) = 200 + 50 t Hz


@pytest.fixture
def weights(tmp_path):
    d = tmp_path / "jukebox"
    d.mkdir()
    for f in J.WEIGHT_FILES:
        (d / f).write_bytes(b"x")
    return d


@pytest.fixture
def jm(monkeypatch, tmp_path):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    return standin.install(monkeypatch)


@pytest.fixture(scope="module")
def chirp_file(tmp_path_factory):
    return write_sf(tmp_path_factory.mktemp("j") / "chirp.wav", chirp(12.0, F0, SLOPE), subtype="FLOAT")


def test_token_constants_match_jukemirlib():
    assert J.TOKEN_RATE == 344.53125 == standin.TOKEN_RATE
    assert J.MAX_SECONDS == pytest.approx(23.78, abs=0.01)
    assert (J.LAYER, J.DIM) == (66, 4800)


@pytest.mark.parametrize("window,overlap,fps", [(5.0, 1.0, 15), (3.0, 0.0, 15), (5.0, 2.5, 30)])
def test_windows_join_and_align_to_frames(jm, weights, chirp_file, window, overlap, fps):
    music = load_music(chirp_file, fps=fps).music
    feats = F.encode_music(
        music, "jukebox", use_cache=False, window_seconds=window, overlap_seconds=overlap, weights_dir=weights
    )
    n = music.n_frames
    assert (
        feats.features.shape == (n, 4800) and feats.kind == "jukebox" and feats.columns == (("jukebox_layer66", 4800),)
    )
    # one independent batch-1 call per planned window
    wins = plan_windows(n, int(round(window * fps)), int(round(overlap * fps)))
    assert len(jm.calls) == len(wins) >= 2
    for call in jm.calls:
        assert call["ndim"] == 1 and call["dtype"] == "float32" and call["layers"] == [66] and call["rate"] is None
        assert call["peak"] == pytest.approx(1.0, abs=1e-6)  # peak-normalised per window
        assert call["n"] / 44100 <= window + 1.0 / fps
    # alignment: row j describes time j / fps (chirp frequency at that time), across every join
    t = np.arange(n) / fps
    freq = feats.features[:, 0]
    inner = slice(1, n - 1)  # first/last frame only see half a frame of audio
    err = np.abs(freq[inner] - (F0 + SLOPE * t[inner]))
    assert err.max() < 1.0  # 1 Hz = 20 ms (the stand-in's Hilbert estimate wobbles at window edges)
    assert np.median(err) < 0.1  # 2 ms: no systematic shift anywhere
    assert feats.features[:, 2] == pytest.approx(np.ones(n))  # every window peak-normalised


def test_fft_resampling_like_edge(jm, weights, chirp_file):
    music = load_music(chirp_file).music
    feats = F.encode_music(music, "jukebox", use_cache=False, resample="fft", weights_dir=weights)
    assert feats.features.shape == (music.n_frames, 4800)
    assert all(c["rate"] == 15 for c in jm.calls)  # jukemirlib's own downsample_target_rate path
    t = np.arange(music.n_frames) / 15
    err = np.abs(feats.features[:, 0] - (F0 + SLOPE * t))
    assert np.median(err) < 2.0  # FFT resampling rings at the window edges, so only roughly


def test_offset_excerpt_is_aligned_to_its_own_start(jm, weights, chirp_file):
    music = load_music(chirp_file, offset=2.0, duration=7.0).music
    feats = F.encode_music(music, "jukebox", use_cache=False, weights_dir=weights)
    t = np.arange(music.n_frames) / 15
    np.testing.assert_allclose(feats.features[1:-1, 0], F0 + SLOPE * (2.0 + t[1:-1]), atol=0.5)


def test_audio_input_uses_native_rate_audio(jm, weights):
    sr = 22050
    y = chirp(6.0, F0, SLOPE, sr=sr)
    music = music_from_waveform(np.stack([y, y])[None], sr).music
    feats = F.encode_music(music, "jukebox", use_cache=False, weights_dir=weights)
    t = np.arange(music.n_frames) / 15
    np.testing.assert_allclose(feats.features[1:-1, 0], F0 + SLOPE * t[1:-1], atol=0.5)


def test_module_globals_cache_dir_device_and_batch(jm, weights, chirp_file):
    music = load_music(chirp_file, duration=4.0).music
    jm.lib.x_cond = np.zeros((8, 1, 1))  # left behind by a batched call elsewhere
    F.encode_music(music, "jukebox", use_cache=False, weights_dir=weights, device="cpu")
    assert jm.setup_calls == [{"cache_dir": str(weights), "device": "cpu"}]
    assert jm.lib.VQVAE is not None and jm.lib.TOP_PRIOR is not None
    assert jm.DEVICE == "cpu" and jm.CACHE_DIR == str(weights)
    F.encode_music(music, "jukebox", use_cache=False, weights_dir=weights, device="cpu")
    assert len(jm.setup_calls) == 1  # loaded once, then reused


def test_jukebox_cache_hit_skips_the_model(jm, weights, chirp_file):
    music = load_music(chirp_file, duration=6.0).music
    first = F.encode_music(music, "jukebox", weights_dir=weights)
    calls = len(jm.calls)
    second = F.encode_music(music, "jukebox", weights_dir=weights, beat_channel=True)
    assert len(jm.calls) == calls
    assert second.features[:, :4800].tobytes() == first.features.tobytes()
    assert second.columns[-1] == ("beat_channel", 1)
    F.encode_music(music, "jukebox", weights_dir=weights, window_seconds=4.0)  # other windows: new entry
    assert len(jm.calls) > calls


def test_missing_package_points_to_librosa(monkeypatch, chirp_file, tmp_path):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(J, "JUKEMIRLIB_MODULE", "jukemirlib_not_installed_here")
    music = load_music(chirp_file, duration=3.0).music
    with pytest.raises(MissingModelError) as info:
        F.encode_music(music, "jukebox")
    msg = str(info.value)
    assert (
        "jukemirlib" in msg
        and "pip install git+https://github.com/rodrigo-castellon/jukemirlib.git" in msg
        and "'librosa'" in msg
    )


def test_missing_weights_are_named_and_never_downloaded(jm, chirp_file, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    music = load_music(chirp_file, duration=3.0).music
    with pytest.raises(MissingModelError) as info:
        F.encode_music(music, "jukebox", models_root=tmp_path / "models")
    msg = str(info.value)
    assert "vqvae.pth.tar" in msg and "prior_level_2.pth.tar" in msg and str(tmp_path / "models" / "jukebox") in msg
    assert "'librosa'" in msg and jm.setup_calls == []


def test_bad_options(jm, weights, chirp_file):
    music = load_music(chirp_file, duration=3.0).music
    with pytest.raises(InputError, match="jukemirlib cuts input"):
        F.encode_music(music, "jukebox", window_seconds=30.0, weights_dir=weights)
    with pytest.raises(InputError, match="overlap"):
        F.encode_music(music, "jukebox", window_seconds=5.0, overlap_seconds=5.0, weights_dir=weights)
    with pytest.raises(InputError, match="resample"):
        F.encode_music(music, "jukebox", resample="cubic", weights_dir=weights)


def test_box_resample_is_exact_for_linear_signals():
    rate = J.TOKEN_RATE
    tokens = (np.arange(1000) + 0.5)[:, None] / rate * 3.0 + 1.0  # value = 1 + 3 * (token centre time)
    frames = np.arange(2, 40) / 15.0
    rows = J.box_resample(tokens, 0.0, frames, 15.0)
    np.testing.assert_allclose(rows[:, 0], 1 + 3 * frames, atol=1e-5)


def _real_jukebox_available() -> bool:
    if importlib.util.find_spec("jukemirlib") is None:
        return False
    try:
        J.find_weights()
    except MissingModelError:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.skipif(not _real_jukebox_available(), reason="needs jukemirlib, the Jukebox weights and a CUDA GPU")
def test_real_jukebox_features(chirp_file, tmp_path, monkeypatch):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    music = load_music(chirp_file, duration=6.0).music
    feats = F.encode_music(music, "jukebox", use_cache=False)
    assert feats.features.shape == (music.n_frames, 4800)
    assert np.isfinite(feats.features).all() and feats.features.std() > 0


def test_weight_loading_failure_is_explained(jm, weights, chirp_file, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("unexpected EOF, expected 1234 more bytes")

    monkeypatch.setattr(jm, "setup_models", broken)
    music = load_music(chirp_file, duration=3.0).music
    with pytest.raises(WeightsError) as info:
        F.encode_music(music, "jukebox", use_cache=False, weights_dir=weights)
    msg = str(info.value)
    assert str(weights) in msg and "unexpected EOF" in msg and "'librosa'" in msg
