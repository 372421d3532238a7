"""Motion graphs in a real ComfyUI: a motion file rendered to guidance maps and saved with the
pack's own video writer, and what a user sees when the motion file is broken."""

from __future__ import annotations

import io

import pytest
from comfy_harness import ComfyServer, execution_error
from test_comfyui_workflows import write_sample_motion

FPS = 15.0


@pytest.fixture(scope="module")
def motion_file(comfy: ComfyServer) -> str:
    write_sample_motion(comfy.input_dir / "it_dance.npz", seconds=2.0, fps=FPS)
    return "it_dance.npz"


def _render_graph(motion: str, size: int = 128) -> dict:
    return {
        "1": {
            "class_type": "STM2PELoadMotion",
            "inputs": {
                "motion_file": motion,
                "fps": FPS,
                "start_seconds": 0.0,
                "duration_seconds": 0.0,
                "format": "auto",
            },
        },
        "2": {
            "class_type": "STM2PERenderSMPLGuidance",
            "inputs": {
                "motion": ["1", 0],
                "width": size,
                "height": size,
                "depth": True,
                "normal": True,
                "semantic": True,
                "skeleton": True,
                "camera": "fit dance (front)",
                "body": "auto",
                "gender": "neutral",
            },
        },  # fmt: skip
        "3": {
            "class_type": "STM2PESaveDanceVideo",
            "inputs": {"images": ["2", 4], "fps": FPS, "filename_prefix": "it/motion"},
        },
    }


@pytest.mark.slow
def test_motion_file_renders_to_a_saved_video(comfy: ComfyServer, motion_file: str) -> None:
    import av
    import numpy as np

    entry = comfy.run(_render_graph(motion_file), timeout=240)
    err = execution_error(entry)
    assert entry["status"]["status_str"] == "success", err and err["exception_message"]
    item = entry["outputs"]["3"]["images"][0]
    assert item["filename"].endswith(".mp4") and item["subfolder"] == "it"
    data = comfy.view(item["filename"], item["subfolder"], item["type"])
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        rate = float(container.streams.video[0].average_rate)
    assert len(frames) == 30 and rate == pytest.approx(FPS)
    assert frames[0].shape == (128, 128, 3)
    # the body is drawn (not a black video) and it moves
    assert (frames[0] > 40).mean() > 0.03
    assert np.abs(frames[0].astype(int) - frames[7].astype(int)).mean() > 1.0


def test_save_motion_output_is_listed_and_loads_again(comfy: ComfyServer, motion_file: str) -> None:
    """Save Motion writes the .npz into ComfyUI's output folder; /object_info then lists it in Load
    Motion's combo as '... [output]', and a graph loading it saves the same motion again."""
    import numpy as np

    def save_graph(name: str) -> dict:
        load = _render_graph(name)["1"]
        return {
            "1": load,
            "2": {"class_type": "STM2PESaveMotion", "inputs": {"motion": ["1", 0], "filename_prefix": "it/saved"}},
        }

    entry = comfy.run(save_graph(motion_file), timeout=120)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    text = entry["outputs"]["2"]["text"][0]
    saved = comfy.output_dir / "it" / "saved_00001_.npz"
    assert saved.is_file() and str(saved.name) in text and "[output]" in text, text
    info = comfy.get_json("/object_info/STM2PELoadMotion")
    choices = info["STM2PELoadMotion"]["input"]["required"]["motion_file"][0]
    assert "it/saved_00001_.npz [output]" in choices, choices
    again = comfy.run(save_graph("it/saved_00001_.npz [output]"), timeout=120)
    assert again["status"]["status_str"] == "success", execution_error(again)
    a, b = np.load(saved), np.load(comfy.output_dir / "it" / "saved_00002_.npz")
    assert a["poses"].shape == (30, 24, 3)
    for key in ("poses", "trans", "betas", "fps"):
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)


def test_corrupt_motion_file_names_the_file(comfy: ComfyServer) -> None:
    bad = comfy.input_dir / "it_broken_dance.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    entry = comfy.run(_render_graph(bad.name), timeout=60)
    err = execution_error(entry)
    assert err is not None and err["node_type"] == "STM2PELoadMotion", entry["status"]
    assert bad.name in err["exception_message"] and "Traceback" not in err["exception_message"], err[
        "exception_message"
    ]


def test_missing_motion_file_is_refused_before_running(comfy: ComfyServer) -> None:
    from comfy_harness import ComfyError

    with pytest.raises(ComfyError) as info:
        comfy.queue(_render_graph("it_no_such_dance.npz"))
    assert info.value.status == 400
    errors = info.value.body["node_errors"]["1"]["errors"]
    assert any("it_no_such_dance.npz" in (e.get("details", "") + e.get("message", "")) for e in errors), errors


@pytest.mark.slow
def test_cancel_stops_a_long_render(comfy: ComfyServer) -> None:
    """ComfyUI's Cancel (POST /interrupt) stops Render SMPL Guidance mid-way: the pack's progress
    updates are where ComfyUI raises the interrupt."""
    import time

    write_sample_motion(comfy.input_dir / "it_long_dance.npz", seconds=120.0, fps=FPS)
    graph = _render_graph("it_long_dance.npz", size=512)
    saved_before = set((comfy.output_dir / "it").glob("*.mp4"))
    prompt_id = comfy.queue(graph)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the render node is running
        running = comfy.get_json("/queue")["queue_running"]
        if running and running[0][1] == prompt_id:
            break
        time.sleep(0.2)
    time.sleep(3.0)
    started = time.monotonic()
    comfy._request("/interrupt", {"prompt_id": prompt_id})
    entry = comfy.wait(prompt_id, timeout=60)
    stopped_after = time.monotonic() - started
    kinds = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds, kinds
    assert stopped_after < 10.0, f"took {stopped_after:.1f} s to stop"
    assert "3" not in entry.get("outputs", {})  # no video was saved
    assert set((comfy.output_dir / "it").glob("*.mp4")) == saved_before
