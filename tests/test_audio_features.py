"""librosa features (EDGE's 35-d baseline at the video fps), beat channel, disk cache, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from audio_testutil import click_track, write_sf

from stm2pe_core.audio import features as F
from stm2pe_core.audio.cache import FeatureCache
from stm2pe_core.audio.load import load_music
from stm2pe_core.errors import InputError
from stm2pe_core.types import frame_count


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    return FeatureCache()


@pytest.fixture(scope="module")
def click_music(tmp_path_factory):
    y, truth = click_track(120, seconds=10.0)
    path = write_sf(tmp_path_factory.mktemp("m") / "c.wav", y)
    return load_music(path).music, truth, path


@pytest.mark.parametrize("fps,seconds", [(15, 10.0), (30, 4.37), (24, 3.3), (25, 5.0)])
def test_librosa_rows_columns_and_alignment(tmp_path, cache, fps, seconds):
    y, truth = click_track(120, seconds=seconds)
    music = load_music(write_sf(tmp_path / "c.wav", y), fps=fps).music
    feats = F.encode_music(music, "librosa", use_cache=False)
    n = frame_count(seconds, fps)
    assert feats.features.shape == (n, 35) and feats.features.dtype == np.float32
    assert feats.columns == (("onset_env", 1), ("mfcc", 20), ("chroma_cens", 12), ("onset_peaks", 1), ("beats", 1))
    assert sum(w for _, w in feats.columns) == feats.dim == 35
    assert feats.kind == "librosa" and feats.fps == fps and feats.source_hash == music.content_hash
    assert np.isfinite(feats.features).all()
    # onset envelope column peaks at the click frames; onset peaks and beats are one-hot there
    env = feats.features[:, feats.column_slice("onset_env")][:, 0]
    click_frames = np.round(truth * fps).astype(int)
    click_frames = click_frames[click_frames < n - 1]
    for f in click_frames:
        lo = max(0, f - 3)
        assert abs(lo + int(np.argmax(env[lo : f + 4])) - f) <= 1
    beats = feats.features[:, feats.column_slice("beats")][:, 0]
    assert set(np.unique(beats)) <= {0.0, 1.0}
    np.testing.assert_array_equal(np.flatnonzero(beats), np.unique(music.beat_frames))
    hit = np.flatnonzero(feats.features[:, feats.column_slice("onset_peaks")][:, 0])
    assert all(np.min(np.abs(hit - f)) <= 1 for f in click_frames)
    chroma = feats.features[:, feats.column_slice("chroma_cens")]
    np.testing.assert_allclose(np.linalg.norm(chroma, axis=1), 1.0, atol=1e-3)  # CENS is L2-normalised


def test_beat_channel_is_appended(cache, click_music):
    music, truth, _ = click_music
    base = F.encode_music(music, "librosa", beat_channel=False)
    feats = F.encode_music(music, "librosa", beat_channel=True)
    assert feats.features.shape == (music.n_frames, 36)
    assert feats.columns[-1] == ("beat_channel", 1)
    np.testing.assert_array_equal(feats.features[:, :35], base.features)
    col = feats.features[:, feats.column_slice("beat_channel")][:, 0]
    assert col.sum() == len(np.unique(music.beat_frames)) >= len(truth) - 1
    assert np.all(
        np.abs(np.flatnonzero(col) / music.fps - music.beat_times[: int(col.sum())]) <= 0.5 / music.fps + 1e-9
    )


def test_cache_miss_then_bit_identical_hit(cache, click_music, monkeypatch):
    music = click_music[0]
    assert cache.info().entries == 0
    first = F.encode_music(music, "librosa")
    assert cache.info().entries == 1
    assert not [p for p in cache.folder.iterdir() if p.name.endswith(".tmp")]  # atomic write, nothing left over

    def boom(_music):
        raise AssertionError("cache hit expected, features were recomputed")

    monkeypatch.setattr(F, "librosa_features", boom)
    second = F.encode_music(music, "librosa")
    assert second.features.tobytes() == first.features.tobytes()
    assert second.columns == first.columns and second.kind == first.kind and second.fps == first.fps
    # use_cache=False must compute (and so hits the patched function)
    with pytest.raises(AssertionError, match="recomputed"):
        F.encode_music(music, "librosa", use_cache=False)


def test_cache_key_covers_content_and_settings(cache, click_music, tmp_path):
    music, _, path = click_music
    F.encode_music(music, "librosa")
    F.encode_music(music, "librosa", beat_channel=True)  # beat channel is added after the cache
    assert cache.info().entries == 1
    F.encode_music(load_music(path, fps=30).music, "librosa")
    F.encode_music(load_music(path, offset=1.0).music, "librosa")
    assert cache.info().entries == 3
    assert F.cache_key(F.feature_params(music, "jukebox", layer=66)) != F.cache_key(
        F.feature_params(music, "jukebox", layer=36)
    )


def test_cache_clear_and_damaged_entry(cache, click_music):
    music = click_music[0]
    ref = F.encode_music(music, "librosa")
    entry = next(cache.folder.glob("*.npz"))
    entry.write_bytes(b"garbage")  # damaged entry: recomputed and rewritten
    again = F.encode_music(music, "librosa")
    np.testing.assert_array_equal(again.features, ref.features)
    assert cache.info().entries == 1 and cache.info().bytes > 100
    assert cache.clear() == 1 and cache.info().entries == 0


def test_cache_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "elsewhere"))
    assert FeatureCache().folder == tmp_path / "elsewhere" / "features"
    monkeypatch.delenv("STM2PE_CACHE")
    assert str(FeatureCache().folder).endswith(".cache/stm2pe/features")


def test_unknown_mode(click_music):
    with pytest.raises(InputError, match="unknown feature mode"):
        F.encode_music(click_music[0], "mel")


def test_cli_features_and_cache(cache, click_music, tmp_path, capsys):
    from stm2pe_core.cli import main

    path = click_music[2]
    out = tmp_path / "f.npz"
    assert main(["features", str(path), "--save", str(out), "--beat-channel"]) == 0
    text = capsys.readouterr().out
    assert "N = 150 at 15 fps" in text and "tempo     120.0 BPM" in text and "beats     " in text
    with np.load(out, allow_pickle=False) as z:
        assert z["features"].shape == (150, 36)
        assert float(z["tempo"]) == pytest.approx(120, rel=0.02)
        assert len(z["beat_times"]) >= 19
    assert main(["cache", "info"]) == 0
    assert "1 cached feature file(s)" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 1" in capsys.readouterr().out
    # a bad file is a clean error (exit 2, message, no traceback)
    assert main(["features", str(tmp_path / "missing.ogg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: missing.ogg: file not found") and "Traceback" not in err
