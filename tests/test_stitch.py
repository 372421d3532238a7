"""Stitch Segments: latent blending across overlaps, chunked decoding, audio trimming, mp4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stm2pe_core.diffusion.sampling import SegmentLatents
from stm2pe_core.diffusion.segments import plan_segments
from stm2pe_core.diffusion.stitch import stitch_segments, trim_audio, vae_decoder
from stm2pe_core.errors import InputError
from stm2pe_core.models.encoders import build_vae, tiny_vae_config
from stm2pe_core.video import video_info
from stm2pe_core.windows import fuse_windows


def tiny_vae():
    """Test stand-in for sd-vae-ft-mse: 2 blocks (x2 upsampling), random weights."""
    torch.manual_seed(0)
    return build_vae(config=tiny_vae_config(blocks=2))


def _segments(total: int, size: int, overlap: int, h: int = 6, w: int = 6) -> list[SegmentLatents]:
    g = torch.Generator().manual_seed(total)
    return [
        SegmentLatents(torch.randn(1, 4, s.length, h, w, generator=g), s.start, s.stop, s.overlap_prev)
        for s in plan_segments(total, size, overlap)
    ]


def test_stitch_decodes_blended_latents_in_chunks_and_writes_mp4(tmp_path):
    segs = _segments(40, 16, 4)
    assert len(segs) == 3
    decoded_batches = []
    vae = tiny_vae()
    dec = vae_decoder(vae, chunk=5)

    def spy(z):
        decoded_batches.append(z.shape[2])
        return dec(z)

    sr = 16000
    music = {"waveform": torch.zeros(1, 2, sr * 5), "sample_rate": sr}
    seen = []
    out = stitch_segments(
        segs, spy, 15, audio=music, path=tmp_path / "song.mp4", chunk=5, progress=lambda d, t: seen.append((d, t))
    )
    assert out.n_frames == 40 and out.frames.shape == (40, 12, 12, 3)
    assert max(decoded_batches) <= 5 and sum(decoded_batches) == 40  # chunked, every frame once
    assert seen[-1] == (40, 40) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    # the frames are the decode of the latent blend fuse_windows would make
    blended = fuse_windows([plan.window for plan in plan_segments(40, 16, 4)], [s.latents for s in segs], 40, axis=2)
    torch.testing.assert_close(out.frames, dec(blended), atol=1e-4, rtol=0)
    # audio trimmed to the frames (40 / 15 s), stereo kept
    assert out.audio["waveform"].shape == (1, 2, round(40 / 15 * sr))
    info = video_info(out.path)
    assert (info.frames, info.width, info.height, info.audio_channels) == (40, 12, 12, 2)
    assert abs(info.audio_duration - 40 / 15) <= 1 / 15


def test_stitch_without_keeping_frames_or_file_and_order_independent():
    segs = _segments(30, 12, 3)
    decode = vae_decoder(tiny_vae(), chunk=8)
    a = stitch_segments(segs, decode, 15, keep_frames=True)
    b = stitch_segments(list(reversed(segs)), decode, 15, keep_frames=False)
    assert b.frames is None and b.n_frames == 30 and b.path is None and b.audio is None
    torch.testing.assert_close(a.last_frame, b.last_frame)
    torch.testing.assert_close(a.frames[-1], b.last_frame)


def test_cancel_during_stitch_leaves_no_file(tmp_path):
    segs = _segments(40, 16, 4)

    def cancel(done, total):
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stitch_segments(segs, vae_decoder(tiny_vae(), 4), 15, path=tmp_path / "x.mp4", chunk=4, progress=cancel)
    assert list(tmp_path.iterdir()) == []


def test_bad_segment_sets_are_input_errors():
    segs = _segments(40, 16, 4)
    with pytest.raises(InputError, match="no segments"):
        stitch_segments([], lambda z: z, 15)
    with pytest.raises(InputError, match="starts at frame"):
        stitch_segments(segs[1:], lambda z: z, 15)
    gap = [segs[0], SegmentLatents(segs[2].latents, 30, 46)]
    with pytest.raises(InputError, match="cannot be stitched"):
        stitch_segments(gap, lambda z: z, 15)


def test_trim_audio_shapes():
    a = trim_audio((np.zeros(44100 * 3, np.float32), 44100), 30, 15)
    assert a["waveform"].shape == (1, 1, 88200) and a["sample_rate"] == 44100
    assert trim_audio(None, 3, 15) is None


def test_static_shapes_decoder_pads_the_short_last_chunk_and_keeps_results():
    vae = tiny_vae()
    seen: list[int] = []
    decode = vae.decode

    def spy(z, *a, **k):
        seen.append(int(z.shape[0]))
        return decode(z, *a, **k)

    vae.decode = spy  # type: ignore[method-assign]
    z = torch.randn(1, 4, 10, 6, 6, generator=torch.Generator().manual_seed(3))
    padded = vae_decoder(vae, chunk=4, static_shapes=True)(z)
    assert seen == [4, 4, 4]  # 10 frames: the last chunk of 2 is padded to 4 for a compiled decoder
    seen.clear()
    plain = vae_decoder(vae, chunk=4)(z)
    assert seen == [4, 4, 2]
    assert padded.shape == plain.shape == (10, 12, 12, 3)
    torch.testing.assert_close(padded, plain, atol=1e-5, rtol=1e-5)
