"""Reading videos back: stream facts (for tests, benches and checks) and decoded frames."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import bad_file


@dataclass(frozen=True)
class VideoInfo:
    """What a file holds, as decoded (frame count is counted, not taken from the header)."""

    frames: int
    fps: Fraction
    width: int
    height: int
    duration: float  # frames / fps
    codec: str
    pix_fmt: str
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None
    audio_duration: float | None = None  # seconds of decoded samples (encoder priming excluded)


def video_info(path: str | os.PathLike[str], *, decode_audio: bool = True) -> VideoInfo:
    """Decode ``path`` once and report exact counts."""
    import av

    p = Path(path)
    if not p.is_file():
        raise bad_file(p, "file not found", "Check the path")
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise bad_file(p, "has no video stream", "Pass a video file")
            vs = c.streams.video[0]
            fps = Fraction(vs.average_rate) if vs.average_rate else Fraction(vs.guessed_rate)
            n = sum(1 for _ in c.decode(vs))
            info = dict(
                frames=n,
                fps=fps,
                width=vs.codec_context.width,
                height=vs.codec_context.height,
                duration=float(n / fps),
                codec=vs.codec_context.name,
                pix_fmt=vs.codec_context.pix_fmt or "",
            )
        if decode_audio:
            with av.open(str(p)) as c:
                if c.streams.audio:
                    a = c.streams.audio[0]
                    samples = sum(f.samples for f in c.decode(a))
                    info.update(
                        audio_codec=a.codec_context.name,
                        audio_rate=a.rate,
                        audio_channels=a.channels,
                        audio_duration=samples / float(a.rate),
                    )
    except av.FFmpegError as exc:
        raise bad_file(p, f"cannot be decoded ({exc})", "Re-export it as mp4 (H.264)") from exc
    return VideoInfo(**info)


def iter_frames(path: str | os.PathLike[str], indices: Sequence[int] | None = None) -> Iterator[np.ndarray]:
    """Yield (H, W, 3) uint8 RGB frames (all, or only ``indices`` in increasing order)."""
    import av

    wanted = None if indices is None else set(int(i) for i in indices)
    last = None if wanted is None else max(wanted, default=-1)
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if last is not None and i > last:
                break
            if wanted is None or i in wanted:
                yield frame.to_ndarray(format="rgb24")


def save_frames_png(
    path: str | os.PathLike[str], indices: Sequence[int], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write the frames at ``indices`` as PNGs (for looking at a result)."""
    import av

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    order = sorted(set(int(i) for i in indices))
    for i, arr in zip(order, iter_frames(path, order)):
        target = out / f"{Path(path).stem}_{i:05d}.png"
        av.VideoFrame.from_ndarray(arr, format="rgb24").to_image().save(target)
        written.append(target)
    return written
