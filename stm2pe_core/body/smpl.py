"""The real SMPL body through ``smplx``, from model files the user puts in ``models/smpl/``.

SMPL is licensed per user (https://smpl.is.tue.mpg.de), so the pack ships none. Accepted files:
``SMPL_NEUTRAL|MALE|FEMALE.npz`` / ``.pkl`` (smplx's names) or the official download names
(``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl``, ``basicmodel_m_lbs_10_207_0_v1.1.0.pkl`` ...).

We never hand a pickle to ``pickle.load``: ``.npz`` files are read with ``allow_pickle=False``
and ``.pkl`` files through :mod:`.safe_pickle` (numpy arrays only; scipy sparse matrices and
plain chumpy ``Ch`` arrays are rebuilt from their stored numbers). The arrays then reach
``smplx.SMPL`` through its ``data_struct`` argument, so smplx's LBS does the posing.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingModelError, bad_file
from .model import FACE_POINTS, BodyModel, NormalSolver, PosedBody
from .safe_pickle import safe_load, to_plain
from .skeleton import SMPL_PARENTS, global_transforms

log = logging.getLogger("STM2PE")

SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
# SMPL vertex ids of OpenPose's face points (smplx's vertex_ids table, SMPL/SMPL-H topology)
SMPL_FACE_VERTEX_IDS = {"nose": 332, "right_eye": 6260, "left_eye": 2800, "right_ear": 4071, "left_ear": 583}
SMPL_VERTEX_COUNT = 6890

_CONVERT_HINT = (
    "Convert it once to .npz on a machine where you trust the file, e.g. "
    "`python -c \"import pickle,numpy as np; d=pickle.load(open('IN.pkl','rb'),encoding='latin1'); "
    "np.savez('SMPL_NEUTRAL.npz', **{k: np.array(v.todense() if hasattr(v,'todense') else v) "
    "for k,v in d.items() if k in ('v_template','shapedirs','posedirs','J_regressor','weights','kintree_table','f')})\"` "
    "(needs chumpy installed), then put the .npz in models/smpl/."
)


def _candidate_names(gender: str) -> list[str]:
    g = gender.upper()
    return [f"SMPL_{g}.npz", f"SMPL_{g}.pkl", f"smpl_{gender}.npz", f"smpl_{gender}.pkl"]


_OFFICIAL = {
    "neutral": re.compile(r"basicmodel_neutral_lbs_10_207_0_v1\.\d\.\d\.(pkl|npz)$", re.I),
    "male": re.compile(r"basicmodel_m_lbs_10_207_0_v1\.\d\.\d\.(pkl|npz)$", re.I),
    "female": re.compile(r"basicmodel_f_lbs_10_207_0_v1\.\d\.\d\.(pkl|npz)$", re.I),
}


def find_smpl_file(smpl_dir: str | Path | None, gender: str = "neutral", required: bool = False) -> Path | None:
    """The SMPL model file for ``gender`` in ``smpl_dir`` (npz preferred), or None."""
    folder = Path(smpl_dir) if smpl_dir else None
    if folder is not None and folder.is_file():
        return folder
    if folder is not None and folder.is_dir():
        for name in _candidate_names(gender):
            if (folder / name).is_file():
                return folder / name
        found = sorted(
            (p for p in folder.iterdir() if _OFFICIAL[gender].search(p.name)), key=lambda p: p.suffix != ".npz"
        )
        if found:
            return found[0]
    if required:
        where = folder or Path("models/smpl")
        raise MissingModelError(
            f"The SMPL body needs SMPL_{gender.upper()}.npz (or .pkl) in {where}. Download SMPL from "
            "https://smpl.is.tue.mpg.de (free registration, SMPL licence), put the file there, or choose "
            "body='preview' / 'auto' to render with the built-in preview body."
        )
    return None


def read_smpl_file(path: str | Path) -> dict[str, np.ndarray]:
    """SMPL arrays from ``path`` without unpickling code; validated key set and shapes."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                raw: dict[str, Any] = {k: z[k] for k in z.files}
        except ValueError as exc:
            raise bad_file(
                p, f"the .npz stores pickled objects ({exc})", "Save the SMPL arrays as plain numeric arrays."
            ) from exc
    elif p.suffix.lower() == ".pkl":
        raw = safe_load(p, allow_stubs=True, what="SMPL model file")
        if not isinstance(raw, dict):
            raise bad_file(p, "not a dict of SMPL arrays", "Use the official SMPL model file.")
        try:
            raw = to_plain({k: v for k, v in raw.items() if k in SMPL_KEYS})
        except ValueError as exc:
            raise bad_file(p, f"contains {exc} that cannot be read without running chumpy code", _CONVERT_HINT) from exc
    else:
        raise bad_file(p, f"unsupported extension {p.suffix!r}", "Use SMPL_NEUTRAL.npz or .pkl.")
    missing = [k for k in SMPL_KEYS if k not in raw]
    if missing:
        raise bad_file(
            p, f"missing SMPL arrays {missing} (found {sorted(raw)})", "Use an SMPL (not SMPL-X/MANO) model file."
        )
    d = {k: np.asarray(raw[k]) for k in SMPL_KEYS}
    v = d["v_template"].shape[0]
    checks = {
        "v_template": d["v_template"].shape == (v, 3),
        "shapedirs": d["shapedirs"].ndim == 3 and d["shapedirs"].shape[:2] == (v, 3),
        "posedirs": d["posedirs"].ndim == 3 and d["posedirs"].shape[:2] == (v, 3) and d["posedirs"].shape[2] == 207,
        "J_regressor": d["J_regressor"].shape == (24, v),
        "weights": d["weights"].shape == (v, 24),
        "kintree_table": d["kintree_table"].shape == (2, 24),
        "f": d["f"].ndim == 2 and d["f"].shape[1] == 3,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise bad_file(
            p, f"unexpected shapes for {bad}: {[d[k].shape for k in bad]}", "Use an SMPL model file (24 joints)."
        )
    return d


class SMPLBody(BodyModel):
    """SMPL through ``smplx.SMPL`` (LBS, pose blend shapes, shape space)."""

    is_preview = False

    def __init__(self, data: dict[str, np.ndarray], gender: str = "neutral", source: str = "") -> None:
        import smplx
        import torch
        from smplx.utils import Struct

        self.data = data
        self.gender = gender
        self.name = f"smpl_{gender}"
        self.source = source
        v = data["v_template"].shape[0]
        if v == SMPL_VERTEX_COUNT:
            vertex_ids = None  # smplx's own table
        else:  # a reduced/synthetic mesh: smplx's extra-joint vertex ids must still index it
            vertex_ids = collections.defaultdict(int)
        struct = Struct(
            **{
                k: (np.asarray(a, dtype=np.float64) if k not in ("f", "kintree_table") else np.asarray(a))
                for k, a in data.items()
            }
        )
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # smplx prints a 10-betas notice
            self.model = smplx.SMPL(
                model_path=source or "smpl", data_struct=struct, gender=gender, vertex_ids=vertex_ids, batch_size=1
            )
        self.model.eval()
        self.faces = np.asarray(data["f"], dtype=np.int32)
        self.parts = np.asarray(data["weights"]).argmax(axis=1).astype(np.int64)
        self._normals = NormalSolver(self.faces, v)
        self._face_ids = np.array([SMPL_FACE_VERTEX_IDS[k] for k in FACE_POINTS]) if v == SMPL_VERTEX_COUNT else None
        parents = np.asarray(data["kintree_table"])[0].astype(np.int64)
        parents[0] = -1
        if tuple(int(x) for x in parents) != SMPL_PARENTS:
            raise bad_file(source, "kinematic tree differs from SMPL's 24-joint tree", "Use an SMPL model file.")

    @classmethod
    def from_file(cls, path: str | Path, gender: str = "neutral") -> SMPLBody:
        return _cached_body(str(Path(path).resolve()), gender)

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        b = np.zeros(10) if betas is None else np.asarray(betas, dtype=np.float64).reshape(-1)[:10]
        shapedirs = self.data["shapedirs"][:, :, : b.size]
        v_shaped = self.data["v_template"] + np.einsum("vck,k->vc", shapedirs, b)
        return self.data["J_regressor"] @ v_shaped

    def pose(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray | None = None) -> PosedBody:
        import torch

        p = np.asarray(poses, dtype=np.float32).reshape(-1, 24, 3)
        t = np.asarray(trans, dtype=np.float32).reshape(-1, 3)
        n = p.shape[0]
        b = np.zeros((n, self.model.num_betas), dtype=np.float32)
        if betas is not None:
            bb = np.asarray(betas, dtype=np.float32).reshape(-1)[: self.model.num_betas]
            b[:, : bb.size] = bb
        with torch.no_grad():
            out = self.model(
                betas=torch.from_numpy(b),
                global_orient=torch.from_numpy(p[:, 0].copy()),
                body_pose=torch.from_numpy(p[:, 1:].reshape(n, 69).copy()),
                transl=torch.from_numpy(t),
                return_verts=True,
            )
        verts = out.vertices.numpy()
        joints = out.joints[:, :24].numpy()
        normals = self._normals(verts).astype(np.float32)
        g_rot, g_pos = global_transforms(p.astype(np.float64), t.astype(np.float64), self.rest_joints(betas))
        if self._face_ids is not None:
            face = verts[:, self._face_ids]
        else:  # synthetic/reduced meshes: the preview head's face points, carried by the head joint
            from .preview_body import _FACE_OFFSETS

            face = (np.einsum("nij,kj->nki", g_rot[:, 15], _FACE_OFFSETS) + g_pos[:, 15, None]).astype(np.float32)
        return PosedBody(
            verts.astype(np.float32),
            normals,
            joints.astype(np.float32),
            face.astype(np.float32),
            g_rot.astype(np.float32),
        )


@lru_cache(maxsize=4)
def _cached_body(path: str, gender: str) -> SMPLBody:
    log.info("STM2PE: SMPL body from %s", path)
    return SMPLBody(read_smpl_file(path), gender=gender, source=path)
