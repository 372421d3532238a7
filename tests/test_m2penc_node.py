"""M2PEnc Pose Guidance node without ComfyUI: declarations, outputs, guidance-head handling,
and the bundled default weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pack_loader import pack_submodule

from stm2pe_core.errors import MissingModelError
from stm2pe_core.models.m2penc import M2PEnc, M2PEncConfig
from stm2pe_core.motion_inference import DEFAULT_WEIGHTS, load_m2penc, music_to_motion
from stm2pe_core.types import MusicFeatures

TINY = dict(
    grid=4, channels=16, num_layers=1, num_heads=2, head_channels=8, smpl_hidden=32, window=16, window_overlap=6
)


@pytest.fixture
def node_mod():
    return pack_submodule("nodes.m2penc")


def feats(n: int, dim: int = 36) -> MusicFeatures:
    x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return MusicFeatures(x, "librosa", 15.0, (("x", dim),), "hash")


def tiny_file(tmp_path, **kw):
    torch.manual_seed(0)
    return M2PEnc(M2PEncConfig(**{**TINY, **kw})).save_pretrained(tmp_path / "tiny.safetensors")


def test_declarations(node_mod):
    cls = node_mod.NODE_CLASS_MAPPINGS["STM2PEM2PEncPoseGuidance"]
    spec = cls.INPUT_TYPES()
    assert spec["required"]["music_features"][0] == "STM2PE_MUSIC_FEATURES"
    assert spec["required"]["weights"][0][0] == "default (bundled)"
    assert cls.RETURN_TYPES == ("STM2PE_POSE_GUIDANCE", "IMAGE", "STM2PE_MOTION")
    assert node_mod.NODE_DISPLAY_NAME_MAPPINGS["STM2PEM2PEncPoseGuidance"] == "M2PEnc Pose Guidance"


def test_output_connected(node_mod):
    prompt = {"1": {"inputs": {"music_features": ["0", 0]}}, "2": {"inputs": {"motion": ["1", 2], "x": 3}}}
    assert node_mod.output_connected(prompt, "1", 2)
    assert not node_mod.output_connected(prompt, "1", 0)
    assert not node_mod.output_connected(None, "1", 0)  # unknown graph: not read


def test_run_outputs_and_untrained_guidance(node_mod, tmp_path, monkeypatch):
    path = tiny_file(tmp_path, heads=("smpl", "heatmap", "guidance"), heatmap_channels=18)
    monkeypatch.setattr(node_mod, "weight_path", lambda name: str(path))
    node = node_mod.M2PEncPoseGuidance()
    prompt = {"5": {"inputs": {"motion": ["7", 2], "images": ["7", 1]}}}
    guidance, image, motion = node.run(feats(30), "tiny.safetensors", preview_size=64, prompt=prompt, unique_id="7")
    assert guidance is None
    assert tuple(image.shape) == (30, 64, 64, 3) and image.dtype == torch.float32
    assert type(motion).__name__ == "Motion" and motion.poses.shape == (30, 24, 3)  # pack-loaded class
    # reading the guidance output of weights whose guidance head was never trained: clear error
    prompt["6"] = {"inputs": {"pose_guidance": ["7", 0]}}
    with pytest.raises(Exception, match="Render SMPL Guidance") as err:
        node.run(feats(30), "tiny.safetensors", preview_size=64, prompt=prompt, unique_id="7")
    assert type(err.value).__name__ == MissingModelError.__name__  # the pack's own copy of the class


def test_trained_guidance_head_is_returned(node_mod, tmp_path, monkeypatch):
    path = tiny_file(tmp_path, heads=("smpl", "guidance"), trained_heads=("smpl", "guidance"))
    monkeypatch.setattr(node_mod, "weight_path", lambda name: str(path))
    prompt = {"6": {"inputs": {"pose_guidance": ["7", 0]}}}
    guidance, image, motion = node_mod.M2PEncPoseGuidance().run(feats(20), "x", 64, prompt, "7")
    assert tuple(guidance.features.shape) == (20, 320, 64, 64) and guidance.features.dtype == torch.float16
    assert float(image.abs().max()) == 0.0  # no heatmap head: blank preview
    # not connected: still returned (ComfyUI caches outputs by inputs, not by links)
    again, _, _ = node_mod.M2PEncPoseGuidance().run(feats(20), "x", 64, {}, "7")
    assert torch.equal(again.features, guidance.features)


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="bundled weights not built yet")
def test_bundled_default_loads_and_dances():
    model = load_m2penc(None)
    cfg = model.config
    assert cfg.in_dim == 36 and cfg.feature_kind == "librosa" and "smpl" in cfg.trained_heads
    assert "guidance" not in cfg.trained_heads
    assert DEFAULT_WEIGHTS.stat().st_size < 8_000_000
    mo = music_to_motion(feats(200), model)
    assert mo.poses.shape == (200, 24, 3) and np.all(np.isfinite(mo.poses))
    # it moves: mean joint rotation change per frame is not ~0
    assert np.abs(np.diff(mo.poses, axis=0)).mean() > 1e-3
