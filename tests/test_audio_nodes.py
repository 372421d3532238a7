"""nodes/music.py without ComfyUI: V1 declarations, Load Music (file + AUDIO input), Jukebox Encode, cache node."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from audio_testutil import SR, click_track, write_sf

ROOT = Path(__file__).resolve().parents[1]
PACK = "stm2pe_pack_audio_test"


def _load_music_nodes():
    """Import the pack the way ComfyUI does (a package named after its folder), without ComfyUI."""
    assert importlib.util.find_spec("folder_paths") is None, "these tests run without ComfyUI"
    if PACK not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACK, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
        )
        mod = importlib.util.module_from_spec(spec)
        sys.modules[PACK] = mod
        spec.loader.exec_module(mod)
    return importlib.import_module(f"{PACK}.nodes.music")


@pytest.fixture
def music_nodes(tmp_path, monkeypatch):
    mod = _load_music_nodes()
    inp = tmp_path / "input"
    inp.mkdir()
    monkeypatch.setattr(mod, "input_directory", lambda: inp)
    monkeypatch.setenv("STM2PE_CACHE", str(tmp_path / "cache"))
    return mod, inp


def test_declarations_are_consistent():
    mod = _load_music_nodes()
    pack = sys.modules[PACK]
    assert set(mod.NODE_CLASS_MAPPINGS) == {
        "STM2PELoadMusic",
        "STM2PEJukeboxEncode",
        "STM2PEClearFeatureCache",
        "STM2PEPreviewMusicFeatures",
    }
    assert set(mod.NODE_DISPLAY_NAME_MAPPINGS) == set(mod.NODE_CLASS_MAPPINGS)
    for node_id, cls in mod.NODE_CLASS_MAPPINGS.items():
        assert pack.NODE_CLASS_MAPPINGS[node_id] is cls  # registered through the pack's __init__
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional", "hidden"}
        assert isinstance(cls.RETURN_TYPES, tuple) and len(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)) == len(
            cls.RETURN_TYPES
        )
        assert callable(getattr(cls, cls.FUNCTION)) and cls.CATEGORY.startswith("STM2PE")
        for t in cls.RETURN_TYPES:
            assert t in ("AUDIO", "IMAGE", "INT", "FLOAT", "STRING") or t.startswith("STM2PE_")
        params = set(__import__("inspect").signature(getattr(cls, cls.FUNCTION)).parameters) - {"self"}
        declared = {k for section in ("required", "optional") for k in spec.get(section, {})}
        assert declared == params, f"{node_id}: inputs {declared} vs method parameters {params}"
    load = mod.STM2PELoadMusic
    assert load.RETURN_TYPES == ("AUDIO", "STM2PE_MUSIC", "INT", "FLOAT")
    assert load.INPUT_TYPES()["required"]["audio"][1]["audio_upload"] is True
    assert load.INPUT_TYPES()["required"]["fps"][1]["default"] == 15.0
    enc = mod.STM2PEJukeboxEncode
    assert enc.INPUT_TYPES()["required"]["music"][0] == load.RETURN_TYPES[1]
    assert enc.RETURN_TYPES == ("STM2PE_MUSIC_FEATURES",)
    assert enc.INPUT_TYPES()["required"]["mode"][0] == ["librosa", "jukebox"]


def test_load_music_from_the_input_folder(music_nodes):
    mod, inp = music_nodes
    y, _ = click_track(120, seconds=8.0)
    stereo = np.stack([y, 0.5 * y], axis=1)
    write_sf(inp / "song.wav", stereo, subtype="FLOAT")
    (inp / "readme.txt").write_text("not audio")
    choices = mod.STM2PELoadMusic.INPUT_TYPES()["required"]["audio"][0]
    assert choices == ["song.wav", mod.BUNDLED_SONG, mod.NO_FILE]
    assert mod.STM2PELoadMusic.VALIDATE_INPUTS("song.wav") is True
    assert "not found" in mod.STM2PELoadMusic.VALIDATE_INPUTS("gone.mp3")
    assert mod.STM2PELoadMusic.IS_CHANGED("song.wav") == hashlib.sha256((inp / "song.wav").read_bytes()).hexdigest()
    audio, music, n, tempo = mod.STM2PELoadMusic().load("song.wav", start_seconds=1.0, duration_seconds=6.0, fps=15.0)
    assert audio["sample_rate"] == SR and tuple(audio["waveform"].shape) == (1, 2, 6 * SR)
    assert str(audio["waveform"].dtype) == "torch.float32"
    np.testing.assert_allclose(audio["waveform"][0, 1].numpy(), 0.5 * y[SR : 7 * SR], atol=1e-6)
    assert n == music.n_frames == 90 and tempo == pytest.approx(120, rel=0.02)
    assert music.offset == 1.0 and music.source == "song.wav"


def test_bundled_demo_song_is_an_option_everywhere(music_nodes, monkeypatch):
    """'demo_song.ogg (bundled)' needs nothing in the input folder: listed, validated, hashed and loaded
    from stm2pe_core/assets (the example workflows rely on it)."""
    mod, inp = music_nodes
    demo = ROOT / "stm2pe_core" / "assets" / "demo_song.ogg"
    assert not any(inp.iterdir())
    choices = mod.STM2PELoadMusic.INPUT_TYPES()["required"]["audio"][0]
    assert choices == [mod.BUNDLED_SONG, mod.NO_FILE] and mod.BUNDLED_SONG == "demo_song.ogg (bundled)"
    assert mod.resolve_audio_path(mod.BUNDLED_SONG) == demo
    assert mod.STM2PELoadMusic.VALIDATE_INPUTS(mod.BUNDLED_SONG) is True
    assert mod.STM2PELoadMusic.IS_CHANGED(mod.BUNDLED_SONG) == hashlib.sha256(demo.read_bytes()).hexdigest()
    audio, music, n, tempo = mod.STM2PELoadMusic().load(mod.BUNDLED_SONG, 0.0, 4.0, 15.0)
    assert n == music.n_frames == 60 and music.source == "demo_song.ogg"
    assert tempo == pytest.approx(112, rel=0.03)  # scripts/make_demo_song.py: 112 BPM
    assert audio["waveform"].shape[-1] == 4 * audio["sample_rate"]
    # a missing asset (broken install) is reported, not looked up in the input folder
    monkeypatch.setattr(mod, "DEMO_SONG", inp / "nope.ogg")
    assert "bundled demo song" in mod.STM2PELoadMusic.VALIDATE_INPUTS(mod.BUNDLED_SONG)


def test_load_music_from_an_audio_input(music_nodes):
    import torch

    mod, _ = music_nodes
    y, _ = click_track(90, seconds=9.0, sr=48000)
    audio_in = {"waveform": torch.from_numpy(np.stack([y, y]))[None], "sample_rate": 48000}
    audio, music, n, tempo = mod.STM2PELoadMusic().load(mod.NO_FILE, 0.0, 0.0, 15.0, audio_input=audio_in)
    assert tuple(audio["waveform"].shape) == (1, 2, 9 * 48000) and audio["sample_rate"] == 48000
    assert n == 135 and tempo == pytest.approx(90, rel=0.02)
    with pytest.raises(Exception, match="nothing connected to audio_input"):
        mod.STM2PELoadMusic().load(mod.NO_FILE)


def test_load_music_errors_name_the_file(music_nodes):
    mod, inp = music_nodes
    (inp / "empty.ogg").write_bytes(b"")
    with pytest.raises(Exception, match=r"empty\.ogg: is empty"):
        mod.STM2PELoadMusic().load("empty.ogg")


def test_encode_and_cache_nodes(music_nodes):
    mod, inp = music_nodes
    y, _ = click_track(120, seconds=6.0)
    write_sf(inp / "c.flac", y)
    _, music, n, _ = mod.STM2PELoadMusic().load("c.flac")
    (feats,) = mod.STM2PEJukeboxEncode().encode(music, "librosa", beat_channel=True, use_cache=True)
    assert feats.features.shape == (n, 36) and feats.columns[-1] == ("beat_channel", 1)
    node = mod.STM2PEClearFeatureCache()
    assert "1 cached feature file(s)" in node.run(clear=False)["result"][0]
    out = node.run(clear=True)
    assert out["result"][0].startswith("removed 1") and out["ui"]["text"] == [out["result"][0]]
    assert np.isnan(mod.STM2PEClearFeatureCache.IS_CHANGED(clear=False))


def test_preview_node_draws_features_and_beats(music_nodes):
    mod, inp = music_nodes
    y, truth = click_track(120, seconds=8.0)
    write_sf(inp / "c.wav", y)
    _, music, n, _ = mod.STM2PELoadMusic().load("c.wav")
    (feats,) = mod.STM2PEJukeboxEncode().encode(music, "librosa", use_cache=False)
    node = mod.STM2PEPreviewMusicFeatures
    assert node.OUTPUT_NODE and node.INPUT_TYPES()["required"]["music_features"][0] == "STM2PE_MUSIC_FEATURES"
    out = node().preview(feats, music)
    image, text = out["result"]
    assert tuple(image.shape) == (1, 320, 768, 3) and float(image.min()) >= 0 and float(image.max()) <= 1
    assert out["ui"]["images"] == []  # no ComfyUI temp folder here
    assert "librosa features: 120 frames x 35 at 15 fps" in text and "tempo 120.0 BPM" in text
    # a white tick at the bottom for every beat, and nothing in between two beats
    bottom = image[0, -2].numpy()
    cols = [int(round(t * 15 / n * 768)) for t in music.beat_times]
    assert all(bottom[c].min() == 1.0 for c in cols)
    assert bottom[(cols[2] + cols[3]) // 2].max() == 0.0
    # 4800 Jukebox-like columns are averaged down, not drawn one per pixel row
    big = type(feats)(
        np.random.default_rng(0).standard_normal((n, 4800)).astype(np.float32), "jukebox", 15.0, (("j", 4800),), "h"
    )
    image, _ = node().preview(big)["result"]
    assert tuple(image.shape) == (1, 320, 768, 3)
