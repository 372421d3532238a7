"""The contract every node class must keep with ComfyUI's classic (V1) loader, checked without
ComfyUI: what ``/object_info``, prompt validation and execution read from the class."""

from __future__ import annotations

import importlib.util
import inspect
import sys

import pytest
from pack_loader import REPO, load_pack

# Types that ComfyUI core defines; anything else a node declares must be ours (STM2PE_ prefix).
CORE_TYPES = {
    "IMAGE", "MASK", "LATENT", "AUDIO", "VIDEO", "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO",
    "MODEL", "VAE", "CLIP", "CLIP_VISION", "CLIP_VISION_OUTPUT", "CONDITIONING", "*",
}  # fmt: skip
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
UPLOAD_FLAGS = ("image_upload", "audio_upload", "video_upload", "upload")
EXPECTED_MODULES = ("music", "motion", "m2penc", "diffusion", "video")


@pytest.fixture(scope="module")
def pack():
    return load_pack()


def _nodes():
    pack = load_pack()
    return sorted(pack.NODE_CLASS_MAPPINGS.items())


def _node_params():
    return [pytest.param(node_id, cls, id=node_id) for node_id, cls in _nodes()]


def test_pack_imports_without_comfyui(pack) -> None:
    assert importlib.util.find_spec("folder_paths") is None, "this check needs an interpreter without ComfyUI"
    assert not [m for m in ("folder_paths", "comfy", "comfy_api", "server", "execution") if m in sys.modules]
    nodes = sys.modules[f"{pack.__name__}.nodes"]
    assert nodes.IMPORT_FAILURES == {}, nodes.IMPORT_FAILURES
    assert (
        pack.NODE_CLASS_MAPPINGS is nodes.NODE_CLASS_MAPPINGS or pack.NODE_CLASS_MAPPINGS == nodes.NODE_CLASS_MAPPINGS
    )


def test_every_node_module_is_present_and_contributes(pack) -> None:
    modules = {cls.__module__.rsplit(".", 1)[-1] for cls in pack.NODE_CLASS_MAPPINGS.values()}
    present = {p.stem for p in (REPO / "nodes").glob("*.py")} & set(EXPECTED_MODULES)
    assert present <= modules, f"node modules that define no node: {sorted(present - modules)}"
    assert set(EXPECTED_MODULES) <= present, f"node modules not written yet: {sorted(set(EXPECTED_MODULES) - present)}"


def test_ids_display_names_and_output_nodes(pack) -> None:
    ids = pack.NODE_CLASS_MAPPINGS
    names = pack.NODE_DISPLAY_NAME_MAPPINGS
    assert ids, "no nodes registered"
    assert set(names) == set(ids), f"display names without nodes / nodes without names: {set(names) ^ set(ids)}"
    assert all(isinstance(v, str) and v.strip() for v in names.values())
    assert len(set(names.values())) == len(names), "two nodes share a display name"
    assert any(getattr(cls, "OUTPUT_NODE", False) for cls in ids.values()), "no output node: no graph could run"


@pytest.mark.parametrize(("node_id", "cls"), _node_params())
def test_node_class_contract(node_id: str, cls: type) -> None:
    assert node_id.startswith("STM2PE"), node_id
    assert isinstance(cls.CATEGORY, str) and cls.CATEGORY.startswith("STM2PE"), cls.CATEGORY
    assert isinstance(cls.FUNCTION, str)
    method = getattr(cls, cls.FUNCTION, None)
    assert callable(method), f"{node_id}.FUNCTION={cls.FUNCTION!r} is not a method of the class"

    returns = cls.RETURN_TYPES
    assert isinstance(returns, tuple), f"{node_id}.RETURN_TYPES must be a tuple"
    for kind in returns:
        _check_type_name(node_id, kind, output=True)
    names = getattr(cls, "RETURN_NAMES", None)
    if names is not None:
        assert isinstance(names, tuple) and len(names) == len(returns), f"{node_id}: RETURN_NAMES/RETURN_TYPES lengths"
        assert len(set(names)) == len(names), f"{node_id}: duplicate RETURN_NAMES"
    for attr in ("OUTPUT_IS_LIST", "OUTPUT_TOOLTIPS"):
        value = getattr(cls, attr, None)
        if value is not None:
            assert len(value) == len(returns), f"{node_id}.{attr} length"
    if not returns:
        assert getattr(cls, "OUTPUT_NODE", False), f"{node_id} returns nothing and is no output node"

    spec = cls.INPUT_TYPES()
    assert isinstance(spec, dict) and set(spec) <= {"required", "optional", "hidden"}, spec.keys()
    seen: set[str] = set()
    for section in ("required", "optional"):
        entries = spec.get(section, {})
        assert isinstance(entries, dict), f"{node_id}.{section} must be a dict"
        for name, entry in entries.items():
            assert name not in seen, f"{node_id}: input {name} declared twice"
            seen.add(name)
            _check_input(node_id, name, entry)
    hidden = spec.get("hidden", {})
    assert isinstance(hidden, dict)

    params = inspect.signature(method).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for name in list(spec.get("required", {})) + list(hidden):
        assert takes_kwargs or name in params, f"{node_id}.{cls.FUNCTION}() lacks required input {name!r}"
    for name in spec.get("optional", {}):
        # ComfyUI leaves unconnected optional inputs out of the call
        if name in params:
            assert params[name].default is not inspect.Parameter.empty, (
                f"{node_id}.{cls.FUNCTION}({name}) needs a default"
            )
        else:
            assert takes_kwargs, f"{node_id}.{cls.FUNCTION}() lacks optional input {name!r}"
    if hasattr(cls, "VALIDATE_INPUTS"):
        assert inspect.ismethod(cls.VALIDATE_INPUTS), f"{node_id}.VALIDATE_INPUTS must be a classmethod"
    if hasattr(cls, "IS_CHANGED"):
        assert inspect.ismethod(cls.IS_CHANGED), f"{node_id}.IS_CHANGED must be a classmethod"


def _check_type_name(node_id: str, kind, output: bool = False) -> None:
    assert isinstance(kind, str) and kind, f"{node_id}: type {kind!r} must be a non-empty string"
    if kind not in CORE_TYPES:
        assert kind.startswith("STM2PE_"), f"{node_id}: custom type {kind!r} must start with STM2PE_"


def _check_input(node_id: str, name: str, entry) -> None:
    where = f"{node_id}.{name}"
    assert isinstance(entry, tuple) and 1 <= len(entry) <= 2, f"{where}: (TYPE,) or (TYPE, options) tuple"
    kind = entry[0]
    opts = entry[1] if len(entry) == 2 else {}
    assert isinstance(opts, dict), f"{where}: options must be a dict"
    if isinstance(kind, (list, tuple)):
        assert all(isinstance(v, str) for v in kind), f"{where}: combo values must be strings"
        assert kind or any(opts.get(flag) for flag in UPLOAD_FLAGS), f"{where}: empty combo without an upload widget"
        if "default" in opts:
            assert opts["default"] in kind, f"{where}: default {opts['default']!r} not among {kind}"
        return
    _check_type_name(node_id, kind)
    if kind in ("INT", "FLOAT"):
        lo, hi = opts.get("min"), opts.get("max")
        assert "default" in opts, f"{where}: numeric widget needs a default"
        default = opts["default"]
        if kind == "INT":
            assert isinstance(default, int) and not isinstance(default, bool), f"{where}: INT default {default!r}"
        else:
            assert isinstance(default, (int, float)) and not isinstance(default, bool), f"{where}: FLOAT default"
        if lo is not None:
            assert default >= lo, f"{where}: default {default} < min {lo}"
        if hi is not None:
            assert default <= hi, f"{where}: default {default} > max {hi}"
        if lo is not None and hi is not None:
            assert lo <= hi, f"{where}: min > max"
        if "step" in opts:
            assert opts["step"] > 0, f"{where}: step must be positive"
    elif kind == "BOOLEAN":
        assert isinstance(opts.get("default", False), bool), f"{where}: BOOLEAN default"
    elif kind == "STRING":
        assert isinstance(opts.get("default", ""), str), f"{where}: STRING default"
