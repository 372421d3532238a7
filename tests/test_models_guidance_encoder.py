"""Guidance encoder: CHAMP key layout (strict load), shapes, math of the one used attention, fusion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from stm2pe_core.errors import InputError, WeightsError
from stm2pe_core.models.guidance_encoder import (
    ABLATIONS,
    GuidanceEncoder,
    build_guidance_encoder,
    load_guidance_encoder,
    sum_guidance,
)

FIXTURE = Path(__file__).parent / "data" / "champ_keys.json"
MANIFESTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "champ_manifests"


def _fixture(name: str) -> dict:
    return json.loads(FIXTURE.read_text())["files"][name]


def _random_sd(shapes: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(tuple(s), generator=g) * 0.1 for k, s in shapes.items()}


def test_meta_build_matches_fixture_keys_and_shapes():
    enc = build_guidance_encoder("meta")
    got = {k: list(v.shape) for k, v in enc.state_dict().items()}
    want = _fixture("guidance_encoder_depth.pth")["keys"]
    assert len(want) == 130
    assert got == want


@pytest.mark.parametrize("kind", ["depth", "normal", "semantic_map", "dwpose"])
def test_meta_build_matches_shared_manifest(kind):
    path = MANIFESTS / f"guidance_encoder_{kind}.pth.json"
    if not path.exists():
        pytest.skip("shared CHAMP manifests not present")
    man = json.loads(path.read_text())
    got = {k: list(v.shape) for k, v in build_guidance_encoder("meta").state_dict().items()}
    assert got == {k: v[0] for k, v in man["keys"].items()}
    assert len(man["optional_keys"]) == 19


def test_strict_load_accepts_optional_guidance_attention(tmp_path):
    fx = _fixture("guidance_encoder_depth.pth")
    sd = _random_sd(fx["keys"])
    p = tmp_path / "guidance_encoder_depth.pth"
    torch.save(sd, p)
    enc = load_guidance_encoder(p)
    assert torch.equal(enc.conv_out.weight, sd["conv_out.weight"])
    sd2 = dict(sd, **_random_sd(fx["optional_keys"], seed=1))
    p2 = tmp_path / "with_optional.safetensors"
    save_file(sd2, str(p2))
    enc2 = load_guidance_encoder(p2)
    assert torch.equal(enc2.attentions[5].proj_in.weight, sd["attentions.5.proj_in.weight"])
    assert "guidance_attention.norm.weight" not in enc2.state_dict()


def test_strict_load_names_file_and_bad_keys(tmp_path):
    sd = _random_sd(_fixture("guidance_encoder_depth.pth")["keys"])
    del sd["attentions.3.norm.weight"]
    sd["extra.weight"] = torch.zeros(2)
    sd["conv_out.weight"] = torch.zeros(320, 128, 3, 3)
    p = tmp_path / "guidance_encoder_normal.pth"
    torch.save(sd, p)
    with pytest.raises(WeightsError) as ei:
        load_guidance_encoder(p)
    msg = str(ei.value)
    assert "guidance_encoder_normal.pth" in msg
    assert "attentions.3.norm.weight" in msg and "extra.weight" in msg and "conv_out.weight" in msg


def test_truncated_file_message(tmp_path):
    p = tmp_path / "guidance_encoder_dwpose.pth"
    torch.save(_random_sd(_fixture("guidance_encoder_depth.pth")["keys"]), p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="guidance_encoder_dwpose.pth.*(truncated|download)"):
        load_guidance_encoder(p)


def _reference_forward(enc: GuidanceEncoder, x: torch.Tensor) -> torch.Tensor:
    """CHAMP's forward written out by hand (per frame): convs+SiLU, last attention, conv_out."""
    h = torch.nn.functional.silu(enc.conv_in(x))
    for b in enc.blocks:
        h = torch.nn.functional.silu(b(h))
    att = enc.attentions[5]
    n, c, hh, ww = h.shape
    res = h
    t = att.norm(h)
    t = att.proj_in(t).permute(0, 2, 3, 1).reshape(n, hh * ww, c)
    blk = att.transformer_blocks[0]
    a = blk.attn1
    y = blk.norm1(t)
    q, k, v = a.to_q(y), a.to_k(y), a.to_v(y)
    heads = 8

    def split(z):
        return z.reshape(n, -1, heads, c // heads).transpose(1, 2)

    w = (split(q) @ split(k).transpose(-1, -2)) * (c // heads) ** -0.5
    o = (w.softmax(-1) @ split(v)).transpose(1, 2).reshape(n, -1, c)
    t = a.to_out[0](o) + t
    t = blk.ff(blk.norm3(t)) + t
    t = t.reshape(n, hh, ww, c).permute(0, 3, 1, 2)
    return enc.conv_out(att.proj_out(t) + res)


def test_forward_shapes_and_math():
    torch.manual_seed(0)
    enc = GuidanceEncoder().eval()
    for p in enc.parameters():
        p.data.normal_(0, 0.05)
    x = torch.rand(2, 3, 3, 32, 48)  # B, C, F, H, W
    with torch.no_grad():
        y = enc(x)
        assert y.shape == (2, 320, 3, 4, 6)
        frames = x.permute(0, 2, 1, 3, 4).reshape(6, 3, 32, 48)
        ref = _reference_forward(enc, frames).reshape(2, 3, 320, 4, 6).permute(0, 2, 1, 3, 4)
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
        # chunking over frames changes nothing; attentions 0-4 are unused
        torch.testing.assert_close(enc(frames, chunk=4), enc(frames), rtol=1e-6, atol=1e-6)
        enc.attentions[0].proj_in.weight.data.add_(1.0)
        torch.testing.assert_close(enc(x), y)


def test_sum_guidance_ablations():
    torch.manual_seed(1)
    encs = {t: GuidanceEncoder().eval() for t in ABLATIONS["PDNS"]}
    for e in encs.values():
        for p in e.parameters():
            p.data.normal_(0, 0.05)
    maps = {t: torch.rand(4, 3, 16, 16) for t in encs}
    with torch.no_grad():
        each = {t: encs[t](maps[t]) for t in encs}
        dns = sum_guidance(encs, maps, types="DNS")
        torch.testing.assert_close(dns, each["depth"] + each["normal"] + each["semantic_map"])
        torch.testing.assert_close(sum_guidance(encs, maps, types="P"), each["dwpose"])
        pdns = sum_guidance(encs, maps, types="pdns")
        torch.testing.assert_close(pdns, dns + each["dwpose"], rtol=1e-5, atol=1e-6)
        # numpy NHWC uint8 maps are accepted
        np_maps = {"dwpose": (maps["dwpose"].permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()}
        got = sum_guidance(encs, np_maps, types="P")
        assert got.shape == (4, 320, 2, 2)
    with pytest.raises(InputError, match="semantic_map"):
        sum_guidance(encs, {"depth": maps["depth"], "normal": maps["normal"]}, types="DNS")
    with pytest.raises(InputError, match="choose one of"):
        sum_guidance(encs, maps, types="XYZ")
