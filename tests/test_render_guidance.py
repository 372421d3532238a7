"""Guidance maps in CHAMP's conventions, rendered through pyrender (OSMesa on CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from stm2pe_core.body.model import BodyModel, PosedBody, load_body
from stm2pe_core.body.motion import make_motion
from stm2pe_core.render.camera import fit_camera
from stm2pe_core.render.guidance import MAP_NAMES, render_guidance, semantic_palette
from stm2pe_core.render.openpose import COLORS

# champ.md section 3, semantic map table (RGB per SMPL part, from CHAMP's smpl_mesh_info.npy)
CHAMP_SEMANTIC_RGB = [
    (68, 1, 84), (71, 16, 99), (72, 29, 111), (71, 42, 122), (69, 55, 129), (65, 66, 135),
    (61, 78, 138), (56, 89, 140), (51, 99, 141), (46, 109, 142), (42, 118, 142), (39, 128, 142),
    (35, 137, 142), (32, 146, 140), (30, 156, 137), (33, 165, 133), (40, 174, 128), (53, 183, 121),
    (70, 192, 111), (90, 200, 100), (112, 207, 87), (137, 213, 72), (162, 218, 55), (189, 223, 38),
]  # fmt: skip


class QuadBody(BodyModel):
    """A 1 m square in the z = 0 plane (optionally tilted), facing +z, all part ``part``."""

    name = "quad"

    def __init__(self, tilt: float = 0.0, part: int = 0) -> None:
        self.tilt = tilt
        self.faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
        self.parts = np.full(4, part)

    def rest_joints(self, betas=None):
        return np.zeros((24, 3))

    def pose(self, poses, trans, betas=None):
        n = len(poses)
        y = np.array([-0.5, -0.5, 0.5, 0.5])
        v = np.stack([np.array([-0.5, 0.5, 0.5, -0.5]), y, self.tilt * y], axis=1)
        nrm = np.cross(v[1] - v[0], v[2] - v[0])
        nrm /= np.linalg.norm(nrm)
        verts = np.broadcast_to(v, (n, 4, 3)) + np.asarray(trans)[:, None]
        return PosedBody(
            verts.astype(np.float32),
            np.broadcast_to(nrm, (n, 4, 3)).astype(np.float32),
            np.zeros((n, 24, 3), np.float32),
            np.zeros((n, 5, 3), np.float32),
        )


def _still(n: int = 1) -> object:
    return make_motion(np.zeros((n, 24, 3)), np.zeros((n, 3)), 15.0)


def test_palette_equals_champ_viridis_table():
    pal = semantic_palette()
    np.testing.assert_array_equal(pal[:24], np.array(CHAMP_SEMANTIC_RGB, dtype=np.uint8))


def test_plane_facing_camera_renders_normal_half_half_one_and_flat_depth():
    g = render_guidance(_still(), QuadBody(), width=64, height=64, maps=("normal", "depth", "semantic_map"))
    mask = g.mask[0]
    assert 0.3 < mask.mean() < 0.95  # the quad fills the middle of the frame
    normal = g.maps["normal"][0][mask]
    np.testing.assert_allclose(normal, np.broadcast_to([0.5, 0.5, 1.0], normal.shape), atol=1.0 / 255 + 1e-6)
    assert (g.maps["normal"][0][~mask] == 0).all() and (g.maps["depth"][0][~mask] == 0).all()
    np.testing.assert_allclose(g.maps["depth"][0][mask], 1.0)  # every point equally near: all white
    np.testing.assert_allclose(
        g.maps["semantic_map"][0][mask],
        np.broadcast_to(np.array(CHAMP_SEMANTIC_RGB[0]) / 255.0, (mask.sum(), 3)),
        atol=1e-6,
    )


def test_tilted_plane_depth_white_near_black_far_and_normal_tilts_up():
    # top edge (y = +0.5) is pushed toward the camera (z = +0.5 * tilt)
    g = render_guidance(_still(), QuadBody(tilt=1.0), width=64, height=64, maps=("depth", "normal"))
    d, mask = g.maps["depth"][0][..., 0], g.mask[0]
    rows = [r for r in range(64) if mask[r].any()]
    top = d[rows[0]][mask[rows[0]]].mean()
    bottom = d[rows[-1]][mask[rows[-1]]].mean()
    assert top > 0.97 and bottom < 0.03  # near = white, far end of the body = black
    col = d[rows, 32]
    assert np.all(np.diff(col) <= 1e-6)  # monotone from near (top) to far (bottom)
    n = g.maps["normal"][0][mask].mean(axis=0) * 2 - 1
    np.testing.assert_allclose(n, [0.0, -np.sqrt(0.5), np.sqrt(0.5)], atol=0.02)  # faces down-toward the camera


@pytest.fixture(scope="module")
def dance():
    n = 6
    t = np.arange(n) / 15.0
    poses = np.zeros((n, 24, 3))
    poses[:, 0, 1] = np.linspace(-0.5, 0.5, n)  # turning
    poses[:, 16, 2] = -1.0 + t  # left arm raising
    poses[:, 17, 2] = 1.0
    poses[:, 4, 0] = 0.8 * t  # knee bend
    trans = np.stack([0.2 * t, 0.9 + 0.0 * t, 0.0 * t], axis=1)
    motion = make_motion(poses, trans, 15.0)
    body = load_body("preview")
    return motion, body, render_guidance(motion, body, width=128, height=128)


def test_all_maps_shapes_and_ranges(dance):
    motion, _, g = dance
    assert set(g.maps) == set(MAP_NAMES) and g.size == (128, 128) and g.fps == 15.0
    for m in g.maps.values():
        assert m.shape == (6, 128, 128, 3) and m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
    assert g.keypoints.shape == (6, 18, 3) and g.heatmaps.shape == (6, 18, 16, 16) and g.mask.shape == (6, 128, 128)
    # maps agree: same silhouette in depth, normal and semantic
    for i in range(6):
        assert (g.maps["normal"][i].max(-1) > 0).sum() == g.mask[i].sum()
        sem_body = g.maps["semantic_map"][i].max(-1) > 0
        assert (sem_body == g.mask[i]).all()
        assert g.maps["depth"][i][g.mask[i]].max() == 1.0


def test_semantic_pixels_use_only_part_colours_and_all_parts_visible(dance):
    _, _, g = dance
    pal = {tuple(c) for c in np.array(CHAMP_SEMANTIC_RGB)}
    sem = np.round(g.maps["semantic_map"][0] * 255).astype(int)
    colours = {tuple(c) for c in sem[g.mask[0]]}
    assert colours <= pal
    assert len(colours) >= 20  # a frontal view shows nearly every part


def test_projected_keypoints_land_on_the_rendered_body(dance):
    _, _, g = dance
    body_kp = [k for k in range(18) if k not in (0, 14, 15, 16, 17)]  # joints inside the body
    for i in range(6):
        for k in body_kp:
            x, y, c = g.keypoints[i, k]
            assert c == 1.0
            assert g.mask[i, int(round(y)), int(round(x))], (i, k, x, y)
        # heatmap peaks sit on the keypoint (heatmap pixel = 8 image pixels)
        for k in body_kp:
            hy, hx = np.unravel_index(np.argmax(g.heatmaps[i, k]), g.heatmaps.shape[2:])
            assert abs((hx + 0.5) * 8 - (g.keypoints[i, k, 0] + 0.5)) <= 4.01
            assert abs((hy + 0.5) * 8 - (g.keypoints[i, k, 1] + 0.5)) <= 4.01
    # joint dots drawn in the OpenPose colours (wrists are under the red dots of DWPose's hands)
    sk = np.round(g.maps["dwpose"][0] * 255).astype(int)
    for k in body_kp:
        x, y, _ = g.keypoints[0, k]
        expect = (255, 0, 0) if k in (4, 7) else COLORS[k]
        np.testing.assert_array_equal(sk[int(round(y)), int(round(x))], expect)


def test_face_points_visible_from_the_front_hidden_from_behind():
    body = load_body("preview")
    front = make_motion(np.zeros((1, 24, 3)), np.zeros((1, 3)), 15.0)
    back_pose = np.zeros((1, 24, 3))
    back_pose[0, 0] = [0.0, np.pi, 0.0]
    back = make_motion(back_pose, np.zeros((1, 3)), 15.0)
    gf = render_guidance(front, body, width=256, height=256, maps=("dwpose",))
    gb = render_guidance(back, body, width=256, height=256, maps=("dwpose",))
    assert gf.keypoints[0, [0, 14, 15], 2].min() == 1.0  # nose and eyes seen from the front
    assert gb.keypoints[0, [0, 14, 15], 2].max() == 0.0  # hidden behind the head
    # left shoulder (OpenPose 5) is on the image right when the body faces the camera
    assert gf.keypoints[0, 5, 0] > gf.keypoints[0, 2, 0] and gb.keypoints[0, 5, 0] < gb.keypoints[0, 2, 0]


def test_camera_projection_matches_the_rendered_silhouette():
    body = load_body("preview")
    motion = _still()
    posed = body.pose(motion.poses, motion.trans)
    cam = fit_camera(posed.vertices[0], 160, 120)
    g = render_guidance(motion, body, width=160, height=120, maps=("depth",), camera=cam)
    uv, _ = cam.project(posed.vertices[0])
    ys, xs = np.nonzero(g.mask[0])
    assert abs(xs.min() - uv[:, 0].min()) <= 1.5 and abs(xs.max() + 1 - uv[:, 0].max()) <= 1.5
    assert abs(ys.min() - uv[:, 1].min()) <= 1.5 and abs(ys.max() + 1 - uv[:, 1].max()) <= 1.5


def test_progress_called_per_frame_and_cancel_propagates(dance):
    motion, body, _ = dance
    calls = []
    render_guidance(motion, body, width=32, height=32, maps=("depth",), progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 6) and calls[-1] == (6, 6) and len(calls) == 7

    class Stop(Exception):
        pass

    def cancel(done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        render_guidance(motion, body, width=32, height=32, maps=("depth",), progress=cancel)


def test_uint8_option_and_unknown_map():
    from stm2pe_core.errors import InputError

    g = render_guidance(_still(), QuadBody(), width=32, height=32, maps=("normal",), dtype=np.uint8)
    assert g.maps["normal"].dtype == np.uint8 and g.maps["normal"].max() == 255
    with pytest.raises(InputError, match="unknown guidance map"):
        render_guidance(_still(), QuadBody(), width=32, height=32, maps=("albedo",))


def test_hands_and_face_follow_their_joints():
    from stm2pe_core.render.openpose import FACE_68, LEFT_HAND, hand_face_points

    body = load_body("preview")
    poses = np.zeros((2, 24, 3))
    poses[1, 20] = [0.0, 0.0, 1.0]  # bend the left wrist
    poses[1, 15] = [0.0, 0.8, 0.0]  # turn the head
    posed = body.pose(poses, np.zeros((2, 3)))
    hands, face = hand_face_points(posed.joints, posed.rotations)
    rest = body.rest_joints()
    np.testing.assert_allclose(hands[0, 0, :, :], LEFT_HAND + rest[20], atol=1e-5)  # rest pose: template at the wrist
    np.testing.assert_allclose(hands[0, 1, 8, 0], rest[21, 0] - LEFT_HAND[8, 0], atol=1e-5)  # right hand mirrored
    np.testing.assert_allclose(face[0], FACE_68 + rest[15], atol=1e-5)
    # bending the wrist moves the left hand's finger tips, not the right hand
    assert np.linalg.norm(hands[1, 0, 12] - hands[0, 0, 12]) > 0.05
    np.testing.assert_allclose(hands[1, 1], hands[0, 1], atol=1e-5)
    # the head turn moves the face's nose tip sideways toward +x (turn about +y)
    assert face[1, 30, 0] - face[0, 30, 0] > 0.05
    # drawn: white face dots and red hand dots appear only with hands_face on
    m = make_motion(np.zeros((1, 24, 3)), np.zeros((1, 3)), 15.0)
    on = np.round(render_guidance(m, body, width=256, height=256, maps=("dwpose",)).maps["dwpose"][0] * 255).astype(int)
    off = np.round(
        render_guidance(m, body, width=256, height=256, maps=("dwpose",), hands_face=False).maps["dwpose"][0] * 255
    ).astype(int)
    white = (on == 255).all(-1).sum()
    red = ((on[..., 0] == 255) & (on[..., 1] == 0) & (on[..., 2] == 0)).sum()
    assert white > 30 and red > 30
    assert (off == 255).all(-1).sum() == 0


def test_float_and_uint8_paths_agree(dance):
    motion, body, g = dance
    g8 = render_guidance(motion, body, width=128, height=128, dtype=np.uint8)
    for name in MAP_NAMES:
        tol = 0.6 / 255 if name == "depth" else 1e-6  # depth bytes are rounded
        np.testing.assert_allclose(g.maps[name], g8.maps[name].astype(np.float32) / 255.0, atol=tol, err_msg=name)


def test_skeleton_drawing_matches_dwpose_style():
    from stm2pe_core.render.openpose import LIMBS, draw_skeleton

    kp = np.zeros((18, 3))
    kp[:, 2] = 0.0
    kp[1] = [100, 100, 1]  # neck
    kp[2] = [60, 100, 1]  # right shoulder: limb 0 (neck -> right shoulder)
    kp[8] = [90, 180, 1]  # right hip: limb 6 (neck -> right hip)
    img = draw_skeleton(kp, 200, 200)
    i0 = LIMBS.index((1, 2))
    np.testing.assert_array_equal(img[100, 80], (COLORS[i0] * 0.6).astype(np.uint8))  # limb at 60 %
    np.testing.assert_array_equal(img[100, 60], COLORS[2])  # joint dot at full colour
    assert img[100, 60 - 8].max() == 0 and img[10, 10].max() == 0  # black elsewhere
    # stick half-width 4 px at 512 (about 9 px thick), scaled with the image size (2 px at 200)
    assert 8 <= (draw_skeleton(kp, 512, 512)[:, 80].max(-1) > 0).sum() <= 10
    assert 4 <= (img[:, 80].max(-1) > 0).sum() <= 6
