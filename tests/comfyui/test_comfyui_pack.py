"""The pack inside a real ComfyUI: it loads, its nodes are served by /object_info as declared."""

from __future__ import annotations

import re

import pytest
from comfy_harness import PACK_DIR_NAME, ComfyServer
from pack_loader import load_pack


@pytest.fixture(scope="module")
def mappings():
    pack = load_pack()
    return pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS


def test_pack_loads_without_import_failure(comfy: ComfyServer, object_info: dict) -> None:
    log = comfy.log_text().split("Starting server")[0]  # start-up only; later tests log their own errors
    timing = [ln for ln in log.splitlines() if ln.rstrip().endswith(f"custom_nodes/{PACK_DIR_NAME}")]
    assert timing, f"the pack is missing from ComfyUI's custom-node import summary:\n{log[-3000:]}"
    assert not any("IMPORT FAILED" in ln for ln in timing), timing
    failures = [
        ln
        for ln in log.splitlines()
        if re.search(r"Cannot import .*" + re.escape(PACK_DIR_NAME), ln) or "STM2PE: nodes/" in ln
    ]
    assert not failures, "\n".join(failures)
    assert "Traceback" not in log, log[-4000:]


def test_every_node_is_served_as_declared(object_info: dict, mappings) -> None:
    classes, display = mappings
    assert classes, "NODE_CLASS_MAPPINGS is empty"
    for node_id, cls in classes.items():
        assert node_id in object_info, f"{node_id} not in /object_info"
        info = object_info[node_id]
        assert info["display_name"] == display[node_id]
        assert info["category"] == cls.CATEGORY
        assert info["output"] == list(cls.RETURN_TYPES), node_id
        names = list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)
        assert info["output_name"] == names, node_id
        assert bool(info["output_node"]) == bool(getattr(cls, "OUTPUT_NODE", False)), node_id
        declared = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            local = declared.get(section, {})
            served = info["input"].get(section, {})
            assert list(served) == list(local), f"{node_id}.{section}: {list(served)} != {list(local)}"
            for name, spec in local.items():
                kind, served_kind = spec[0], served[name][0]
                if isinstance(kind, (list, tuple)):
                    assert isinstance(served_kind, list), f"{node_id}.{name} should be a combo"
                    # combos of names (modes, methods) are static; file lists depend on the folders
                    if not any("." in str(v) or "/" in str(v) for v in [*kind, *served_kind]):
                        assert served_kind == list(kind), f"{node_id}.{name}"
                else:
                    assert served_kind == kind, f"{node_id}.{name}: {served_kind} != {kind}"
                opts = spec[1] if len(spec) > 1 else {}
                for key in ("default", "min", "max", "step"):
                    if key in opts:
                        assert served[name][1][key] == opts[key], f"{node_id}.{name}.{key}"


def test_core_nodes_used_by_workflows_exist(object_info: dict) -> None:
    """The core node table the workflow checks rely on matches this ComfyUI."""
    from workflow_tools import CORE_NODES, node_definitions

    missing = sorted(set(CORE_NODES) - set(object_info))
    assert not missing, f"core nodes missing from this ComfyUI: {missing}"
    for node_id, d in node_definitions({}, {}).items():
        info = object_info[node_id]
        assert info["output"] == list(d.outputs), f"{node_id} outputs {info['output']}"
        assert info["display_name"] == d.display
        assert bool(info["output_node"]) == d.output_node
        for section, required in (("required", True), ("optional", False)):
            served = info["input"].get(section, {})
            ours = [i for i in d.inputs if i.required == required]
            assert [i.name for i in ours] == [n for n in served if n in {i.name for i in ours}], node_id
            for inp in ours:
                assert inp.name in served, f"{node_id} has no {section} input {inp.name}"
                served_kind, served_opts = (
                    served[inp.name][0],
                    (served[inp.name][1] if len(served[inp.name]) > 1 else {}),
                )
                if inp.is_combo:
                    assert isinstance(served_kind, list) or served_kind == "COMBO", f"{node_id}.{inp.name}"
                    options = served_kind if isinstance(served_kind, list) else served_opts.get("options")
                    if inp.choices is not None:
                        assert options == inp.choices, f"{node_id}.{inp.name}: {options}"
                    for flag in ("image_upload", "audio_upload", "video_upload"):
                        assert bool(served_opts.get(flag)) == bool(inp.opts.get(flag)), f"{node_id}.{inp.name} {flag}"
                else:
                    assert served_kind == inp.kind, f"{node_id}.{inp.name}: {served_kind} != {inp.kind}"
                for key in ("default", "min", "max"):
                    if key in inp.opts:
                        assert served_opts.get(key) == inp.opts[key], f"{node_id}.{inp.name}.{key}"


def test_example_workflows_are_in_the_template_browser(comfy: ComfyServer) -> None:
    """ComfyUI lists workflows/*.json under the pack in Workflow -> Browse Templates and serves them."""
    import json

    from workflow_tools import WORKFLOWS

    listed = comfy.get_json("/api/workflow_templates").get(PACK_DIR_NAME, [])
    expected = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
    assert expected and sorted(listed) == expected
    for name in expected:
        served = comfy.get_json(f"/api/workflow_templates/{PACK_DIR_NAME}/{name}.json")
        assert served == json.loads((WORKFLOWS / f"{name}.json").read_text())


def test_web_extension_is_served(comfy: ComfyServer) -> None:
    """WEB_DIRECTORY's scripts are listed for the frontend to load, and served."""
    url = f"/extensions/{PACK_DIR_NAME}/js/stm2pe_audio_upload.js"
    assert url in comfy.get_json("/extensions")
    status, body = comfy._request(url)
    assert status == 200 and b"STM2PE.AudioUpload" in body
