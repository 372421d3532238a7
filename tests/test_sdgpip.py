"""SDGPip end to end on tiny songs: shard contents, reader, resume, music-folder input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from stm2pe_core.errors import InputError
from training.sdgpip import CLIP_FRAMES, ShardDataset, generate


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    man = generate(out, synth=2, songs_per_shard=1, min_seconds=6.0, max_seconds=7.0, stride=1.0, workers=1)
    return out, man


@pytest.mark.slow
def test_shards_and_manifest(corpus):
    out, man = corpus
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "shard_00000.json",
        "shard_00000.safetensors",
        "shard_00001.json",
        "shard_00001.safetensors",
    ]
    assert man["songs"] == 2 and len(man["shards"]) == 2 and man["fps"] == 15.0
    assert (
        man["feature_kind"] == "librosa"
        and man["feature_dim"] == 36
        and man["feature_columns"][-1] == ["beat_channel", 1]
    )
    assert man["clip_frames"] == CLIP_FRAMES and man["clip_stride_frames"] == 15
    assert man["splits"] == {"train": 2, "heldout": 0}
    assert json.loads((out / "manifest.json").read_text()) == man
    from safetensors.numpy import load_file

    a = load_file(str(out / "shard_00000.safetensors"))
    f = int(a["song_offsets"][-1])
    assert 90 <= f <= 105  # 6-7 s at 15 fps
    expect = {
        "features": ((f, 36), np.float16),
        "poses": ((f, 24, 3), np.float32),
        "trans": ((f, 3), np.float32),
        "keypoints": ((f, 18, 3), np.float16),
        "contacts": ((f, 4), np.uint8),
        "betas": ((1, 10), np.float32),
        "song_offsets": ((2,), np.int64),
        "beat_offsets": ((2,), np.int64),
    }
    for k, (shape, dtype) in expect.items():
        assert a[k].shape == shape and a[k].dtype == dtype, k
    assert man["shards"][0]["clips"] == 1 + (f - CLIP_FRAMES) // 15


@pytest.mark.slow
def test_reader_songs_and_clips(corpus):
    out, man = corpus
    songs = ShardDataset(out)
    assert len(songs) == 2
    s = songs[0]
    n = s["poses"].shape[0]
    assert s["features"].shape == (n, 36) and s["rot6d"].shape == (n, 24, 6) and s["joints"].shape == (n, 24, 3)
    # rot6d is the first two rows of each rotation; joints are FK with trans: feet on the floor
    from stm2pe_core.body.rotations import axis_angle_to_matrix

    r = axis_angle_to_matrix(s["poses"][:5].astype(np.float64))
    assert np.allclose(s["rot6d"][:5], r[..., :2, :].reshape(5, 24, 6), atol=1e-5)
    assert abs(float(s["joints"][:, [10, 11], 1].min()) - 0.03) < 0.02
    # keypoints: inside the 512x512 frame, body upright (head above ankles), all visible
    kp = s["keypoints"]
    assert (kp[..., :2] >= 0).all() and (kp[..., :2] <= 511).all() and (kp[..., 2] == 1).all()
    assert (kp[:, 0, 1] < kp[:, 10, 1] - 150).all()  # nose well above the right ankle (y down)
    # beat channel == beat times on the frame grid
    beats_from_channel = np.flatnonzero(s["features"][:, -1] > 0.5) / 15.0
    assert len(s["beat_times"]) >= 8
    assert np.abs(beats_from_channel[:, None] - s["beat_times"][None]).min(1).max() <= 1 / 15 + 1e-6
    clips = ShardDataset(out, clip_frames=CLIP_FRAMES)
    assert len(clips) == man["clips"]
    c = clips[len(clips) - 1]
    assert c["features"].shape == (CLIP_FRAMES, 36) and c["keypoints"].shape == (CLIP_FRAMES, 18, 3)
    assert c["start"] > 0 and (c["beat_times"] >= 0).all() and (c["beat_times"] < 5.0).all()
    song = songs[[x["name"] for x in (songs[0], songs[1])].index(c["name"])]
    assert np.array_equal(c["poses"], song["poses"][c["start"] : c["start"] + CLIP_FRAMES])
    assert len(ShardDataset(out, split="heldout")) == 0
    import torch

    from training.sdgpip import collate

    loader = torch.utils.data.DataLoader(clips, batch_size=3, shuffle=False, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["rot6d"].shape == (3, CLIP_FRAMES, 24, 6) and batch["features"].dtype == torch.float32
    assert isinstance(clips, torch.utils.data.Dataset) and len(batch["beat_times"]) == 3


@pytest.mark.slow
def test_resume_skips_finished_shards_and_is_deterministic(corpus):
    out, man = corpus
    first = out / "shard_00000.safetensors"
    second = out / "shard_00001.safetensors"
    before = second.read_bytes()
    os.utime(first, (1_000_000, 1_000_000))
    second.unlink()
    (out / "shard_00001.json").unlink()
    (out / "shard_00000.safetensors.part").write_bytes(b"junk")  # a killed run's leftover is ignored
    man2 = generate(out, synth=2, songs_per_shard=1, min_seconds=6.0, max_seconds=7.0, stride=1.0, workers=1)
    assert first.stat().st_mtime == 1_000_000  # finished shard untouched
    assert second.read_bytes() == before  # regenerated identically
    assert man2 == man


def test_bad_input(tmp_path):
    with pytest.raises(InputError):
        generate(tmp_path / "x")  # neither --music nor --synth
    with pytest.raises(InputError, match="no audio files"):
        generate(tmp_path / "y", music=str(tmp_path))
    with pytest.raises(InputError, match="manifest"):
        ShardDataset(tmp_path)


@pytest.mark.slow
def test_music_folder_with_motion_files(tmp_path):
    """--music DIR: songs are analysed from files; a motion file with the song's stem replaces the teacher."""
    from training.music_synth import SongSpec, generate_song, write_song

    write_song(generate_song(SongSpec("house", 124.0, 6.0, 9)), tmp_path / "music" / "a.wav")
    write_song(generate_song(SongSpec("funk", 100.0, 6.0, 9)), tmp_path / "music" / "b.ogg")
    n = 90
    poses = np.zeros((n, 24, 3), np.float32)
    poses[:, 18, 1] = -1.0  # a fixed bent left elbow, easy to recognise
    (tmp_path / "motions").mkdir()
    np.savez(tmp_path / "motions" / "b.npz", poses=poses, trans=np.zeros((n, 3), np.float32), fps=15.0)
    man = generate(tmp_path / "out", music=str(tmp_path / "music"), motions=str(tmp_path / "motions"), workers=1)
    assert man["songs"] == 2
    ds = ShardDataset(tmp_path / "out")
    by_name = {ds[i]["name"]: ds[i] for i in range(len(ds))}
    assert set(by_name) == {"a", "b"}
    assert np.allclose(by_name["b"]["poses"][:, 18, 1], -1.0)
    assert by_name["b"]["poses"].shape[0] == 90
    assert by_name["a"]["poses"].shape[0] == 90 and np.abs(by_name["a"]["poses"]).max() > 0.3  # the teacher danced


@pytest.mark.slow
def test_guidance_maps_only_with_weights_or_when_asked(tmp_path):
    from training.sdgpip import guidance_weights_present

    models = tmp_path / "models"
    assert not guidance_weights_present(str(models))
    (models / "champ").mkdir(parents=True)
    (models / "champ" / "guidance_encoder_depth.pth").write_bytes(b"")
    assert guidance_weights_present(str(models))
    try:
        from stm2pe_core.render import gl

        gl.prepare()
        import pyrender  # noqa: F401
    except Exception:  # noqa: BLE001
        pytest.skip("no offscreen OpenGL here")
    man = generate(tmp_path / "out", synth=1, min_seconds=6.0, max_seconds=6.5, maps_size=32, workers=1)
    assert man["guidance_maps"] == {"size": 32, "names": ["depth", "dwpose", "normal", "semantic_map"]}
    item = ShardDataset(tmp_path / "out")[0]
    n = item["poses"].shape[0]
    for name in ("depth", "normal", "semantic_map", "dwpose"):
        m = item[f"map_{name}"]
        assert m.shape == (n, 32, 32, 3) and m.dtype == np.uint8
        assert 0.02 < (m.max(-1) > 0).mean() < 0.6  # a body on a black background
