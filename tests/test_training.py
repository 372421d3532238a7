"""Stage-1 training on a toy corpus: configs, a step lowers the loss, resume, export."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from m2penc_toy import write_toy_corpus  # noqa: E402

from stm2pe_core.errors import InputError  # noqa: E402
from stm2pe_core.models.m2penc import M2PEnc  # noqa: E402
from training.config import TrainConfig, config_from_dict, load_config  # noqa: E402
from training.losses import gaussian_heatmaps, targets_from_motion, total_loss  # noqa: E402
from training.stage1_data import ClipSampler, load_songs, split_songs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY_YAML = ROOT / "training" / "configs" / "stage1_tiny.yaml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_toy_corpus(tmp_path_factory.mktemp("toy"), songs=6, n=64)


def tiny_cfg(corpus: Path, out: Path, **train) -> TrainConfig:
    cfg = load_config(
        TINY_YAML, [f"data.corpus={corpus}", f"train.output_dir={out}"] + [f"{k}={v}" for k, v in train.items()]
    )
    return cfg


def test_config_validation(tmp_path):
    with pytest.raises(InputError, match="optim.lrr"):
        config_from_dict({"optim": {"lrr": 1}})
    with pytest.raises(InputError, match="model.widht"):
        config_from_dict({"model": {"widht": 1}})
    with pytest.raises(InputError, match="clip_frames"):
        config_from_dict({"data": {"clip_frames": 50}, "model": {"window": 60}})
    cfg = load_config(TINY_YAML, ["optim.max_steps=7", "model.heads=[smpl]", "train.heads=[smpl]"])
    assert cfg.optim.max_steps == 7 and cfg.model.heads == ("smpl",) and cfg.model.channels == 16
    assert load_config(ROOT / "training" / "configs" / "stage1_default.yaml").data.clip_frames == 120


def test_gaussian_heatmap_target_matches_render_helper():
    from stm2pe_core.motion_inference import heatmap_peaks
    from stm2pe_core.render.openpose import heatmaps

    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 511, (18, 2)), rng.uniform(0, 1, (18, 1))], axis=1).astype(np.float32)
    ours = gaussian_heatmaps(torch.from_numpy(kp)[None], (512, 512), 64, sigma=1.5)[0].numpy()
    ref = heatmaps(kp, 512, 512, (64, 64), sigma=1.5)
    assert ours.shape == (18, 64, 64)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert (ours.reshape(18, -1).max(1) == 0).sum() == (kp[:, 2] < 0.3).sum()
    # peaks read back land within half a heatmap cell (4 px at 512) of the keypoints
    back = heatmap_peaks(ours[None], size=(512, 512))[0]
    on = kp[:, 2] >= 0.3
    assert np.abs(back[on, :2] - kp[on, :2]).max() <= 4.0 + 1e-4


def test_teacher_targets_are_exact_for_perfect_prediction(corpus):
    cfg = tiny_cfg(corpus, Path("/unused"))
    songs = load_songs(corpus)
    sampler = ClipSampler(songs, 32, seed=0)
    batch = sampler.sample(2)
    tgt = targets_from_motion(batch["poses"], batch["trans"])
    pred = {"rot6d": tgt["rot"][..., :2, :].reshape(2, 32, 24, 6), "root": tgt["rates"], "betas": batch["betas"]}
    parts = total_loss(pred, batch, cfg.loss, 1.5, None)
    assert float(parts["loss"]) == pytest.approx(0.0, abs=1e-4)


def test_one_step_lowers_the_loss(corpus):
    from training.train import build_model, train_step

    cfg = tiny_cfg(corpus, Path("/unused"))
    songs = load_songs(corpus)
    train, val = split_songs(songs, 2)
    assert len(val) >= 1 and all(s.split == "train" for s in train)
    torch.manual_seed(0)
    model = build_model(cfg, train)
    sampler = ClipSampler(train, 32, seed=0)
    batch = sampler.sample(4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)  # Adam moves every weight by ~lr at step 1
    gen = torch.Generator().manual_seed(0)
    before = train_step(model, batch, cfg, sampler.image_size, torch.Generator().manual_seed(0))
    before["loss"].backward()
    opt.step()
    opt.zero_grad()
    with torch.no_grad():
        after = train_step(model, batch, cfg, sampler.image_size, gen)
    assert set(before) >= {"rot", "fk", "vel", "root", "contact", "heatmap", "loss"}
    assert float(after["loss"]) < float(before["loss"].detach()) - 1e-3


@pytest.mark.slow
def test_resume_restores_optimizer_and_step_then_export(corpus, tmp_path):
    from training.export import export_checkpoint
    from training.train import run

    out = tmp_path / "run"
    cfg = tiny_cfg(corpus, out, **{"optim.max_steps": 4, "train.save_every": 2, "train.eval_every": 100})
    s1 = run(cfg)
    assert s1["steps"] == 4 and (out / "m2penc.safetensors").is_file()
    opt_file = out / "checkpoints" / "step_4" / "optimizer.bin"
    saved = torch.load(opt_file, weights_only=True)
    assert saved["state"], "optimizer state was saved"
    # resume with no steps left: the state written again must be the very same
    s2 = run(tiny_cfg(corpus, out, **{"optim.max_steps": 4, "train.eval_every": 100}), resume="latest")
    assert s2["start_step"] == 4 and s2["steps"] == 4
    again = torch.load(opt_file, weights_only=True)
    for k, st in saved["state"].items():
        assert torch.equal(st["exp_avg"], again["state"][k]["exp_avg"])
        assert float(st["step"]) == float(again["state"][k]["step"]) == 4.0
    # continue two more steps from there
    s3 = run(tiny_cfg(corpus, out, **{"optim.max_steps": 6, "train.eval_every": 100}), resume="latest")
    assert s3["start_step"] == 4 and s3["steps"] == 6
    # export -> load round trip: same outputs as the exported run's model
    path = export_checkpoint(out, tmp_path / "exp" / "m.safetensors")
    a = M2PEnc.from_pretrained(path)
    b = M2PEnc.from_pretrained(out / "m2penc.safetensors")
    assert a.config.trained_heads == ("smpl", "heatmap")
    x = torch.randn(1, 32, 36)
    with torch.no_grad():
        assert torch.allclose(a(x, heads=("smpl",))["rot6d"], b(x, heads=("smpl",))["rot6d"], atol=1e-6)
    assert s1["final_eval"]["eval/songs"] >= 1 and "eval/bas_fact" in s1["final_eval"]
    with pytest.raises(InputError, match="nothing to resume"):
        run(tiny_cfg(corpus, tmp_path / "empty"), resume="latest")
