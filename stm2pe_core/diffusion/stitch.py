"""Stitch Segments: segment latents -> one blended latent sequence -> decoded frames -> mp4.

Segments are blended in latent space with the plan's linear cross-fade weights (the arithmetic
of :func:`stm2pe_core.windows.fuse_windows`), and everything streams: a frame's latents are
decoded as soon as no later segment touches them, in chunks of ``chunk`` frames, and each
decoded chunk goes straight to the :class:`~stm2pe_core.video.VideoWriter`. Peak memory is
one segment of latents plus one decode chunk of frames, whatever the song's length, unless the
caller asks to keep the frames (ComfyUI's IMAGE output).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..progress import Progress
from ..video.writer import VideoWriter, as_audio_track, as_fraction
from ..windows import Window
from .segments import Segment, SegmentPlan, plan_from_windows

# (1, 4, f, h, w) latents -> (f, H, W, 3) float frames in [0, 1] on the CPU
Decoder = Callable[[torch.Tensor], torch.Tensor]


def vae_decoder(vae: Any, chunk: int = 8, static_shapes: bool = False) -> Decoder:
    """The decoder for a diffusers ``AutoencoderKL`` (SD1.5 scale), via the diffusion stack.

    ``static_shapes`` (for a compiled decoder) pads a song's short last chunk instead of letting
    torch.compile build a second graph for it."""
    from .reference import vae_decode

    return lambda z: vae_decode(vae, z, chunk=chunk, static_shapes=static_shapes)


def trim_audio(audio: Any, n_frames: int, fps: float | Fraction, sample_rate: int | None = None) -> dict | None:
    """ComfyUI AUDIO ``{"waveform": [1, C, T], "sample_rate"}`` cut to ``n_frames / fps`` seconds."""
    if audio is None:
        return None
    track = as_audio_track(audio, sample_rate)
    keep = int(round(float(n_frames / as_fraction(fps)) * track.sample_rate))
    wave = torch.from_numpy(np.ascontiguousarray(track.samples[:, :keep]))[None]
    return {"waveform": wave, "sample_rate": track.sample_rate}


class SongAssembler:
    """Feed segment latents in plan order; frames come out decoded, in order, exactly once.

    ``writer`` (optional) receives every decoded frame; ``keep_frames`` also collects them (for
    an IMAGE output). ``progress(done, total)`` counts decoded frames of the whole song.
    """

    def __init__(
        self,
        plan: SegmentPlan,
        decode: Decoder,
        writer: VideoWriter | None = None,
        keep_frames: bool = False,
        chunk: int = 8,
        progress: Progress | None = None,
    ) -> None:
        from .segments import LatentStitcher

        self.plan, self.decode, self.writer = plan, decode, writer
        self.stitcher = LatentStitcher(plan, axis=2)
        self.keep_frames, self.chunk, self.progress = keep_frames, max(1, int(chunk)), progress
        self.kept: list[torch.Tensor] = []
        self.frames_done = 0
        self.last_frame: torch.Tensor | None = None

    def add(self, seg: Segment, latents: torch.Tensor) -> int:
        """Blend one segment in; decode and emit what became final. Returns frames emitted so far."""
        if latents.ndim != 5 or latents.shape[0] != 1:
            raise InputError(f"segment latents must be (1, C, F, h, w), got {tuple(latents.shape)}")
        start, final = self.stitcher.add(seg, latents.float().cpu())
        if start is None:
            return self.frames_done
        if start != self.frames_done:
            raise RuntimeError(f"stitcher released frame {start} but {self.frames_done} frames were emitted")
        for i in range(0, final.shape[2], self.chunk):
            frames = self.decode(final[:, :, i : i + self.chunk])
            if self.writer is not None:
                self.writer.write(frames)
            if self.keep_frames:
                self.kept.append(frames.float().cpu())
            self.last_frame = frames[-1].float().cpu()
            self.frames_done += int(frames.shape[0])
            if self.progress is not None:
                self.progress(self.frames_done, self.plan.total)
        return self.frames_done

    def frames(self) -> torch.Tensor | None:
        """All kept frames (N, H, W, 3), or None when not kept."""
        if not self.keep_frames:
            return None
        return torch.cat(self.kept) if self.kept else torch.zeros(0, 1, 1, 3)


@dataclass
class Stitched:
    """What Stitch Segments returns."""

    frames: torch.Tensor | None  # (N, H, W, 3) float in [0, 1] (None when not kept)
    n_frames: int
    fps: float
    audio: dict | None  # ComfyUI AUDIO trimmed to the frames
    path: Path | None  # the mp4, when one was written
    last_frame: torch.Tensor | None = None


def segments_plan(segments: Sequence[Any]) -> SegmentPlan:
    """Plan for segments that carry ``start``/``stop`` (SegmentLatents), sorted by start."""
    if not segments:
        raise InputError("no segments to stitch. Denoise at least one segment first")
    windows = [Window(int(s.start), int(s.stop)) for s in segments]
    if windows[0].start != 0:
        raise InputError(f"the first segment starts at frame {windows[0].start}; segments must start at frame 0")
    try:
        return plan_from_windows(windows, windows[-1].stop)
    except ValueError as exc:
        raise InputError(f"these segments cannot be stitched: {exc}. Pass the segments of one song in order") from exc


def stitch_segments(
    segments: Sequence[Any],
    decode: Decoder,
    fps: float,
    audio: Any = None,
    path: str | Path | None = None,
    keep_frames: bool = True,
    chunk: int = 8,
    progress: Progress | None = None,
    **writer_options: Any,
) -> Stitched:
    """Blend ``segments`` (objects with ``latents`` (1, 4, F, h, w), ``start``, ``stop``) into one
    video: frames (if ``keep_frames``), audio trimmed to them, and an mp4 at ``path`` (atomic; on
    cancel nothing is left)."""
    ordered = sorted(segments, key=lambda s: int(s.start))
    plan = segments_plan(ordered)
    for seg, s in zip(plan, ordered):
        if int(s.latents.shape[2]) != seg.length:
            raise InputError(f"segment [{seg.start}, {seg.stop}) holds {int(s.latents.shape[2])} latent frames")
    writer = VideoWriter(path, fps, audio, **writer_options) if path is not None else None
    asm = SongAssembler(plan, decode, writer, keep_frames, chunk, progress)
    if writer is not None:
        with writer:
            for seg, s in zip(plan, ordered):
                asm.add(seg, s.latents)
    else:
        for seg, s in zip(plan, ordered):
            asm.add(seg, s.latents)
    return Stitched(
        frames=asm.frames(),
        n_frames=asm.frames_done,
        fps=float(fps),
        audio=trim_audio(audio, asm.frames_done, fps),
        path=None if writer is None else writer.path,
        last_frame=asm.last_frame,
    )
