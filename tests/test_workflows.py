"""The example workflows are valid graphs for this pack + ComfyUI core (no ComfyUI needed):
known node types, type-compatible links, valid widget values, UI and API copies that agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pack_loader import REPO, load_pack
from workflow_tools import (
    API_DIR,
    CORE_NODES,
    VIRTUAL_NODES,
    WORKFLOW_NEEDS,
    WORKFLOWS,
    check_api,
    check_ui,
    load_json,
    node_definitions,
    ui_to_api,
)

__all__ = ["CORE_NODES"]

UI_FILES = sorted(WORKFLOWS.glob("*.json"))
API_FILES = sorted(API_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def defs():
    pack = load_pack()
    return node_definitions(pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS)


def _input_files(name: str) -> set[str]:
    """Names the workflow may use in file combos: its input files and its model files."""
    needs = WORKFLOW_NEEDS.get(name, {})
    return set(needs.get("inputs", {})) | set(needs.get("models", []))


def test_workflow_set_is_complete() -> None:
    ui = {p.stem for p in UI_FILES}
    api = {p.stem for p in API_FILES}
    assert len(ui) >= 4, "the four example workflows (issue 6) are missing"
    assert ui == api, f"UI without API copy: {sorted(ui - api)}; API without UI: {sorted(api - ui)}"
    assert ui == set(WORKFLOW_NEEDS), f"workflows vs WORKFLOW_NEEDS: {sorted(ui ^ set(WORKFLOW_NEEDS))}"
    for name, needs in WORKFLOW_NEEDS.items():
        for target, source in needs.get("inputs", {}).items():
            assert (REPO / source).is_file() or source.startswith("generated:"), f"{name}: {target} <- {source} missing"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_workflow_is_valid(path: Path, defs) -> None:
    ui = load_json(path)
    assert ui.get("version") == 0.4 and "nodes" in ui and "links" in ui
    problems = check_ui(ui, defs, _input_files(path.stem))
    assert not problems, "\n".join(problems)
    notes = [n for n in ui["nodes"] if n["type"] in VIRTUAL_NODES]
    assert notes and all(n["widgets_values"][0].strip() for n in notes), "each workflow explains itself in a Note"
    used = {n["type"] for n in ui["nodes"]} - VIRTUAL_NODES
    assert any(not defs[t].core for t in used), "uses no STM2PE node"


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_api_workflow_is_valid(path: Path, defs) -> None:
    api = load_json(path)
    assert all(isinstance(k, str) and "class_type" in v for k, v in api.items()), "not API format"
    problems = check_api(api, defs, _input_files(path.stem))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_and_api_copies_agree(path: Path, defs) -> None:
    converted = ui_to_api(load_json(path), defs)
    assert converted == load_json(API_DIR / path.name)


def test_files_are_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_workflows.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_converter_handles_seed_and_upload_widgets(defs) -> None:
    """UI-only widget values (control_after_generate right after a seed, the upload widget's value
    after all declared widgets, as frontend 1.27 orders them) are skipped by position; a linked
    widget input becomes a link."""
    from workflow_tools import Input, NodeDef

    fake = NodeDef(
        "FakeSampler",
        "Fake",
        [
            Input("image", "IMAGE", {}, True),
            Input("seed", "INT", {"default": 0, "min": 0, "max": 2**32}, True),
            Input("clip", ["a.png", "b.png"], {"image_upload": True}, True),
            Input("steps", "INT", {"default": 20, "min": 1, "max": 100}, True),
            Input("strength", "FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0}, False),
        ],
        ("IMAGE",),
        ("IMAGE",),
        False,
    )
    all_defs = {**defs, "FakeSampler": fake}
    ui = {
        "nodes": [
            {
                "id": 1,
                "type": "LoadImage",
                "inputs": [],
                "outputs": [
                    {"name": "IMAGE", "type": "IMAGE", "links": [1]},
                    {"name": "MASK", "type": "MASK", "links": []},
                ],
                "widgets_values": ["x.png", "image"],
            },
            {
                "id": 2,
                "type": "FakeSampler",
                "inputs": [
                    {"name": "image", "type": "IMAGE", "link": 1},
                    {"name": "steps", "type": "INT", "link": 2, "widget": {"name": "steps"}},
                ],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": []}],
                "widgets_values": [7, "randomize", "b.png", 20, 0.5, "image"],
            },
            {"id": 3, "type": "Note", "inputs": [], "outputs": [], "widgets_values": ["hi"]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 1, 0, 2, 1, "INT"]],
    }
    api = ui_to_api(ui, all_defs)
    assert set(api) == {"1", "2"}
    assert api["1"]["inputs"] == {"image": "x.png"}
    assert api["2"]["inputs"] == {"image": ["1", 0], "seed": 7, "clip": "b.png", "steps": ["1", 0], "strength": 0.5}
    ui["nodes"][1]["widgets_values"] = [7, "b.png", 20, 0.5, "image"]  # forgot the seed's control value
    with pytest.raises(ValueError, match="widgets_values"):
        ui_to_api(ui, all_defs)


def test_checks_catch_broken_graphs(defs) -> None:
    """The validators are not vacuous: a wrong link type, an out-of-range value and a missing
    node are each reported."""
    api = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "ref.png"}},
        "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 1], "fps": 500.0}},
        "3": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["2", 0], "filename_prefix": "x", "format": "gif", "codec": "auto"},
        },
        "4": {"class_type": "NoSuchNode", "inputs": {}},
    }
    problems = "\n".join(check_api(api, defs, {"ref.png"}))
    assert "gives MASK, input takes IMAGE" in problems
    assert "500.0 > max 120.0" in problems
    assert "'gif' not in ['auto', 'mp4']" in problems
    assert "unknown node type 'NoSuchNode'" in problems


@pytest.mark.skipif(not os.environ.get("COMFYUI_PATH"), reason="COMFYUI_PATH not set")
def test_core_node_ids_exist_in_the_comfyui_checkout() -> None:
    """Without starting ComfyUI: every core node id we use is defined in the checkout's sources."""
    root = Path(os.environ["COMFYUI_PATH"])
    sources = [root / "nodes.py", *sorted((root / "comfy_extras").glob("*.py"))]
    text = "\n".join(p.read_text(errors="replace") for p in sources if p.is_file())
    for node_id in CORE_NODES:
        assert f'"{node_id}"' in text or f"class {node_id}" in text, f"{node_id} not found in {root}"
