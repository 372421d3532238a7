"""Every API-format example workflow, queued in a real ComfyUI as a user would: it runs, and the
files it reports can be fetched through /view and are real videos/images."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from comfy_harness import TINY_M2PENC, ComfyServer, execution_error, output_files
from pack_loader import REPO, pack_submodule
from workflow_tools import API_DIR, BUNDLED_M2PENC, STANDIN_NODES, WORKFLOW_NEEDS, load_json

API_FILES = sorted(API_DIR.glob("*.json"))


def _missing(name: str, comfy: ComfyServer) -> list[str]:
    """Files the workflow needs that this machine lacks. CHAMP/SD files are looked up the way the pack
    does (any accepted name: .pth or .safetensors, diffusers folders); files a core loader names in the
    graph (the VAE) must exist under that exact name."""
    needs = WORKFLOW_NEEDS.get(name, {})
    missing = [f for f in needs.get("pack_files", []) if not (REPO / f).is_file()]
    models = list(needs.get("models", []))
    if models:
        champ = pack_submodule("stm2pe_core.weights.champ")
        tree = pack_submodule("stm2pe_core.weights.paths").ModelTree(comfy.models_dir)
        slots = ["denoising_unet", "motion_module", "reference_unet", "vae", "image_encoder"]
        slots += [f"guidance_encoder_{t}" for t in champ.GUIDANCE_TYPES]
        missing += [f"{champ.SLOTS[s][0]}/{champ.SLOTS[s][1][0]} ({s})" for s in slots if champ.locate(tree, s) is None]
        missing += [f"models/{f}" for f in models if f.startswith("vae/") and not (comfy.models_dir / f).is_file()]
    return missing


def _apply_overrides(api: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        class_type, name = key.split(".")
        hits = [n for n in api.values() if n["class_type"] == class_type]
        assert hits, f"override {key}: no {class_type} node"
        for node in hits:
            node["inputs"][name] = value
    return api


@pytest.mark.slow
@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_api_workflow_runs(path: Path, comfy: ComfyServer) -> None:
    needs = WORKFLOW_NEEDS[path.stem]
    missing = _missing(path.stem, comfy)
    if missing:
        pytest.skip(f"needs {missing}")
    for target, source in needs.get("inputs", {}).items():
        make_input(source, comfy.input_dir / target)
    api = _apply_overrides(load_json(path), needs.get("test_overrides", {}))
    entry = comfy.run(api, timeout=needs.get("timeout", 600))
    err = execution_error(entry)
    assert entry["status"]["status_str"] == "success", err and (err["node_type"], err["exception_message"])
    files = output_files(entry)
    assert files, f"no output files reported: {entry['outputs']}"
    expect = needs.get("expect_videos")
    for item in files:
        data = comfy.view(item["filename"], item.get("subfolder", ""), item.get("type", "output"))
        if item["filename"].endswith(".mp4") and expect:
            _check_video(data, item["filename"], expect)
        elif item["filename"].endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", [p for p in API_FILES if "standin_overrides" in WORKFLOW_NEEDS.get(p.stem, {})], ids=lambda p: p.stem
)
def test_workflow_runs_on_tiny_standins(path: Path, comfy: ComfyServer) -> None:
    """The photoreal graph with its two model loaders swapped for tiny random networks: every other
    node (reference, denoise, collect, stitch, save) runs for real and writes its videos."""
    needs = WORKFLOW_NEEDS[path.stem]
    api = load_json(path)
    overrides = dict(needs["standin_overrides"])
    if not (REPO / BUNDLED_M2PENC).is_file() and any(
        n["class_type"] == "STM2PEM2PEncPoseGuidance" for n in api.values()
    ):
        overrides["STM2PEM2PEncPoseGuidance.weights"] = TINY_M2PENC  # random weights: the wiring is what runs
    for target, source in needs.get("inputs", {}).items():
        make_input(source, comfy.input_dir / target)
    swapped = 0
    for node in api.values():
        if node["class_type"] in STANDIN_NODES:
            node["class_type"] = STANDIN_NODES[node["class_type"]]
            node["inputs"] = {}
            swapped += 1
    assert swapped or path.stem.startswith("01_")
    api = _apply_overrides(api, overrides)
    entry = comfy.run(api, timeout=needs.get("timeout", 600))
    err = execution_error(entry)
    assert entry["status"]["status_str"] == "success", err and (err["node_type"], err["exception_message"])
    videos = [f for f in output_files(entry) if f["filename"].endswith(".mp4")]
    saving = [
        n for n in api.values() if n["class_type"] in ("STM2PEStitchSegments", "STM2PESaveDanceVideo", "SaveVideo")
    ]
    assert len(videos) == len(saving), videos
    for item in videos:
        data = comfy.view(item["filename"], item.get("subfolder", ""), item.get("type", "output"))
        if "guidance" not in item["filename"]:
            _check_video(data, item["filename"], needs["expect_videos"])


def make_input(source: str, target: Path) -> None:
    """Copy a repository file into the input folder, or make a ``generated:`` one."""
    if source == "generated:motion":
        write_sample_motion(target)
    elif source == "generated:photo":
        write_sample_photo(target)
    else:
        shutil.copy(REPO / source, target)


def write_sample_motion(path: Path, seconds: float = 4.0, fps: float = 15.0) -> None:
    """A small SMPL dance: hips sway, arms swing up and down, knees bend on the beat (y-up, metres)."""
    import numpy as np

    types = pack_submodule("stm2pe_core.types")
    motion_io = pack_submodule("stm2pe_core.body.motion")
    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    beat = 2 * np.pi * 2.0 * t  # 120 BPM
    poses = np.zeros((n, 24, 3), np.float32)
    poses[:, 0, 1] = 0.3 * np.sin(beat / 4)  # turn left/right
    poses[:, 16, 2] = -1.0 + 0.6 * np.sin(beat)  # left shoulder
    poses[:, 17, 2] = 1.0 - 0.6 * np.sin(beat)  # right shoulder
    poses[:, 4, 0] = poses[:, 5, 0] = 0.4 * (1 - np.cos(beat)) / 2  # knees
    poses[:, 1, 0] = poses[:, 2, 0] = -0.2 * (1 - np.cos(beat)) / 2  # hips
    trans = np.stack([0.1 * np.sin(beat / 2), 0.9 - 0.04 * (1 - np.cos(beat)) / 2, np.zeros(n)], 1).astype(np.float32)
    motion = types.Motion(poses=poses, trans=trans, betas=np.zeros(10, np.float32), fps=fps, source="sample")
    motion_io.save_motion(motion, path)


def write_sample_photo(path: Path) -> None:
    """A plain standing figure on a light background (enough for the reference path to run)."""
    import numpy as np
    from PIL import Image

    img = np.full((512, 512, 3), 225, np.uint8)
    img[120:440, 216:296] = (60, 80, 200)  # body
    img[70:125, 226:286] = (230, 190, 160)  # head
    Image.fromarray(img).save(path)


def _check_video(data: bytes, name: str, expect: dict) -> None:
    import av

    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        assert float(video.average_rate) == pytest.approx(expect["fps"]), name
        assert frames == expect["frames"], f"{name}: {frames} frames"
        assert bool(container.streams.audio) == expect["audio"], name
        assert video.width % 2 == 0 and video.height % 2 == 0
