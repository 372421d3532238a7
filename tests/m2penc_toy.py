"""A tiny corpus whose dance is a known function of the music (beat-locked knee bends and arm
swings), for fast M2PEnc training tests. Not the real teacher: see training/teacher."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stm2pe_core.body.skeleton import forward_kinematics

FPS = 15.0


def toy_song(seed: int, n: int = 96, dim: int = 36, k: int = 18) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    bpm = rng.uniform(90, 140)
    period = 60.0 / bpm * FPS
    beat_frames = np.arange(rng.uniform(0, period), n, period)
    t = np.arange(n)
    phase = np.interp(t, beat_frames, np.arange(len(beat_frames)), left=-1, right=len(beat_frames)) % 1.0
    feats = rng.normal(0, 0.3, (n, dim)).astype(np.float32)
    onehot = np.zeros(n, np.float32)
    onehot[np.round(beat_frames).astype(int).clip(0, n - 1)] = 1.0
    feats[:, 0] = np.exp(-(np.minimum(phase, 1 - phase) ** 2) / 0.01)
    feats[:, -1] = onehot
    # every joint moves a little (an all-zero target sits on L1's kink and any step raises it)
    poses = (0.05 * np.sin(2 * np.pi * phase[:, None, None] + rng.uniform(0, 6.3, (1, 24, 3)))).astype(np.float32)
    bend = 0.6 * (1 - np.cos(2 * np.pi * phase)) / 2
    poses[:, 4, 0] += bend
    poses[:, 5, 0] += bend
    poses[:, 1, 0] -= bend / 2
    poses[:, 2, 0] -= bend / 2
    poses[:, 16, 2] += -0.8 * np.sin(np.pi * phase)
    poses[:, 17, 2] += 0.8 * np.sin(np.pi * phase)
    poses[:, 0, 1] += 0.02 * t  # slow turn
    trans = np.zeros((n, 3), np.float32)
    trans[:, 1] = 0.9 - 0.1 * bend
    joints = forward_kinematics(poses.astype(np.float64), trans.astype(np.float64))
    kp = np.zeros((n, k, 3), np.float32)
    kp[..., 0] = 256 + joints[:, :k, 0] * 200
    kp[..., 1] = 256 - (joints[:, :k, 1] - 0.9) * 200
    kp[..., 2] = 1.0
    return {
        "features": feats,
        "poses": poses,
        "trans": trans,
        "betas": np.zeros(10, np.float32),
        "keypoints": kp,
        "image_size": np.array([512, 512]),
        "beat_times": beat_frames / FPS,
        "split": np.array("val" if seed % 5 == 4 else "train"),
    }


def write_toy_corpus(folder: str | Path, songs: int = 10, n: int = 96) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(songs):
        np.savez(folder / f"toy_{i:03d}.npz", **toy_song(i, n))
    return folder
