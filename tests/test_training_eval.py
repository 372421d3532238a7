"""Scoring tables (training/evaluate.py): self-consistency and the eval CLI on a toy corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from m2penc_toy import write_toy_corpus
from test_metrics import bouncing

from stm2pe_core.models.m2penc import M2PEnc, M2PEncConfig
from training.evaluate import markdown_table, score_dances

FPS = 15.0


def test_score_dances_teacher_equals_model_and_control():
    n = 120
    beats_a = np.arange(6, n - 6, 10)
    beats_b = np.arange(3, n - 6, 7)
    dances = [bouncing(n, beats_a), bouncing(n, beats_b)]
    beats = [beats_a / FPS, beats_b / FPS]
    res = score_dances(dances, beats, FPS, teacher_joints=dances, names=["a", "b"])
    s = res["summary"]
    assert s["bas_fact"] == pytest.approx(1.0)  # motion beats exactly on the music beats
    assert s["bas_fact_vs_teacher"] == pytest.approx(1.0) and s["speed_ratio"] == pytest.approx(1.0)
    # the other song's beats fit worse: the control is lower and the ratio above 1
    assert s["bas_fact_mismatch"] < 0.7 and s["bas_fact_over_mismatch"] > 1.4
    assert [r["song"] for r in res["songs"]] == ["a", "b"]
    md = markdown_table(res, "t")
    assert "| BAS FACT (mean over motion beats) | 1.000 | 1.000 |" in md and "mismatched" in md


@pytest.mark.slow
def test_eval_cli_on_toy_corpus(tmp_path):
    from training.__main__ import main

    corpus = write_toy_corpus(tmp_path / "toy", songs=5, n=64)
    torch.manual_seed(0)
    cfg = M2PEncConfig(
        grid=4, channels=16, num_layers=1, num_heads=2, head_channels=8, smpl_hidden=32, window=32, window_overlap=8
    )
    path = M2PEnc(cfg).save_pretrained(tmp_path / "m.safetensors")
    assert main(["eval", "--checkpoint", str(path), "--corpus", str(corpus), "--out", str(tmp_path / "ev")]) == 0
    res = json.loads((tmp_path / "ev.json").read_text())
    assert res["summary"]["songs"] == 1  # toy song 4 is the val split
    assert (tmp_path / "ev.md").read_text().startswith("### M2PEnc on held-out corpus songs")
