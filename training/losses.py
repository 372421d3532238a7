"""Stage-1 losses: SMPL (rotations, FK positions, velocities, accelerations, root rates, path,
foot sliding), keypoint heatmaps (MSE against Gaussians made on the fly) and pose guidance (L1).

Plain L2 on poses averages ambiguous motion into a still, mushy dance; the L1 terms on joint
velocities and accelerations are what keep the model's motion as energetic and as sharp on the
beat as the teacher's.
"""

from __future__ import annotations

import torch

from stm2pe_core.body.rotations import axis_angle_to_matrix, rot6d_to_matrix
from stm2pe_core.body.skeleton import _global_transforms, rest_joints
from stm2pe_core.models.m2penc import decode_root, encode_root

from .config import LossConfig

FEET = (7, 10, 8, 11)
ROOT_SCALE = (20.0, 20.0, 1.0, 20.0)  # dyaw (rad/frame), vx, y (m), vz (m/frame): similar magnitudes


def local_joints(rot: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """FK (…, N, 24, 3, 3) local rotations -> joint positions (…, N, 24, 3), no translation."""
    shape = rot.shape[:-3]
    _, pos = _global_transforms(rot.reshape(-1, 24, 3, 3), rest)
    return pos.reshape(*shape, 24, 3)


def targets_from_motion(poses: torch.Tensor, trans: torch.Tensor) -> dict[str, torch.Tensor]:
    """Teacher clip (B, N, 24, 3) axis-angle + (B, N, 3) -> heading-free rotations and root rates."""
    rot = axis_angle_to_matrix(poses)
    local0, rates = encode_root(rot[..., 0, :, :], trans)
    rot_local = torch.cat([local0[..., None, :, :], rot[..., 1:, :, :]], dim=-3)
    return {"rot": rot_local, "rates": rates}


def global_joints(
    local_pos: torch.Tensor, local_root: torch.Tensor, rates: torch.Tensor, rest0: torch.Tensor
) -> torch.Tensor:
    """Place heading-free joints in the world by integrating the root rates (start at origin)."""
    root_rot, trans = decode_root(local_root, rates)
    heading = root_rot @ local_root.transpose(-1, -2)  # pure yaw
    rel = local_pos - rest0
    return rest0 + (heading[..., None, :, :] @ rel[..., None])[..., 0] + trans[..., None, :]


def smpl_losses(
    pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], w: LossConfig
) -> dict[str, torch.Tensor]:
    dtype = torch.float32
    tgt = targets_from_motion(batch["poses"].to(dtype), batch["trans"].to(dtype))
    rest = torch.as_tensor(rest_joints(), dtype=dtype, device=tgt["rot"].device)
    prot = rot6d_to_matrix(pred["rot6d"].to(dtype))
    prates = pred["root"].to(dtype)
    out: dict[str, torch.Tensor] = {}
    out["rot"] = (prot - tgt["rot"]).abs().mean()
    pj = local_joints(prot, rest)
    tj = local_joints(tgt["rot"], rest)
    out["fk"] = (pj - tj).abs().mean()
    pv, tv = pj[:, 1:] - pj[:, :-1], tj[:, 1:] - tj[:, :-1]
    out["vel"] = (pv - tv).abs().mean() * 10.0  # m/frame is small; x10 puts it near fk's scale
    out["acc"] = ((pv[:, 1:] - pv[:, :-1]) - (tv[:, 1:] - tv[:, :-1])).abs().mean() * 10.0
    # speed magnitude per joint: where the teacher's move is ambiguous, averaging two moves cancels
    # their velocity vectors but not their speeds, so this term keeps the dance energetic and its
    # speed envelope (what BAS reads) shaped like the teacher's
    out["speed"] = (pv.norm(dim=-1) - tv.norm(dim=-1)).abs().mean() * 10.0
    scale = torch.tensor(ROOT_SCALE, dtype=dtype, device=prates.device)
    out["root"] = ((prates - tgt["rates"]).abs() * scale).mean()
    pg = global_joints(pj, prot[..., 0, :, :], prates, rest[0])
    tg = global_joints(tj, tgt["rot"][..., 0, :, :], tgt["rates"], rest[0])
    out["traj"] = (pg - tg).abs().mean()
    # foot sliding: where the teacher's foot joint is planted (slow and low), the model's should be too
    tf, pf = tg[:, :, list(FEET)], pg[:, :, list(FEET)]
    tspeed = (tf[:, 1:, :, [0, 2]] - tf[:, :-1, :, [0, 2]]).norm(dim=-1)
    low = tf[:, 1:, :, 1] < tf[..., 1].amin(dim=1, keepdim=True) + 0.03
    planted = ((tspeed < 0.005) & low).to(dtype)
    pspeed = (pf[:, 1:, :, [0, 2]] - pf[:, :-1, :, [0, 2]]).norm(dim=-1)
    # zero for a perfect match; penalises any extra foot speed (sliding) where the teacher is planted
    out["contact"] = (planted * (pspeed - tspeed).abs()).sum() / planted.sum().clamp_min(1.0) * 10.0
    out["betas"] = (pred["betas"].to(dtype) - batch["betas"].to(dtype)).abs().mean()
    out["loss_smpl"] = sum(
        getattr(w, k) * out[k] for k in ("rot", "fk", "vel", "acc", "speed", "root", "traj", "contact", "betas")
    )
    return out


def gaussian_heatmaps(
    keypoints: torch.Tensor, image_size: tuple[int, int], size: int = 64, sigma: float = 1.5
) -> torch.Tensor:
    """(…, K, 3) keypoints (x, y pixels of ``image_size`` = (H, W), confidence) -> (…, K, size, size).

    A batched torch twin of :func:`stm2pe_core.render.openpose.heatmaps` (same pixel-centre
    convention, peak 1, empty below its confidence threshold), so targets are made on the GPU.
    """
    from stm2pe_core.render.openpose import CONF_THRESHOLD

    h, w = image_size
    cx = (keypoints[..., 0] + 0.5) * (size / w)
    cy = (keypoints[..., 1] + 0.5) * (size / h)
    on = (keypoints[..., 2] >= CONF_THRESHOLD).to(keypoints.dtype)
    grid = torch.arange(size, device=keypoints.device, dtype=keypoints.dtype) + 0.5
    gx = torch.exp(-((grid - cx[..., None]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((grid - cy[..., None]) ** 2) / (2 * sigma**2))
    return gy[..., :, None] * gx[..., None, :] * on[..., None, None]


def heatmap_loss(
    pred: torch.Tensor, keypoints: torch.Tensor, image_size: tuple[int, int], sigma: float
) -> torch.Tensor:
    target = gaussian_heatmaps(keypoints.float(), image_size, pred.shape[-1], sigma)
    return ((pred.float() - target) ** 2).mean()


def guidance_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_guid = mean |f - f_hat| (paper)."""
    return (pred.float() - target.float()).abs().mean()


def total_loss(
    pred: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    w: LossConfig,
    heatmap_sigma: float,
    image_size: tuple[int, int] | None,
) -> dict[str, torch.Tensor]:
    # losses in float32 even under bf16/fp16 autocast: FK and frame differences of positions
    # (a few mm per frame) drown in half-precision rounding otherwise
    with torch.autocast(device_type=batch["features"].device.type, enabled=False):
        return _total_loss_fp32(pred, batch, w, heatmap_sigma, image_size)


def _total_loss_fp32(pred, batch, w: LossConfig, heatmap_sigma: float, image_size) -> dict[str, torch.Tensor]:
    pred = {k: v.float() for k, v in pred.items()}
    parts: dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=batch["features"].device)
    if "rot6d" in pred:
        parts.update(smpl_losses(pred, batch, w))
        total = total + parts["loss_smpl"]
    if "heatmap" in pred and "keypoints" in batch and image_size is not None:
        parts["heatmap"] = heatmap_loss(pred["heatmap"], batch["keypoints"], image_size, heatmap_sigma)
        total = total + w.heatmap * parts["heatmap"]
    if "guidance" in pred and "guidance" in batch:
        parts["guidance"] = guidance_loss(pred["guidance"], batch["guidance"])
        total = total + w.guidance * parts["guidance"]
    parts["loss"] = total
    return parts
