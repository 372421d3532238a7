"""SMPL through smplx from a synthetic model file in SMPL's real key layout; the preview body."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest

from stm2pe_core.body.model import load_body
from stm2pe_core.body.preview_body import PreviewBody
from stm2pe_core.body.skeleton import SMPL_PARENTS, forward_kinematics, global_transforms, rest_joints
from stm2pe_core.body.smpl import SMPLBody, find_smpl_file, read_smpl_file
from stm2pe_core.errors import InputError, MissingModelError

PER_JOINT = 6  # vertices around each joint


def synthetic_smpl(seed: int = 0) -> dict[str, np.ndarray]:
    """A 144-vertex 'SMPL': 6 vertices around each rest joint, one-hot weights, exact J_regressor."""
    rng = np.random.default_rng(seed)
    j = rest_joints()
    offsets = np.array([[0.02, 0, 0], [-0.02, 0, 0], [0, 0.02, 0], [0, -0.02, 0], [0, 0, 0.02], [0, 0, -0.02]])
    v = (j[:, None, :] + offsets[None]).reshape(-1, 3)
    n = v.shape[0]
    part = np.repeat(np.arange(24), PER_JOINT)
    weights = np.zeros((n, 24))
    weights[np.arange(n), part] = 1.0
    jreg = np.zeros((24, n))
    jreg[part, np.arange(n)] = 1.0 / PER_JOINT
    faces = []
    for k in range(24):  # an octahedron per joint
        b = k * PER_JOINT
        for a, c, d in [(0, 2, 4), (2, 1, 4), (1, 3, 4), (3, 0, 4), (2, 0, 5), (1, 2, 5), (3, 1, 5), (0, 3, 5)]:
            faces.append((b + a, b + c, b + d))
    kin = np.stack([np.array([4294967295] + list(SMPL_PARENTS[1:]), dtype=np.int64), np.arange(24)])
    return {
        "v_template": v,
        "shapedirs": rng.normal(scale=0.01, size=(n, 3, 10)),
        "posedirs": np.zeros((n, 3, 207)),
        "J_regressor": jreg,
        "weights": weights,
        "kintree_table": kin,
        "f": np.array(faces, dtype=np.uint32),
    }


def test_npz_model_goes_through_smplx(tmp_path):
    smplx = pytest.importorskip("smplx")
    d = synthetic_smpl()
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **d)
    assert find_smpl_file(tmp_path, "neutral") == tmp_path / "SMPL_NEUTRAL.npz"
    body = load_body("auto", smpl_dir=tmp_path)
    assert isinstance(body, SMPLBody) and isinstance(body.model, smplx.SMPL) and not body.is_preview
    np.testing.assert_array_equal(body.parts, np.repeat(np.arange(24), PER_JOINT))
    rng = np.random.default_rng(1)
    poses = rng.normal(scale=0.4, size=(3, 24, 3))
    trans = rng.normal(size=(3, 3))
    betas = rng.normal(size=10)
    out = body.pose(poses, trans, betas)
    rest = body.rest_joints(betas)
    v_shaped = d["v_template"] + np.einsum("vck,k->vc", d["shapedirs"], betas)
    np.testing.assert_allclose(rest, d["J_regressor"] @ v_shaped, atol=1e-12)
    # smplx's joints equal our FK with the model's rest joints (SMPL semantics of transl)
    np.testing.assert_allclose(out.joints, forward_kinematics(poses, trans, rest), atol=2e-5)
    # one-hot weights + no pose blend shapes = rigid skinning: v = R_j (v_rest - J_j) + pos_j
    g_rot, g_pos = global_transforms(poses, trans, rest)
    part = body.parts
    expect = np.einsum("nvij,vj->nvi", g_rot[:, part], v_shaped - rest[part]) + g_pos[:, part]
    np.testing.assert_allclose(out.vertices, expect, atol=2e-5)
    assert out.normals.shape == out.vertices.shape
    np.testing.assert_allclose(np.linalg.norm(out.normals, axis=-1), 1.0, atol=1e-5)


def _pickle_with_sparse_and_chumpy(d: dict[str, np.ndarray]) -> bytes:
    """Pickle like the official SMPL files: J_regressor as scipy csc, shapedirs as a chumpy Ch."""
    sp = pytest.importorskip("scipy.sparse")
    mod = types.ModuleType("chumpy.ch")

    class Ch:  # stands in for chumpy.ch.Ch: its pickled state is its __dict__ with the array in 'x'
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    mod.Ch = Ch
    sys.modules["chumpy.ch"] = mod
    sys.modules.setdefault("chumpy", types.ModuleType("chumpy"))
    try:
        data = dict(d)
        data["J_regressor"] = sp.csc_matrix(d["J_regressor"])
        data["shapedirs"] = Ch(d["shapedirs"])
        data["bs_style"] = "lbs"
        return pickle.dumps(data, protocol=2)
    finally:
        del sys.modules["chumpy.ch"]


def test_official_style_pkl_reads_safely_and_matches_npz(tmp_path):
    d = synthetic_smpl()
    (tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl").write_bytes(_pickle_with_sparse_and_chumpy(d))
    path = find_smpl_file(tmp_path, "neutral", required=True)
    assert path.name.startswith("basicModel_neutral")
    got = read_smpl_file(path)
    for k in ("J_regressor", "shapedirs", "v_template", "f"):
        np.testing.assert_allclose(got[k], d[k])
    body = SMPLBody(got)
    np.testing.assert_allclose(
        body.pose(np.zeros((1, 24, 3)), np.zeros((1, 3))).vertices[0], d["v_template"], atol=1e-6
    )


def test_pkl_with_code_or_computed_chumpy_is_refused(tmp_path):
    d = synthetic_smpl()
    bad = dict(d)
    bad["posedirs"] = types.SimpleNamespace(x=1)  # an arbitrary class instance
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(InputError, match="refused"):
        read_smpl_file(tmp_path / "SMPL_NEUTRAL.pkl")


def test_missing_model_messages(tmp_path):
    with pytest.raises(MissingModelError, match="SMPL_NEUTRAL.npz"):
        load_body("smpl", smpl_dir=tmp_path)
    body = load_body("auto", smpl_dir=tmp_path)
    assert isinstance(body, PreviewBody) and body.is_preview
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **{k: v for k, v in synthetic_smpl().items() if k != "posedirs"})
    with pytest.raises(InputError, match="posedirs"):
        read_smpl_file(tmp_path / "SMPL_NEUTRAL.npz")


def test_preview_body_parts_and_rigid_skinning():
    body = load_body("preview")
    assert isinstance(body, PreviewBody) and body.is_preview
    assert set(np.unique(body.parts)) == set(range(24))  # every SMPL part is present
    rest = body.rest_joints()
    # each vertex lies near its part's bone: the thigh (part 1) between hip and knee in height
    thigh = body.rest_vertices[body.parts == 1]
    assert rest[4, 1] - 0.06 < thigh[:, 1].min() and thigh[:, 1].max() < rest[1, 1] + 0.09
    head = body.rest_vertices[body.parts == 15]
    assert head[:, 1].max() > 0.5 and head[:, 1].min() > rest[12, 1]
    # closed, outward meshes: positive volume
    v, f = body.rest_vertices, body.faces
    vol = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert 0.04 < vol < 0.09  # m^3: a ~65 kg body is ~0.065 m^3
    # identity pose: rest mesh; a posed frame moves vertices rigidly with their joint
    out = body.pose(np.zeros((1, 24, 3)), np.array([[0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(out.vertices[0], v + [0, 1, 0], atol=1e-6)
    poses = np.zeros((1, 24, 3))
    poses[0, 18] = [0, 0, 1.2]
    out = body.pose(poses, np.zeros((1, 3)))
    fore = body.parts == 18
    d_before = np.linalg.norm(v[fore] - rest[18], axis=1)
    d_after = np.linalg.norm(out.vertices[0][fore] - out.joints[0, 18], axis=1)
    np.testing.assert_allclose(d_after, d_before, atol=1e-5)
    np.testing.assert_allclose(out.vertices[0][body.parts == 16], v[body.parts == 16], atol=1e-6)
    # face points: nose in front of the head joint, left eye on +x
    fp = body.pose(np.zeros((1, 24, 3)), np.zeros((1, 3))).face_points[0]
    assert fp[0, 2] > rest[15, 2] + 0.08 and fp[2, 0] > 0 > fp[1, 0]
