"""Motion loaders (AIST++ / EDGE / AMASS / own npz), conversions, resampling, safe pickles."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest

from stm2pe_core.body import motion as M
from stm2pe_core.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from stm2pe_core.body.safe_pickle import safe_load, to_plain
from stm2pe_core.body.skeleton import forward_kinematics, rest_joints
from stm2pe_core.errors import InputError

RX90 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # y-up -> z-up (EDGE's +90 deg about X)


def _truth(n: int = 40, seed: int = 0) -> M.Motion:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 60.0
    poses = 0.4 * np.sin(2 * np.pi * 0.7 * t[:, None, None] + rng.uniform(0, 6, (1, 24, 3)))
    poses[:, 0] += [0.0, 1.0, 0.0]  # facing somewhere else
    poses[:, 22:] = 0.0  # SMPL-H/X files carry no SMPL hand joints
    trans = np.stack([0.3 * np.sin(t), 0.9 + 0.05 * np.cos(3 * t), 0.2 * t], axis=1)
    return M.make_motion(poses, trans, 60.0, None, "truth")


def _same(a: M.Motion, b: M.Motion, atol: float = 1e-5) -> None:
    assert a.n_frames == b.n_frames and a.fps == b.fps
    np.testing.assert_allclose(axis_angle_to_matrix(a.poses), axis_angle_to_matrix(b.poses), atol=atol)
    np.testing.assert_allclose(a.trans, b.trans, atol=atol)


def _write_aist(path, m: M.Motion, scaling: float = 91.5) -> None:
    data = {
        "smpl_poses": m.poses.reshape(-1, 72).astype(np.float64),
        "smpl_trans": m.trans.astype(np.float64) * scaling,
        "smpl_scaling": np.array([scaling]),
        "smpl_loss": np.float64(0.01),
    }
    path.write_bytes(pickle.dumps(data, protocol=4))


def _write_edge(path, m30: M.Motion) -> None:
    poses = m30.poses.astype(np.float64).copy()
    poses[:, 0] = matrix_to_axis_angle(RX90[None] @ axis_angle_to_matrix(poses[:, 0]))
    trans = m30.trans.astype(np.float64) @ RX90.T
    full = forward_kinematics(poses, trans)
    path.write_bytes(pickle.dumps({"smpl_poses": poses.reshape(-1, 72), "smpl_trans": trans, "full_pose": full}))


def _write_amass(path, m: M.Motion) -> None:
    j0 = rest_joints()[0]
    poses = np.zeros((m.n_frames, 156))
    p = m.poses.astype(np.float64).copy()
    p[:, 0] = matrix_to_axis_angle(RX90[None] @ axis_angle_to_matrix(p[:, 0]))
    poses[:, :66] = p[:, :22].reshape(-1, 66)
    trans = (m.trans.astype(np.float64) + j0) @ RX90.T - j0
    np.savez(
        path, poses=poses, trans=trans, betas=np.zeros(16), mocap_framerate=np.float64(60.0), gender=np.array("neutral")
    )


def test_aist_edge_amass_load_into_the_same_motion(tmp_path):
    truth = _truth()
    _write_aist(tmp_path / "gBR_sBM_cAll_d04_mBR0_ch01.pkl", truth)
    _write_amass(tmp_path / "amass.npz", truth)
    truth30 = M.resample(truth, 30.0)
    _write_edge(tmp_path / "edge.pkl", truth30)

    aist = M.load_motion(tmp_path / "gBR_sBM_cAll_d04_mBR0_ch01.pkl")
    assert aist.fps == 60.0 and aist.source.startswith("gBR")
    _same(aist, truth)
    amass = M.load_motion(tmp_path / "amass.npz")
    _same(amass, truth)
    edge = M.load_motion(tmp_path / "edge.pkl")
    assert edge.fps == 30.0
    _same(edge, truth30)
    # all three, resampled to 15 fps, agree, and the joints they imply match
    a15, e15, m15 = (M.resample(x, 15.0) for x in (aist, edge, amass))
    _same(a15, e15)
    _same(a15, m15)
    np.testing.assert_allclose(
        forward_kinematics(e15.poses, e15.trans), forward_kinematics(a15.poses, a15.trans), atol=1e-5
    )


def test_amass_turn_keeps_the_pelvis_where_smpl_puts_it(tmp_path):
    truth = _truth(5)
    _write_amass(tmp_path / "a.npz", truth)
    z = np.load(tmp_path / "a.npz")
    pelvis_zup = z["trans"] + rest_joints()[0]
    loaded = M.load_motion(tmp_path / "a.npz")
    pelvis_yup = forward_kinematics(loaded.poses, loaded.trans)[:, 0]
    np.testing.assert_allclose(pelvis_yup, pelvis_zup @ np.linalg.inv(RX90).T, atol=1e-5)


def test_npz_with_a_pickled_entry_loads_the_rest_without_unpickling(tmp_path):
    truth = _truth(4)
    _write_amass(tmp_path / "a.npz", truth)
    z = dict(np.load(tmp_path / "a.npz"))
    z["meta"] = np.array([_Evil(str(tmp_path / "pwned"))], dtype=object)
    np.savez(tmp_path / "b.npz", **z)
    _same(M.load_motion(tmp_path / "b.npz"), truth)
    assert not (tmp_path / "pwned").exists()


def test_own_npz_round_trip_and_fps_option(tmp_path):
    truth = _truth(31)
    M.save_motion(truth, tmp_path / "m.npz")
    _same(M.load_motion(tmp_path / "m.npz"), truth)
    m15 = M.load_motion(tmp_path / "m.npz", fps=15.0)
    assert m15.fps == 15.0 and m15.n_frames == 7  # floor(31/60 s * 15)
    _same(m15, M.make_motion(truth.poses[::4][:7], truth.trans[::4][:7], 15.0))


def test_resample_slerps_between_frames():
    poses = np.zeros((2, 24, 3))
    poses[1, 5] = [0.0, 0.0, 1.0]
    m = M.make_motion(poses, np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), 10.0)
    up = M.resample(m, 40.0)  # 0.2 s -> 8 frames at 40 fps
    assert up.n_frames == 8
    np.testing.assert_allclose(up.poses[:5, 5, 2], [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)
    np.testing.assert_allclose(up.trans[:5, 0], [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)
    np.testing.assert_allclose(up.poses[5:, 5, 2], 1.0, atol=1e-6)  # held after the last frame


def test_trim_and_rot6d_round_trip():
    truth = _truth(60)
    t = M.trim(truth, 0.25, 0.5)
    assert t.n_frames == 30
    np.testing.assert_array_equal(t.poses, truth.poses[15:45])
    with pytest.raises(InputError):
        M.trim(truth, 5.0)
    back = M.from_rot6d(M.to_rot6d(truth), truth.trans, truth.fps)
    _same(back, truth)
    assert M.to_matrices(truth).shape == (60, 24, 3, 3)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvilEval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def test_malicious_pickles_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"smpl_poses": np.zeros((2, 72)), "x": _Evil(str(marker))}))
    with pytest.raises(InputError, match="refused"):
        M.load_motion(bad)
    assert not marker.exists()
    # hidden inside an object array, and via eval
    bad.write_bytes(pickle.dumps({"smpl_poses": np.array([_Evil(str(marker))], dtype=object)}))
    with pytest.raises(InputError, match="posix.system|os.system|nt.system"):
        M.load_motion(bad)
    assert not marker.exists()
    bad.write_bytes(pickle.dumps([_EvilEval()]))
    with pytest.raises(InputError, match="builtins.eval"):
        safe_load(bad)
    # numpy's own reconstruct helpers cannot be used to reach other globals
    bad.write_bytes(b"cnumpy.core.multiarray\n_reconstruct\n(cos\nsystem\n(I0\ntp0\nS'b'\ntR.")
    with pytest.raises(InputError, match="os.system|posix.system"):
        safe_load(bad)


def test_safe_pickle_reads_numpy_in_every_protocol_and_sparse_stand_ins(tmp_path):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float64(2.5), "t": (1, "x"), "set": {3}}
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        out = safe_load(pickle.dumps(data, protocol=proto))
        np.testing.assert_array_equal(out["a"], data["a"])
        assert out["s"] == 2.5 and out["t"] == (1, "x") and out["set"] == {3}
    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 3.0]])
    blob = pickle.dumps({"J_regressor": scipy_sparse.csc_matrix(dense)}, protocol=2)
    with pytest.raises(InputError):
        safe_load(blob)  # stand-ins only where asked for (SMPL model files)
    np.testing.assert_array_equal(to_plain(safe_load(blob, allow_stubs=True))["J_regressor"], dense)


def test_bad_inputs_have_clear_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        M.load_motion(tmp_path / "none.pkl")
    f = tmp_path / "x.txt"
    f.write_text("hi")
    with pytest.raises(InputError, match="extension"):
        M.load_motion(f)
    f = tmp_path / "x.pkl"
    f.write_bytes(pickle.dumps({"smpl_poses": np.zeros((3, 10))}))
    with pytest.raises(InputError, match="expected"):
        M.load_motion(f)
    f.write_bytes(b"not a pickle")
    with pytest.raises(InputError):
        M.load_motion(f)
    with pytest.raises(InputError, match="NaN"):
        M.make_motion(np.full((2, 72), np.nan), np.zeros((2, 3)), 30.0)
    assert math.isclose(M.make_motion(np.zeros((2, 72)), None, 30.0).trans.sum(), 0.0)
