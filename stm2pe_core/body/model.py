"""What the renderer needs from a body: a posed mesh with SMPL part labels, joints, face points.

Two implementations: :class:`~stm2pe_core.body.smpl.SMPLBody` (the real SMPL model through
``smplx``, when the user has the model files) and
:class:`~stm2pe_core.body.preview_body.PreviewBody` (built in; SMPL's kinematic tree dressed
in capsules and ellipsoids). :func:`load_body` picks one.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger("STM2PE")

BODY_CHOICES = ("auto", "smpl", "preview")
GENDERS = ("neutral", "male", "female")

# order of the face points a body returns (OpenPose's nose, eyes, ears)
FACE_POINTS = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")


@dataclass
class PosedBody:
    """A chunk of posed frames, world coordinates (y-up, metres)."""

    vertices: np.ndarray  # (n, V, 3) float32
    normals: np.ndarray  # (n, V, 3) float32 unit vertex normals
    joints: np.ndarray  # (n, 24, 3) SMPL joints
    face_points: np.ndarray  # (n, 5, 3) nose, right eye, left eye, right ear, left ear
    rotations: np.ndarray | None = None  # (n, 24, 3, 3) global joint rotations (hands/face drawing)


class BodyModel(ABC):
    """Interface; see the module docstring."""

    name: str = "body"
    is_preview: bool = False
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    parts: np.ndarray  # (V,) int, SMPL joint index of each vertex (CHAMP's semantic labels)

    @property
    def n_vertices(self) -> int:
        return int(self.parts.shape[0])

    @abstractmethod
    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:  # (24, 3)
        """Rest-pose joint positions for this body's shape."""

    @abstractmethod
    def pose(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray | None = None) -> PosedBody:
        """Pose ``n`` frames: ``poses`` (n,24,3) axis-angle, ``trans`` (n,3)."""


class NormalSolver:
    """Area-weighted vertex normals for a fixed triangle list, batched over frames.

    Sums face normals into vertices with one sparse (V x F) product, so a frame of SMPL
    (6890 vertices) costs well under a millisecond.
    """

    def __init__(self, faces: np.ndarray, n_vertices: int) -> None:
        import scipy.sparse as sp

        f = np.asarray(faces, dtype=np.int64)
        rows = f.reshape(-1)
        cols = np.repeat(np.arange(f.shape[0]), 3)
        self.faces = f
        self.incidence = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_vertices, f.shape[0]))

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        v = np.asarray(vertices, dtype=np.float64)
        lead = v.shape[:-2]
        v = v.reshape(-1, v.shape[-2], 3)
        e1 = v[:, self.faces[:, 1]] - v[:, self.faces[:, 0]]
        e2 = v[:, self.faces[:, 2]] - v[:, self.faces[:, 0]]
        fn = np.cross(e1, e2)  # (n, F, 3), length = 2 x area
        summed = self.incidence @ fn.transpose(1, 0, 2).reshape(fn.shape[1], -1)  # (V, n*3)
        out = summed.reshape(v.shape[1], v.shape[0], 3).transpose(1, 0, 2)
        out = out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        return out.reshape(*lead, v.shape[1], 3)


def load_body(kind: str = "auto", gender: str = "neutral", smpl_dir: str | Path | None = None) -> BodyModel:
    """The body to render with: SMPL from ``smpl_dir`` when its files are there, else the preview body.

    ``kind='smpl'`` requires the model file (a clear :class:`MissingModelError` names the folder);
    ``kind='preview'`` always uses the built-in body.
    """
    if kind not in BODY_CHOICES:
        raise InputError(f"unknown body {kind!r}; choose one of {BODY_CHOICES}")
    if gender not in GENDERS:
        raise InputError(f"unknown gender {gender!r}; choose one of {GENDERS}")
    if kind in ("auto", "smpl"):
        from .smpl import SMPLBody, find_smpl_file

        path = find_smpl_file(smpl_dir, gender, required=(kind == "smpl"))
        if path is not None:
            return SMPLBody.from_file(path, gender=gender)
        log.info("STM2PE: no SMPL model file in %s; using the built-in PREVIEW body", smpl_dir or "models/smpl")
    return _preview_body()


@lru_cache(maxsize=1)
def _preview_body() -> BodyModel:
    from .preview_body import PreviewBody

    return PreviewBody()
