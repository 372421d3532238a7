"""Cameras: fitting the dance, explicit JSON cameras, alignment to a person box, detection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stm2pe_core.body.model import load_body
from stm2pe_core.body.motion import make_motion
from stm2pe_core.errors import InputError
from stm2pe_core.render.camera import Camera, align_camera, camera_from_json, fit_camera, look_at
from stm2pe_core.render.detect import box_from_mask, detect_person, parse_box


def _cloud(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform([-0.8, -1.2, -0.3], [0.9, 0.6, 0.4], size=(400, 3))


def test_projection_conventions():
    cam = look_at([0.0, 0.0, 10.0], [0.0, 0.0, 0.0], 200, 100, focal=100.0)
    uv, z = cam.project(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(uv[0], [100.0, 50.0])
    np.testing.assert_allclose(uv[1], [110.0, 50.0])  # world +x (the body's left) -> image right
    np.testing.assert_allclose(uv[2], [100.0, 40.0])  # world up -> image up
    np.testing.assert_allclose(z, 10.0)
    np.testing.assert_allclose(cam.centre, [0.0, 0.0, 10.0])
    pose = cam.gl_pose()
    np.testing.assert_allclose(pose[:3, 2], [0.0, 0.0, 1.0], atol=1e-12)  # GL camera looks down its -z


def test_fit_camera_holds_all_points_with_margin():
    pts = _cloud()
    cam = fit_camera(pts, 320, 240, margin=0.05)
    uv, z = cam.project(pts)
    assert (z > 0).all()
    assert uv[:, 0].min() >= 0.05 * 320 - 1 and uv[:, 0].max() <= 0.95 * 320 + 1
    assert uv[:, 1].min() >= 0.05 * 240 - 1 and uv[:, 1].max() <= 0.95 * 240 + 1
    # tight in the limiting direction, centred in both
    span_y = uv[:, 1].max() - uv[:, 1].min()
    assert span_y > 0.85 * 240 * 0.9
    np.testing.assert_allclose((uv.min(0) + uv.max(0)) / 2, [160, 120], atol=1.0)


def test_camera_json_forms_and_errors():
    cam = camera_from_json(json.dumps({"eye": [0, 1, 8], "target": [0, 0, 0], "fov_deg": 30}), 256, 256)
    assert abs(cam.fy - 128 / np.tan(np.deg2rad(15))) < 1e-6
    full = Camera(512, 512, 900.0, 900.0, 250.0, 260.0, np.diag([1.0, -1.0, -1.0]), np.array([0.1, 0.2, 9.0]))
    back = camera_from_json(full.to_json(), 256, 256)
    np.testing.assert_allclose([back.fx, back.cx, back.cy], [450.0, 125.0, 130.0])
    with pytest.raises(InputError, match="JSON"):
        camera_from_json("{oops", 64, 64)
    with pytest.raises(InputError, match="missing or has a bad field"):
        camera_from_json('{"fx": 100}', 64, 64)


def test_align_puts_the_body_box_on_the_person_box():
    body = load_body("preview")
    standing = body.pose(np.zeros((1, 24, 3)), np.array([[0.3, 0.9, -0.2]]))
    for box in [(100.0, 60.0, 180.0, 400.0), (300.0, 200.0, 340.0, 330.0)]:
        cam = align_camera(standing.vertices[0], box, 512, 448)
        uv, _ = cam.project(standing.vertices[0])
        assert abs((uv[:, 1].max() - uv[:, 1].min()) - (box[3] - box[1])) < 0.1
        np.testing.assert_allclose(
            (uv.min(0) + uv.max(0)) / 2, [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], atol=0.1
        )
    with pytest.raises(InputError):
        align_camera(standing.vertices[0], (10, 10, 5, 20), 64, 64)


def test_rendered_body_lands_on_the_person_box():
    from stm2pe_core.render.api import render_motion

    motion = make_motion(np.zeros((2, 24, 3)), np.array([[0.0, 0.9, 0.0]] * 2), 15.0)
    box = (40.0, 30.0, 90.0, 150.0)  # in a 256 x 192 reference photo
    res = render_motion(
        motion,
        width=128,
        height=96,
        maps=("depth",),
        camera_mode="reference",
        reference=np.zeros((192, 256, 3)),
        person_box=box,
    )
    ys, xs = np.nonzero(res.maps.mask[0])
    # box scaled to the 128 x 96 render: (20, 15, 45, 75)
    assert abs(ys.min() - 15) <= 1.5 and abs(ys.max() + 1 - 75) <= 1.5
    assert abs((xs.min() + xs.max() + 1) / 2 - 32.5) <= 1.5


def _person_photo(h=480, w=360):
    """A photo: plain light background, the preview body's silhouette in dark clothes."""
    from stm2pe_core.render.api import render_motion

    motion = make_motion(np.zeros((1, 24, 3)), np.array([[0.0, 0.9, 0.0]]), 15.0)
    cam = look_at([0.3, -0.2, 40.0], [0.3, -0.2, 0.0], w, h, focal=8000.0)
    res = render_motion(
        motion,
        width=w,
        height=h,
        maps=("semantic_map",),
        camera_mode="json",
        camera_json=json.dumps({"fx": cam.fx, "translation": cam.translation.tolist(), "width": w, "height": h}),
    )
    mask = res.maps.mask[0]
    img = np.full((h, w, 3), 0.85, dtype=np.float32)
    img[mask] = [0.25, 0.2, 0.3]
    return img, mask


def test_detect_person_from_mask_foreground_and_box_text():
    img, mask = _person_photo()
    truth = box_from_mask(mask)
    box, how = detect_person(img, mask)
    assert how == "mask" and box == truth
    box, how = detect_person(img)
    assert how != "none"
    assert max(abs(a - b) for a, b in zip(box, truth)) <= 3.0, (box, truth, how)
    assert parse_box(" 1, 2,30,40 ") == (1.0, 2.0, 30.0, 40.0) and parse_box("") is None
    with pytest.raises(InputError):
        parse_box("1,2,3")
    blank = np.full((120, 100, 3), 0.5, dtype=np.float32)
    assert detect_person(blank) == (None, "none")


@pytest.mark.skipif(
    not hasattr(__import__("cv2"), "HOGDescriptor"), reason="this OpenCV build has no HOG detector (OpenCV 5)"
)
def test_hog_box_overlaps_the_person():
    from stm2pe_core.render.detect import _iou, detect_hog

    img, mask = _person_photo()
    box = detect_hog(img)
    assert box is None or _iou(box, box_from_mask(mask)) > 0.3
