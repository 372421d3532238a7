"""Procedural music: determinism, tempo found by librosa, train/held-out split, file writing."""

from __future__ import annotations

import numpy as np
import pytest

from training.music_synth import (
    HELDOUT_STYLES,
    STYLES,
    SongSpec,
    corpus_specs,
    generate_song,
    in_heldout_tempo,
    split_of,
    write_song,
)


def test_same_spec_same_samples_and_seed_changes_them():
    spec = SongSpec("funk", 104.0, 8.0, seed=3)
    a, b = generate_song(spec), generate_song(spec)
    assert np.array_equal(a.waveform, b.waveform)
    c = generate_song(SongSpec("funk", 104.0, 8.0, seed=4))
    assert np.abs(a.waveform - c.waveform).mean() > 0.01
    assert a.waveform.shape == (int(round(8.0 * a.sample_rate)),)
    assert a.waveform.dtype == np.float32 and np.abs(a.waveform).max() <= 1.0


@pytest.mark.parametrize(("style", "tempo"), [("house", 124.0), ("hiphop", 90.0), ("disco", 117.0)])
def test_librosa_finds_the_generated_tempo(style, tempo):
    import librosa

    song = generate_song(SongSpec(style, tempo, 20.0, seed=1))
    found, beats = librosa.beat.beat_track(y=song.waveform, sr=song.sample_rate)
    found = float(np.atleast_1d(found)[0])
    assert abs(found - tempo) / tempo < 0.03, (style, tempo, found)
    # ground-truth beats are evenly spaced at the tempo and start at 0
    assert song.beat_times[0] == 0.0
    assert np.allclose(np.diff(song.beat_times), 60.0 / tempo)
    assert np.allclose(song.downbeat_times, song.beat_times[::4])


def test_splits_are_disjoint_in_style_and_tempo():
    train = corpus_specs(200, "train", seed=5)
    held = corpus_specs(60, "heldout", seed=5)
    assert all(s.style not in HELDOUT_STYLES and not in_heldout_tempo(s.tempo) for s in train)
    assert all(split_of(s) == "heldout" for s in held)
    assert {s.style for s in held} & set(HELDOUT_STYLES)  # both kinds of held-out songs appear
    assert any(s.style not in HELDOUT_STYLES for s in held)
    assert all(20.0 <= s.duration <= 60.0 for s in train + held)
    tempos = [s.tempo for s in train]
    assert min(tempos) < 80 and max(tempos) > 140  # the corpus spans slow to fast
    assert len({s.style for s in train}) == len(STYLES) - len(HELDOUT_STYLES)
    assert corpus_specs(5, "train", seed=5) == train[:5]  # a pure function of its arguments


def test_sections_change_energy(tmp_path):
    song = generate_song(SongSpec("pop", 110.0, 40.0, seed=2))
    names = [s[0] for s in song.sections]
    assert names[0] == "intro" and "chorus" in names
    sr = song.sample_rate

    def rms(a, b):
        x = song.waveform[int(a * sr) : int(b * sr)]
        return float(np.sqrt(np.mean(x**2)))

    intro = rms(*song.sections[0][1:])
    chorus = max(rms(a, b) for n, a, b in song.sections if n == "chorus")
    assert chorus > 1.3 * intro
    path = write_song(song, tmp_path / "s.ogg")
    import soundfile as sf

    y, rate = sf.read(str(path))
    assert rate == sr and abs(len(y) - len(song.waveform)) < sr // 10
    assert not list(tmp_path.glob("*.part"))
