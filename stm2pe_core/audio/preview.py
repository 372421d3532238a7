"""A picture of per-frame music features: what Jukebox Encode produced, at a glance.

Time runs left to right (one column per video frame, stretched to the image width); feature
groups are stacked top to bottom, each column group standardised so that every group is
visible; beats are white ticks along the bottom, downbeats taller, section starts red lines.
"""

from __future__ import annotations

import numpy as np

from ..types import Music, MusicFeatures

MAX_ROWS = 192  # Jukebox's 4800 columns are averaged down to this many image rows


def feature_image(feats: MusicFeatures, music: Music | None = None, width: int = 768, height: int = 320) -> np.ndarray:
    """(height, width, 3) float32 RGB in [0, 1]."""
    import cv2

    x = np.asarray(feats.features, np.float32)
    n, d = x.shape
    if d > MAX_ROWS:  # average neighbouring columns
        edges = np.linspace(0, d, MAX_ROWS + 1).astype(int)
        x = np.stack([x[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    mu, sd = x.mean(axis=0, keepdims=True), x.std(axis=0, keepdims=True)
    z = np.clip((x - mu) / (sd + 1e-6) / 3.0 + 0.5, 0.0, 1.0)  # +-1.5 sd -> [0, 1]
    tick_h = max(8, height // 16)
    body_h = height - tick_h
    img8 = cv2.resize((z.T * 255).astype(np.uint8), (width, body_h), interpolation=cv2.INTER_NEAREST)
    rgb = cv2.applyColorMap(img8, cv2.COLORMAP_VIRIDIS)[:, :, ::-1].astype(np.float32) / 255.0
    canvas = np.zeros((height, width, 3), np.float32)
    canvas[:body_h] = rgb
    if music is not None and n > 0:

        def col(t: float) -> int:
            return int(np.clip(round(t * feats.fps / n * width), 0, width - 1))

        for t in music.beat_times:
            canvas[body_h + tick_h // 2 :, col(t)] = 1.0
        for t in music.downbeat_times:
            canvas[body_h:, col(t)] = 1.0
        for t in music.section_times:
            canvas[:, col(t)] = (1.0, 0.1, 0.1)
    return canvas


def summary(feats: MusicFeatures, music: Music | None = None) -> str:
    cols = ", ".join(f"{name}[{w}]" for name, w in feats.columns)
    text = f"{feats.kind} features: {feats.features.shape[0]} frames x {feats.dim} at {feats.fps:g} fps ({cols})"
    if music is not None:
        text += (
            f"\n{music.source}: {music.duration:.2f} s from {music.offset:.2f} s, tempo {music.tempo:.1f} BPM, "
            f"{len(music.beat_times)} beats, {len(music.downbeat_times)} downbeats, sections at "
            f"{', '.join(f'{t:.1f}' for t in music.section_times) or 'none'} s"
        )
    return text
