"""Rhythm analysis: tempo and beats on click tracks of known tempo, downbeats, sections, grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_testutil import click_track, write_sf

from stm2pe_core.audio.analysis import analysis_grid
from stm2pe_core.audio.load import load_music
from stm2pe_core.types import frame_count

DEMO = Path(__file__).resolve().parents[1] / "stm2pe_core" / "assets" / "demo_song.ogg"


@pytest.mark.parametrize("bpm", [90, 120, 150])
def test_click_track_tempo_and_beats(tmp_path, bpm):
    y, truth = click_track(bpm, seconds=16.0)
    music = load_music(write_sf(tmp_path / f"click{bpm}.wav", y)).music
    assert music.tempo == pytest.approx(bpm, rel=0.02)
    beats = music.beat_times
    # every detected beat sits on a click, and (almost) every click is found
    err = np.array([np.min(np.abs(truth - b)) for b in beats])
    assert err.max() < 0.050, f"beats off by up to {err.max() * 1000:.0f} ms"
    found = np.array([np.min(np.abs(beats - t)) < 0.050 for t in truth])
    assert found.mean() >= 0.9
    assert np.all(np.diff(beats) > 0.8 * 60 / bpm)  # no doubled beats
    # accented clicks = bar starts
    down = music.downbeat_times
    assert len(down) >= 3
    bar_index = (down - truth[0]) / (4 * 60 / bpm)
    np.testing.assert_allclose(bar_index, np.round(bar_index), atol=0.05)


def test_tempo_hint_resolves_an_octave(tmp_path):
    y, _ = click_track(150, seconds=12.0, accent=False)
    p = write_sf(tmp_path / "c.wav", y)
    assert load_music(p, start_bpm=75).music.tempo == pytest.approx(75, rel=0.02)
    assert load_music(p, start_bpm=150).music.tempo == pytest.approx(150, rel=0.02)


@pytest.mark.parametrize("fps,seconds", [(15, 16.0), (30, 7.3), (24, 5.05), (25, 6.0)])
def test_frame_count_and_onset_envelope(tmp_path, fps, seconds):
    y, truth = click_track(120, seconds=seconds)
    music = load_music(write_sf(tmp_path / "c.wav", y), fps=fps).music
    assert music.n_frames == frame_count(seconds, fps) == len(music.onset_envelope)
    assert music.fps == fps and music.sample_rate == analysis_grid(fps).sample_rate
    env = music.onset_envelope
    assert env.max() == pytest.approx(1.0) and env.min() >= 0
    # the envelope peaks on the click frames
    peaks = [
        int(np.argmax(env[max(0, round(t * fps) - 3) : round(t * fps) + 4])) + max(0, round(t * fps) - 3)
        for t in truth[:-1]
    ]
    assert np.abs(np.array(peaks) - np.round(truth[:-1] * fps)).max() <= 1
    assert set(music.beat_frames) <= set(range(music.n_frames))


def test_analysis_grid_hops_are_whole_frames():
    for fps in (15, 30, 24, 25, 29.97, 12.5):
        g = analysis_grid(fps)
        assert g.exact and g.sample_rate == pytest.approx(fps * g.hop, abs=1e-6)
        assert 11000 <= g.sample_rate <= 16000
    assert analysis_grid(15).sample_rate == 15360 and analysis_grid(15).hop == 1024  # EDGE's 15360 Hz
    assert analysis_grid(30).hop == 512


def test_demo_song_tempo_downbeats_and_section_change():
    assert DEMO.stat().st_size < 400_000
    music = load_music(DEMO).music
    assert music.duration == pytest.approx(20.0, abs=0.3)
    assert music.tempo == pytest.approx(112, rel=0.02)
    bar = 4 * 60 / 112
    phase = music.downbeat_times / bar
    np.testing.assert_allclose(phase, np.round(phase), atol=0.05)  # bars start at t = 0
    # the designed section change (bar 5, 8.571 s) is found, and nothing else
    assert len(music.section_times) == 1
    assert music.section_times[0] == pytest.approx(4 * bar, abs=0.1)


def test_no_sections_in_a_steady_click_track(tmp_path):
    y, _ = click_track(120, seconds=24.0)
    assert len(load_music(write_sf(tmp_path / "c.wav", y)).music.section_times) == 0


@pytest.mark.parametrize("bpm", [90, 150])
def test_synthetic_songs_at_other_tempos(tmp_path, monkeypatch, bpm):
    """The demo-song generator at 90 and 150 BPM: real drums/bass/chords, not clicks."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_demo_song", DEMO.parents[2] / "scripts" / "make_demo_song.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    for name, value in {"BPM": bpm, "BEAT": 60 / bpm, "BAR": 240 / bpm}.items():
        monkeypatch.setattr(demo, name, value)
    y = demo.render()
    music = load_music(write_sf(tmp_path / "song.wav", y, demo.SR)).music
    assert music.tempo == pytest.approx(bpm, rel=0.02)
    truth = np.arange(0, len(y) / demo.SR, 60 / bpm)
    assert max(np.min(np.abs(truth - b)) for b in music.beat_times) < 0.050
    assert len(music.beat_times) >= len(truth) - 3
    phase = music.downbeat_times / (240 / bpm)
    np.testing.assert_allclose(phase, np.round(phase), atol=0.05)
    assert len(music.section_times) == 1 and music.section_times[0] == pytest.approx(4 * 240 / bpm, abs=0.1)
