"""Values that flow between pipeline steps (and between ComfyUI nodes).

Plain dataclasses of numpy arrays / torch tensors, so each step's output can be saved,
inspected and fed to the next step from the CLI, from training or from ComfyUI.
Conventions: frames on the first axis; SMPL world is y-up, metres; images are float32 RGB
in [0, 1] with shape (N, H, W, 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_FPS = 15.0  # STM2PE-Diff trains and generates at 15 fps
SEGMENT_SECONDS = 5.0  # one diffusion segment: 75 frames at 15 fps


def frame_count(duration: float, fps: float) -> int:
    """Number of video frames whose start time lies inside ``[0, duration)``."""
    return int(np.floor(duration * fps + 1e-6))


@dataclass(frozen=True)
class Music:
    """Decoded music plus the rhythm analysis every later step uses."""

    waveform: np.ndarray  # (T,) mono float32 at sample_rate
    sample_rate: int
    fps: float  # video frame rate the analysis is aligned to
    n_frames: int  # N = frame_count(duration, fps)
    beat_times: np.ndarray  # (B,) seconds from the start of the excerpt
    tempo: float  # BPM
    onset_envelope: np.ndarray  # (N,) onset strength per video frame, max-normalised to [0, 1]
    source: str  # file name (or "AUDIO input")
    content_hash: str  # hash of the decoded excerpt + analysis parameters (cache key part)
    offset: float = 0.0  # seconds skipped at the start of the file
    downbeat_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # --- added by the audio front end (stm2pe_core.audio) ---
    section_times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # section starts (s, on downbeats)
    source_path: str = ""  # file the excerpt came from ("" for an in-memory AUDIO input)
    native_audio: np.ndarray | None = None  # (T,) mono at native_sample_rate, kept only for AUDIO inputs
    native_sample_rate: int = 0  # rate of the file / AUDIO input (Jukebox re-reads it at 44.1 kHz)

    @property
    def duration(self) -> float:
        return len(self.waveform) / float(self.sample_rate)

    @property
    def frame_times(self) -> np.ndarray:
        return np.arange(self.n_frames, dtype=np.float64) / self.fps

    @property
    def beat_frames(self) -> np.ndarray:
        """Beat indices on the video frame grid (rounded)."""
        idx = np.round(self.beat_times * self.fps).astype(np.int64)
        return idx[(idx >= 0) & (idx < self.n_frames)]


@dataclass(frozen=True)
class MusicFeatures:
    """Per-frame music features: row i describes video frame i (time i / fps)."""

    features: np.ndarray  # (N, D) float32
    kind: str  # "jukebox" | "librosa"
    fps: float
    columns: tuple[tuple[str, int], ...]  # (name, width) groups in column order
    source_hash: str

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def column_slice(self, name: str) -> slice:
        start = 0
        for col, width in self.columns:
            if col == name:
                return slice(start, start + width)
            start += width
        raise KeyError(f"no feature column {name!r}; have {[c for c, _ in self.columns]}")


@dataclass(frozen=True)
class Motion:
    """SMPL motion in a y-up world, metres."""

    poses: np.ndarray  # (N, 24, 3) axis-angle; joint 0 is the global orientation
    trans: np.ndarray  # (N, 3) SMPL ``transl``
    betas: np.ndarray  # (10,) shape
    fps: float
    source: str = ""

    @property
    def n_frames(self) -> int:
        return int(self.poses.shape[0])

    def __post_init__(self) -> None:
        if self.poses.ndim != 3 or self.poses.shape[1:] != (24, 3):
            raise ValueError(f"Motion.poses must be (N, 24, 3), got {self.poses.shape}")
        if self.trans.shape != (self.poses.shape[0], 3):
            raise ValueError(f"Motion.trans must be (N, 3) matching poses, got {self.trans.shape}")


@dataclass(frozen=True)
class GuidanceMaps:
    """Rendered per-frame guidance in CHAMP's conventions."""

    maps: dict[str, np.ndarray]  # name in {depth, normal, semantic_map, dwpose} -> (N, H, W, 3)
    fps: float
    size: tuple[int, int]  # (H, W)
    keypoints: np.ndarray | None = None  # (N, K, 3): x, y in pixels, confidence
    heatmaps: np.ndarray | None = None  # (N, K, h, w) float32 in [0, 1]
    mask: np.ndarray | None = None  # (N, H, W) bool body silhouette

    @property
    def n_frames(self) -> int:
        return next(iter(self.maps.values())).shape[0] if self.maps else 0


@dataclass
class PoseGuidance:
    """Features to add right after the denoising UNet's ``conv_in`` (CHAMP injection point)."""

    features: Any  # torch.Tensor (N, 320, h, w)
    fps: float
    origin: str  # e.g. "m2penc", "guidance_encoder:depth+normal+semantic_map"
