"""M2PEnc: the Music-to-Pose Encoder of STM2PE-Diff.

Paper layout: per-frame music features -> FC ``D_in -> 4096`` -> a 64x64 map per frame -> L
alternating inflated 3D convolutions and 3D attention -> heads. Heads here:

- ``guidance``: (N, 320, 64, 64), the tensor CHAMP's summed guidance encoders add after the
  denoising UNet's ``conv_in`` (trained against their output, L1);
- ``heatmap``: (N, C_heat, 64, 64) keypoint heatmaps (MSE against Gaussian targets);
- ``smpl``: per frame 6D rotations of the 24 SMPL joints (joint 0 = the root orientation with
  its heading removed), the root motion (heading rate, horizontal velocity in the heading
  frame, height) and shape (10 betas, one per clip).

Choices made for a model that runs on a laptop CPU (30 s of music through the SMPL head in a
fraction of a second):

- **Reduced resolution.** Full 3D attention over N x 64 x 64 tokens (300k tokens for a 5 s
  window) is unaffordable, so the 64x64 map is patchified to a ``grid`` x ``grid`` map
  (default 4x4, i.e. 16x16-pixel patches) with ``channels`` (64) features, and the trunk works
  there (at 8x8 the SMPL path costs about 4x the CPU time). The heads that need
  64x64 outputs upsample back and also see the full-resolution FC map through a skip.
- **Factorised 3D attention.** Each attention layer attends spatially (the grid^2 tokens of a
  frame) and then temporally (the N frames of one grid cell), AnimateDiff-style, with
  sinusoidal frame positions. Attention is ``F.scaled_dot_product_attention`` directly; the
  diffusers ``Attention`` class would cost the CPU preview path a ~2 s diffusers import.
- **Inflated 3D convolution** is (2+1)D: a 3x3 convolution applied to every frame (AnimateDiff's
  ``InflatedConv3d``) followed by a depthwise temporal convolution, so the receptive field grows
  in time even before attention.
- **Root as rates.** Absolute heading and floor position are not functions of the music (a
  clip can start anywhere, facing anywhere: turns accumulate over a song), so the head
  predicts the heading's rate (rad/frame), the horizontal velocity in the body's heading frame
  (m/frame) and the absolute pelvis height; :func:`decode_root` integrates them. Windows fuse
  rates, and the integrated path and heading of a long song have no jumps at window joins.

Heads are evaluated only when asked for (``forward(x, heads=("smpl",))``): the guidance head
is as large as the rest together at N x 320 x 64 x 64.

The configuration is data (:class:`M2PEncConfig`) stored in the safetensors metadata and in a
``.json`` next to the weights; loading is strict and names missing/unexpected keys.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_write
from ..errors import WeightsError, bad_file

HEADS = ("smpl", "heatmap", "guidance")
CONFIG_KEY = "m2penc_config"
ROOT_DIM = 4  # heading rate, local vx, height, local vz
# the root head predicts in these units so its raw outputs are O(1): rad/frame, m/frame, m, m/frame
ROOT_OUT_SCALE = (0.05, 0.05, 1.0, 0.05)
ROT6D_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass
class M2PEncConfig:
    """Constructor arguments of :class:`M2PEnc`; saved with the weights."""

    in_dim: int = 36  # 35 librosa + beat channel; 4800 for Jukebox (+1 with beats)
    feature_kind: str = "librosa"  # MusicFeatures.kind the model was trained on
    map_size: int = 64  # FC output is map_size x map_size per frame (paper: 64)
    grid: int = 4  # trunk resolution after patchifying the map (CPU cost grows with grid^2)
    channels: int = 64
    num_layers: int = 4  # L: each layer = one inflated conv block + one 3D attention block
    num_heads: int = 4
    temporal_kernel: int = 5
    ff_mult: int = 2
    dropout: float = 0.0
    heads: tuple[str, ...] = ("smpl", "heatmap")  # heads that exist in the network
    trained_heads: tuple[str, ...] = ()  # heads whose weights were trained (others are init)
    heatmap_channels: int = 18
    guidance_channels: int = 320
    head_channels: int = 32  # width of the upsampling path of the 64x64 heads
    smpl_hidden: int = 256
    num_joints: int = 24
    num_betas: int = 10
    fps: float = 15.0
    window: int = 120  # frames per inference window (= training clip length)
    window_overlap: int = 30
    # de-averaging calibration (see stm2pe_core.motion_inference.apply_motion_gain): joint rotations'
    # deviation from their 1-s local mean is scaled by this factor at inference; fitted on the
    # TRAINING split (`python -m training calibrate`); 1.0 = the raw network output
    motion_gain: float = 1.0
    # per-joint largest rotation angle from rest (rad, 24 values) seen in the training corpus: the
    # calibrated pose never bends a joint further than this (or than the raw output does); () = no cap
    joint_angle_limits: tuple[float, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        self.heads = tuple(self.heads)
        self.trained_heads = tuple(self.trained_heads)
        self.joint_angle_limits = tuple(float(a) for a in self.joint_angle_limits)
        if self.motion_gain <= 0:
            raise ValueError(f"motion_gain must be > 0, got {self.motion_gain}")
        unknown = [h for h in self.heads if h not in HEADS]
        if unknown:
            raise ValueError(f"unknown M2PEnc heads {unknown}; choose from {HEADS}")
        if self.map_size % self.grid:
            raise ValueError(f"map_size {self.map_size} must be a multiple of grid {self.grid}")
        if self.channels % self.num_heads:
            raise ValueError(f"channels {self.channels} must be divisible by num_heads {self.num_heads}")
        if not 0 <= self.window_overlap < self.window:
            raise ValueError(f"window_overlap must be in [0, window), got {self.window_overlap}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["heads"] = list(self.heads)
        d["trained_heads"] = list(self.trained_heads)
        d["joint_angle_limits"] = list(self.joint_angle_limits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> M2PEncConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown M2PEnc config keys {unknown}; known: {sorted(names)}")
        return cls(**d)


def _group_norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, c), c, eps=1e-6)


def sinusoidal(n: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n, dim) sinusoidal positions (Transformer-style) for frame indices 0..n-1."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe.to(dtype)


class InflatedConvBlock(nn.Module):
    """Residual (2+1)D block: per-frame 3x3 conv, then a depthwise temporal conv."""

    def __init__(self, c: int, k_t: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _group_norm(c)
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.norm2 = _group_norm(c)
        self.temporal = nn.Conv1d(c, c, k_t, padding=k_t // 2, groups=c)
        self.mix = nn.Conv2d(c, c, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, b: int) -> torch.Tensor:  # x: (B*N, C, g, g)
        h = self.conv(F.silu(self.norm1(x)))
        bn, c, g, _ = h.shape
        n = bn // b
        t = F.silu(self.norm2(h))
        t = t.reshape(b, n, c, g * g).permute(0, 3, 2, 1).reshape(b * g * g, c, n)
        t = self.temporal(t).reshape(b, g * g, c, n).permute(0, 3, 2, 1).reshape(bn, c, g, g)
        h = self.mix(self.dropout(t)) + h
        return x + h


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over the second axis of (batch, tokens, C)."""

    def __init__(self, c: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.out = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(a.transpose(1, 2).reshape(b, t, c))


class Attention3DBlock(nn.Module):
    """Factorised 3D attention: spatial within a frame, then temporal per grid cell, then FF."""

    def __init__(self, c: int, heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.spatial = SelfAttention(c, heads)
        self.temporal = SelfAttention(c, heads)
        self.ff_norm = nn.LayerNorm(c)
        self.ff = nn.Sequential(nn.Linear(c, c * ff_mult), nn.GELU(), nn.Dropout(dropout), nn.Linear(c * ff_mult, c))

    def forward(self, x: torch.Tensor, b: int, pe: torch.Tensor) -> torch.Tensor:  # x: (B*N, C, g, g)
        bn, c, g, _ = x.shape
        n = bn // b
        s = x.flatten(2).transpose(1, 2)  # (B*N, g*g, C)
        s = self.spatial(s)
        t = s.reshape(b, n, g * g, c).transpose(1, 2).reshape(b * g * g, n, c)
        t = self.temporal(t + pe[None]) - pe[None]
        t = t + self.ff(self.ff_norm(t))
        return t.reshape(b, g * g, n, c).permute(0, 2, 3, 1).reshape(bn, c, g, g)


class UpsampleHead(nn.Module):
    """grid x grid trunk features (+ the 64x64 FC map) -> out_channels x 64 x 64."""

    def __init__(self, c: int, hidden: int, grid: int, map_size: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c, hidden, 1)
        stages = int(round(math.log2(map_size // grid)))
        if grid * 2**stages != map_size:
            raise ValueError(f"map_size / grid must be a power of two, got {map_size}/{grid}")
        self.ups = nn.ModuleList([nn.Conv2d(hidden, hidden, 3, padding=1) for _ in range(stages)])
        self.norms = nn.ModuleList([_group_norm(hidden) for _ in range(stages)])
        self.skip = nn.Conv2d(1, hidden, 3, padding=1)
        self.out = nn.Conv2d(hidden, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, fc_map: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        for conv, norm in zip(self.ups, self.norms):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = conv(F.silu(norm(h)))
        return self.out(F.silu(h + self.skip(fc_map)))


class SMPLHead(nn.Module):
    """Trunk features -> per-frame 6D rotations, root (dyaw, vx, y, vz), and clip-level betas."""

    def __init__(self, cfg: M2PEncConfig) -> None:
        super().__init__()
        squeeze = 8
        h = cfg.smpl_hidden
        self.squeeze = nn.Conv2d(cfg.channels, squeeze, 1)
        self.inp = nn.Linear(squeeze * cfg.grid * cfg.grid, h)
        self.temporal = nn.ModuleList(
            [nn.Conv1d(h, h, cfg.temporal_kernel, padding=cfg.temporal_kernel // 2) for _ in range(2)]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(h) for _ in range(2)])
        self.rot = nn.Linear(h, cfg.num_joints * 6)
        self.root = nn.Linear(h, ROOT_DIM)
        self.betas = nn.Linear(h, cfg.num_betas)
        self.num_joints = cfg.num_joints
        for lin in (self.rot, self.root, self.betas):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.register_buffer("rot_offset", torch.tensor(ROT6D_IDENTITY).repeat(cfg.num_joints), persistent=False)
        self.register_buffer("root_scale", torch.tensor(ROOT_OUT_SCALE), persistent=False)

    def forward(self, x: torch.Tensor, b: int) -> dict[str, torch.Tensor]:
        bn = x.shape[0]
        n = bn // b
        h = self.inp(self.squeeze(x).flatten(1)).reshape(b, n, -1)
        for conv, norm in zip(self.temporal, self.norms):
            h = h + conv(F.gelu(norm(h)).transpose(1, 2)).transpose(1, 2)
        rot6d = (self.rot(h) + self.rot_offset).reshape(b, n, self.num_joints, 6)
        return {"rot6d": rot6d, "root": self.root(h) * self.root_scale, "betas": self.betas(h.mean(1))}


class M2PEnc(nn.Module):
    """Music features (B, N, D_in) -> requested heads (see the module docstring)."""

    def __init__(self, config: M2PEncConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        cfg = config or M2PEncConfig(**kwargs)
        self.config = cfg
        self.fc = nn.Linear(cfg.in_dim, cfg.map_size * cfg.map_size)
        patch = cfg.map_size // cfg.grid
        self.patchify = nn.Conv2d(1, cfg.channels, patch, stride=patch)
        self.convs = nn.ModuleList(
            [InflatedConvBlock(cfg.channels, cfg.temporal_kernel, cfg.dropout) for _ in range(cfg.num_layers)]
        )
        self.attns = nn.ModuleList(
            [Attention3DBlock(cfg.channels, cfg.num_heads, cfg.ff_mult, cfg.dropout) for _ in range(cfg.num_layers)]
        )
        self.norm_out = _group_norm(cfg.channels)
        # input normalisation measured on the training corpus (saved with the weights)
        self.register_buffer("feat_mean", torch.zeros(cfg.in_dim))
        self.register_buffer("feat_std", torch.ones(cfg.in_dim))
        if "smpl" in cfg.heads:
            self.smpl_head = SMPLHead(cfg)
        if "heatmap" in cfg.heads:
            self.heatmap_head = UpsampleHead(
                cfg.channels, cfg.head_channels, cfg.grid, cfg.map_size, cfg.heatmap_channels
            )
        if "guidance" in cfg.heads:
            self.guidance_head = UpsampleHead(
                cfg.channels, cfg.head_channels * 2, cfg.grid, cfg.map_size, cfg.guidance_channels
            )

    # ------------------------------------------------------------------ forward
    def trunk(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        b, n, d = feats.shape
        if d != cfg.in_dim:
            raise ValueError(f"M2PEnc expects {cfg.in_dim}-d features, got {d}")
        feats = (feats - self.feat_mean) / self.feat_std
        fc_map = self.fc(feats).reshape(b * n, 1, cfg.map_size, cfg.map_size)
        x = self.patchify(fc_map)
        pe = sinusoidal(n, cfg.channels, x.device, x.dtype)
        for conv, attn in zip(self.convs, self.attns):
            x = conv(x, b)
            x = attn(x, b, pe)
        return F.silu(self.norm_out(x)), fc_map

    def forward(
        self, feats: torch.Tensor, heads: Iterable[str] | None = None, map_frames: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``feats`` (B, N, D_in) or (N, D_in). Returns a dict with the requested heads' outputs.

        smpl -> ``rot6d`` (B,N,24,6), ``root`` (B,N,4) = (dyaw, vx, y, vz), ``betas`` (B,10);
        heatmap -> ``heatmap`` (B,N,C_heat,64,64); guidance -> ``guidance`` (B,N,320,64,64).
        ``map_frames`` (indices into N) restricts the per-frame 64x64 heads to those frames
        (training uses a few frames per clip: the heads are per-frame, the trunk sees all).
        """
        squeeze = feats.ndim == 2
        if squeeze:
            feats = feats[None]
        want = tuple(self.config.heads if heads is None else heads)
        missing = [h for h in want if h not in self.config.heads]
        if missing:
            raise ValueError(f"this M2PEnc has no {missing} head(s); it has {list(self.config.heads)}")
        b, n = feats.shape[:2]
        x, fc_map = self.trunk(feats)
        out: dict[str, torch.Tensor] = {}
        if "smpl" in want:
            out.update(self.smpl_head(x, b))
        if "heatmap" in want or "guidance" in want:
            if map_frames is not None:
                m = len(map_frames)
                x = x.reshape(b, n, *x.shape[1:])[:, map_frames].reshape(b * m, *x.shape[1:])
                fc_map = fc_map.reshape(b, n, *fc_map.shape[1:])[:, map_frames].reshape(b * m, *fc_map.shape[1:])
                n = m
        if "heatmap" in want:
            hm = self.heatmap_head(x, fc_map)
            out["heatmap"] = hm.reshape(b, n, *hm.shape[1:])
        if "guidance" in want:
            g = self.guidance_head(x, fc_map)
            out["guidance"] = g.reshape(b, n, *g.shape[1:])
        if squeeze:
            out = {k: v[0] for k, v in out.items()}
        return out

    @torch.no_grad()
    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the corpus' per-column mean/std (std floored so constant columns stay finite)."""
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=self.feat_mean.dtype))
        self.feat_std.copy_(torch.as_tensor(std, dtype=self.feat_std.dtype).clamp_min(1e-3))

    # ------------------------------------------------------------------ files
    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write ``path`` (.safetensors, config in its metadata) and ``path.json`` beside it."""
        from safetensors.torch import save_file

        path = Path(path)
        if path.suffix != ".safetensors":
            path = path / "m2penc.safetensors" if path.is_dir() or not path.suffix else path.with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in self.state_dict().items()
        }
        cfg_json = json.dumps(self.config.to_dict(), indent=2, sort_keys=True)
        with atomic_write(path) as tmp:
            save_file(state, str(tmp), metadata={CONFIG_KEY: cfg_json, "format": "pt"})
        with atomic_write(path.with_suffix(".json")) as tmp:
            tmp.write_text(cfg_json + "\n")
        return path

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> M2PEnc:
        """Strictly load a file written by :meth:`save_pretrained`."""
        from ..weights.loading import load_strict, read_state_dict

        cfg = load_config(path)
        model = cls(cfg)
        load_strict(model, read_state_dict(path), path, dtype=torch.float32)
        return model.to(device=device, dtype=dtype).eval()


def load_config(path: str | Path) -> M2PEncConfig:
    """Config from the safetensors metadata, else from the ``.json`` next to the file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise bad_file(
            path,
            "M2PEnc weights file not found",
            "Put an M2PEnc .safetensors file in models/stm2pe or pick 'default (bundled)'",
        )
    raw: str | None = None
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(CONFIG_KEY)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file for the user
        raise WeightsError(
            f"{path.name}: not a readable safetensors file ({exc}). Re-export it with `python -m training export`."
        ) from exc
    if raw is None and path.with_suffix(".json").is_file():
        raw = path.with_suffix(".json").read_text()
    if raw is None:
        raise WeightsError(
            f"{path.name}: no M2PEnc config in its metadata and no {path.with_suffix('.json').name} beside it. Re-export it with `python -m training export`."
        )
    try:
        return M2PEncConfig.from_dict(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path.name}: bad M2PEnc config: {exc}") from exc


def yaw_of(rot: torch.Tensor) -> torch.Tensor:
    """Heading angle (rad) of root orientations (..., 3, 3): direction of the body's +z in x-z."""
    fwd = rot[..., :, 2]
    return torch.atan2(fwd[..., 0], fwd[..., 2])


def rot_y(angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) about +y by ``angle`` (rad)."""
    c, s = torch.cos(angle), torch.sin(angle)
    z, o = torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([c, z, s, z, o, z, -s, z, c], dim=-1).reshape(*angle.shape, 3, 3)


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def encode_root(root_rot: torch.Tensor, trans: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Root orientation (..., N, 3, 3) + ``transl`` (..., N, 3) -> heading-free root orientation
    (..., N, 3, 3) and rates (..., N, 4) = (dyaw, vx, y, vz); velocities in the heading frame.

    Frame 0's rates copy frame 1's, so they carry no spike; :func:`decode_root` ignores them.
    """
    yaw = yaw_of(root_rot)
    heading = rot_y(yaw)
    local = heading.transpose(-1, -2) @ root_rot
    dyaw = _wrap(yaw[..., 1:] - yaw[..., :-1])
    vel = trans[..., 1:, :] - trans[..., :-1, :]
    vel = (heading[..., 1:, :, :].transpose(-1, -2) @ vel[..., None])[..., 0]
    dyaw = torch.cat([dyaw[..., :1], dyaw], dim=-1)
    vel = torch.cat([vel[..., :1, :], vel], dim=-2)
    rates = torch.stack([dyaw, vel[..., 0], trans[..., 1], vel[..., 2]], dim=-1)
    return local, rates


def decode_root(
    local_rot: torch.Tensor, rates: torch.Tensor, yaw0: float | torch.Tensor = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`encode_root`: integrate heading and path from frame 0 (at the origin,
    heading ``yaw0``). Returns root orientations (..., N, 3, 3) and ``transl`` (..., N, 3)."""
    dyaw = rates[..., 0]
    yaw = torch.cumsum(dyaw, dim=-1) - dyaw[..., :1] + yaw0
    heading = rot_y(yaw)
    v = torch.stack([rates[..., 1], torch.zeros_like(rates[..., 1]), rates[..., 3]], dim=-1)
    vw = (heading @ v[..., None])[..., 0]
    xz = torch.cumsum(vw, dim=-2) - vw[..., :1, :]
    trans = torch.stack([xz[..., 0], rates[..., 2], xz[..., 2]], dim=-1)
    return heading @ local_rot, trans


def count_parameters(model: nn.Module, head: str | None = None) -> int:
    prefix = f"{head}_head." if head else ""
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))


__all__ = [
    "HEADS",
    "M2PEnc",
    "M2PEncConfig",
    "load_config",
    "decode_root",
    "encode_root",
    "rot_y",
    "yaw_of",
    "count_parameters",
]
