"""Choreography teacher: determinism, beat alignment, joint limits, grounded feet, variety."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stm2pe_core.body.rotations import axis_angle_to_matrix
from stm2pe_core.types import Music
from training import metrics
from training.music_synth import SongSpec, generate_song
from training.teacher import choreograph, choreograph_full
from training.teacher.body import JOINT_MAX_DEG, TOE_CLEARANCE
from training.teacher.moves import MOVE_NAMES

FPS = 15.0


def _music(spec: SongSpec) -> Music:
    """The real analysis path, with the generator's true beats swapped in (exact, tracker-free)."""
    from stm2pe_core.audio import music_from_waveform

    song = generate_song(spec)
    music = music_from_waveform(song.waveform, song.sample_rate, fps=FPS, name=spec.name).music
    return dataclasses.replace(music, beat_times=song.beat_times, downbeat_times=song.downbeat_times, tempo=spec.tempo)


@pytest.fixture(scope="module")
def songs():
    specs = [SongSpec("house", 124.0, 30.0, 1), SongSpec("hiphop", 88.0, 30.0, 2), SongSpec("dnb", 155.0, 30.0, 3)]
    out = []
    for s in specs:
        m = _music(s)
        out.append((m, choreograph_full(m)))
    return out


def test_pure_function_of_the_music(songs):
    m, ch = songs[0]
    again = choreograph(m)
    assert np.array_equal(again.poses, ch.motion.poses) and np.array_equal(again.trans, ch.motion.trans)
    assert again.poses.shape == (m.n_frames, 24, 3) and again.trans.shape == (m.n_frames, 3)
    assert again.fps == FPS and np.array_equal(again.betas, np.zeros(10))
    varied = choreograph(m, seed=7)
    assert np.abs(varied.poses - again.poses).mean() > 0.02  # a requested variation differs
    assert np.array_equal(choreograph(m, seed=7).poses, varied.poses)  # and is reproducible


def test_different_music_dances_differently(songs):
    (_, a), (_, b), (_, c) = songs
    n = min(len(a.joints), len(b.joints), len(c.joints))

    def body(j):  # joints relative to the pelvis, so wandering does not count
        return j[:n] - j[:n, :1]

    across = [np.linalg.norm(body(x.joints) - body(y.joints), axis=-1).mean() for x, y in ((a, b), (a, c), (b, c))]
    # within a song, the same move repeats: compare each phrase's frames with the next phrase's
    assert min(across) > 0.06, across
    moves = [tuple(p.move for p in x.phrases) for x in (a, b, c)]
    assert len(set(moves)) == 3
    used = {mv for seq in moves for mv in seq}
    assert len(used) >= 5, used


@pytest.mark.slow
def test_corpus_uses_the_whole_vocabulary():
    from collections import Counter

    from training.music_synth import corpus_specs

    count = Counter()
    for spec in corpus_specs(16, "train", seed=9, duration=(20.0, 20.0)):
        count.update(p.move for p in choreograph_full(_music(spec)).phrases)
    assert len(MOVE_NAMES) >= 12
    assert len(count) >= 12, count
    assert max(count.values()) < 0.25 * sum(count.values()), count  # no move dominates


def test_key_poses_land_on_beats(songs):
    for m, ch in songs:
        bas = metrics.beat_align_score(ch.joints, m.beat_times, FPS, "bailando")
        others = [o for o, _ in songs if o is not m]
        mismatched = max(metrics.beat_align_score(ch.joints, o.beat_times, FPS, "bailando") for o in others)
        assert bas >= 0.5, (m.source, bas)
        assert bas - mismatched > 0.2, (m.source, bas, mismatched)
        speed = metrics.mean_joint_speed(ch.joints, FPS)
        assert 0.15 < speed < 2.0, speed  # dancing, neither frozen nor flailing


def test_joint_limits(songs):
    for _, ch in songs:
        p = ch.motion.poses.astype(np.float64)
        ang = np.rad2deg(np.linalg.norm(p, axis=-1))  # (N, 24)
        assert (ang[:, 1:] <= JOINT_MAX_DEG[1:] + 0.5).all(), np.argwhere(ang[:, 1:] > JOINT_MAX_DEG[1:] + 0.5)[:5]
        # knees and elbows only bend the anatomical way: knee = +x rotation, left elbow -y, right +y
        for j, axis, sign in ((4, 0, 1), (5, 0, 1), (18, 1, -1), (19, 1, 1)):
            big = ang[:, j] > 5
            axes = p[big, j] / np.linalg.norm(p[big, j], axis=-1, keepdims=True)
            assert (sign * axes[:, axis] > 0.9).all(), j
        r = axis_angle_to_matrix(p)
        assert np.allclose(np.linalg.det(r), 1.0, atol=1e-6)


def test_feet_on_the_floor_and_planted(songs):
    for _, ch in songs:
        j = ch.joints
        rest_ankle_h = 0.06 + TOE_CLEARANCE  # ankle above toe joint in the rest skeleton + clearance
        low = np.minimum(
            np.minimum(j[:, 7, 1], j[:, 8, 1]) - rest_ankle_h, np.minimum(j[:, 10, 1], j[:, 11, 1]) - TOE_CLEARANCE
        )
        ground = ch.stance != 3
        assert np.abs(low[ground]).max() < 0.01  # lowest foot on the floor (never under it)
        assert (low > -0.01).all()
        feet = np.stack([(j[:, 7] + j[:, 10]) / 2, (j[:, 8] + j[:, 11]) / 2], 1)[..., [0, 2]]
        drift = []
        for t in range(1, len(j)):
            s = ch.stance[t]
            if s in (0, 1) and ch.stance[t - 1] == s:
                drift.append(np.linalg.norm(feet[t, s] - feet[t - 1, s]))
        drift = np.array(drift)
        assert len(drift) > 30
        assert drift.max() < 0.005, drift.max()  # stance foot moves < 5 mm per frame (re-centring only)
        assert np.abs(j[:, 0, [0, 2]]).max() < 1.0  # the dancer stays near the origin


def test_short_or_beatless_music():
    m = _music(SongSpec("techno", 130.0, 3.0, 4))
    m2 = Music(m.waveform, m.sample_rate, FPS, m.n_frames, np.zeros(0), 0.0, m.onset_envelope, "x", "x")
    for music in (m, m2):
        mo = choreograph(music)
        assert mo.poses.shape == (music.n_frames, 24, 3) and np.isfinite(mo.poses).all() and np.isfinite(mo.trans).all()
