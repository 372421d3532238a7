"""The de-averaging calibration (motion gain) and fine-tuning from exported weights."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from m2penc_toy import write_toy_corpus  # noqa: E402

from stm2pe_core.body.rotations import axis_angle_to_rot6d, rot6d_to_axis_angle  # noqa: E402
from stm2pe_core.models.m2penc import M2PEnc, M2PEncConfig  # noqa: E402
from stm2pe_core.motion_inference import apply_motion_gain, music_to_motion  # noqa: E402
from stm2pe_core.types import MusicFeatures  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(
    grid=4, channels=16, num_layers=1, num_heads=2, head_channels=8, smpl_hidden=32, window=16, window_overlap=6
)


def swing(n: int = 90, fps: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """Joint 5 swings 0.3 ± 0.2 rad at 2 Hz about x; everything else at rest."""
    t = np.arange(n) / fps
    aa = np.zeros((n, 24, 3))
    aa[:, 5, 0] = 0.3 + 0.2 * np.sin(2 * np.pi * 2 * t)
    aa[:, 0, 1] = 0.1  # a root rotation that must stay as it is
    return aa, axis_angle_to_rot6d(aa).astype(np.float32)


def test_gain_one_is_identity_and_gain_scales_deviation_from_local_mean():
    aa, r6 = swing()
    assert np.array_equal(apply_motion_gain(r6, 1.0, 15.0), r6)
    out = rot6d_to_axis_angle(apply_motion_gain(r6, 1.5, 15.0).astype(np.float64))
    mid = slice(15, 75)  # away from the ends, the 1-s mean of a 2-Hz swing is its centre 0.3
    assert np.allclose(out[mid, 5, 0] - 0.3, 1.5 * (aa[mid, 5, 0] - 0.3), atol=0.02)
    assert np.allclose(out[:, 0], aa[:, 0], atol=1e-5)  # root untouched
    assert np.abs(out[:, [1, 2, 3, 4, 6, 20]]).max() < 1e-5  # still joints stay still


def test_joint_angle_limits_cap_the_gain_but_never_below_raw():
    aa, r6 = swing()
    lim = np.full(24, 0.55)
    out = rot6d_to_axis_angle(apply_motion_gain(r6, 2.0, 15.0, lim).astype(np.float64))
    ang = np.linalg.norm(out, axis=-1)
    raw = np.linalg.norm(aa, axis=-1)
    assert np.all(ang[:, 1:] <= np.maximum(0.55, raw[:, 1:]) + 1e-6)
    assert ang[:, 5].max() > raw[:, 5].max() - 1e-6  # the cap is 0.55 > raw peak 0.5: it still grows
    out_nolim = rot6d_to_axis_angle(apply_motion_gain(r6, 2.0, 15.0).astype(np.float64))
    assert np.linalg.norm(out_nolim, axis=-1)[:, 5].max() > 0.6


def test_model_gain_is_saved_used_and_overridable(tmp_path):
    torch.manual_seed(0)
    m = M2PEnc(M2PEncConfig(**TINY, motion_gain=1.7, joint_angle_limits=[3.0] * 24)).eval()
    with torch.no_grad():  # the heads start at identity: shake them so the network moves
        for prm in m.parameters():
            prm.add_(torch.randn_like(prm) * 0.3)
    path = m.save_pretrained(tmp_path / "m.safetensors")
    m2 = M2PEnc.from_pretrained(path)
    assert m2.config.motion_gain == 1.7 and m2.config.joint_angle_limits == (3.0,) * 24
    x = np.random.default_rng(0).normal(size=(40, 36)).astype(np.float32)
    f = MusicFeatures(x, "librosa", 15.0, (("x", 36),), "h")
    cal = music_to_motion(f, m2)
    raw = music_to_motion(f, m2, motion_gain=1.0)
    assert np.allclose(cal.trans, raw.trans) and not np.allclose(cal.poses[:, 1:], raw.poses[:, 1:], atol=1e-4)
    with pytest.raises(ValueError, match="motion_gain"):
        M2PEncConfig(**TINY, motion_gain=0.0)


def test_calibration_fit_reaches_target_on_songs(tmp_path):
    from training.calibrate import fit_motion_gain, joint_angle_limits
    from training.stage1_data import load_songs

    songs = load_songs(write_toy_corpus(tmp_path / "toy", songs=2, n=48))
    torch.manual_seed(0)
    m = M2PEnc(M2PEncConfig(**TINY)).eval()
    with torch.no_grad():
        for prm in m.parameters():
            prm.add_(torch.randn_like(prm) * 0.3)
    lim = joint_angle_limits(songs)
    assert lim.shape == (24,) and np.all(lim >= 0)
    fit = fit_motion_gain(m, songs, target=1.0, limits=None, hi=50.0, iters=10)
    raw = fit["train_speed_ratio_raw"]
    if raw < 1.0:  # the gain must be > 1 and close the gap
        assert fit["motion_gain"] > 1.0
        assert fit["train_speed_ratio"] > raw
    else:  # already as fast as the teacher: no calibration
        assert fit["motion_gain"] == 1.0


def test_train_init_from_exported_weights(tmp_path):
    from training.config import load_config
    from training.train import init_model

    cfg = load_config(ROOT / "training" / "configs" / "stage1_tiny.yaml")
    torch.manual_seed(3)
    src = M2PEnc(cfg.model)
    with torch.no_grad():
        src.feat_mean.fill_(0.25)
    path = src.save_pretrained(tmp_path / "init.safetensors")
    m = init_model(cfg, path)
    for (k, a), b in zip(src.state_dict().items(), m.state_dict().values()):
        assert torch.equal(a, b), k
    from stm2pe_core.errors import InputError, WeightsError

    with pytest.raises(InputError, match="init_from"):
        init_model(cfg, tmp_path / "missing.safetensors")
    other = M2PEnc(M2PEncConfig(**{**cfg.model.to_dict(), "channels": cfg.model.channels * 2}))
    bad = other.save_pretrained(tmp_path / "bad.safetensors")
    with pytest.raises(WeightsError, match="does not match"):
        init_model(cfg, bad)
