"""Node definitions, UI-format → API-format conversion and graph checks for the example workflows.

Shared by ``tests/test_workflows.py`` (no ComfyUI), ``tests/comfyui/`` (real ComfyUI) and
``scripts/make_workflows.py`` (writes ``workflows/*.json`` and ``workflows/api/*.json``).

UI format (what people drag onto the canvas): ``nodes`` with positional ``widgets_values`` and
``links`` ``[id, from_node, from_slot, to_node, to_slot, type]``. API format (what ``POST /prompt``
takes): ``{node_id: {"class_type", "inputs": {name: value | [src_id, slot]}}}``. Converting needs
the node definitions because ``widgets_values`` is positional and holds UI-only values: the
``control_after_generate`` choice after a seed, and the upload widgets' values after a file combo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
API_DIR = WORKFLOWS / "api"

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
# Frontend-only nodes: saved in UI files, never sent to the server.
VIRTUAL_NODES = {"Note", "MarkdownNote"}
# How many extra, UI-only entries follow a widget in widgets_values (ComfyUI frontend 1.27,
# as saved in core's own workflow templates: LoadImage [file, "image"], LoadAudio [file, null, null]).
UPLOAD_EXTRAS = {"image_upload": ["image"], "video_upload": ["image"], "audio_upload": [None, None]}

# The core nodes our workflows use, as ComfyUI v0.3.64 declares them (checked against a real
# /object_info by tests/comfyui/test_comfyui_pack.py). "COMBO" options list the allowed values;
# ``files`` marks a combo filled from the input folder.
CORE_NODES: dict[str, dict[str, Any]] = {
    "LoadAudio": {
        "display": "Load Audio",
        "required": {"audio": ("COMBO", {"files": True, "audio_upload": True})},
        "outputs": ("AUDIO",),
        "output_names": ("AUDIO",),
    },
    "LoadImage": {
        "display": "Load Image",
        "required": {"image": ("COMBO", {"files": True, "image_upload": True})},
        "outputs": ("IMAGE", "MASK"),
        "output_names": ("IMAGE", "MASK"),
    },
    "VAELoader": {
        "display": "Load VAE",
        "required": {"vae_name": ("COMBO", {"model_folder": "vae"})},
        "outputs": ("VAE",),
        "output_names": ("VAE",),
    },
    "PreviewImage": {
        "display": "Preview Image",
        "required": {"images": ("IMAGE", {})},
        "outputs": (),
        "output_node": True,
    },
    "SaveImage": {
        "display": "Save Image",
        "required": {"images": ("IMAGE", {}), "filename_prefix": ("STRING", {"default": "ComfyUI"})},
        "outputs": (),
        "output_node": True,
    },
    "PreviewAudio": {
        "display": "Preview Audio",
        "required": {"audio": ("AUDIO", {})},
        "outputs": (),
        "output_node": True,
    },
    "CreateVideo": {
        "display": "Create Video",
        "required": {"images": ("IMAGE", {}), "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0})},
        "optional": {"audio": ("AUDIO", {})},
        "outputs": ("VIDEO",),
        "output_names": ("VIDEO",),
    },
    "SaveVideo": {
        "display": "Save Video",
        "required": {
            "video": ("VIDEO", {}),
            "filename_prefix": ("STRING", {"default": "video/ComfyUI"}),
            "format": ("COMBO", {"options": ["auto", "mp4"], "default": "auto"}),
            "codec": ("COMBO", {"options": ["auto", "h264"], "default": "auto"}),
        },
        "outputs": (),
        "output_node": True,
    },
}


# Combos of the pack filled from ComfyUI's input folder (their choices depend on the machine):
# a workflow value is valid when the workflow's needs provide that file.
PACK_FILE_COMBOS = {("STM2PELoadMusic", "audio"), ("STM2PELoadMotion", "motion_file")}


@dataclass
class Input:
    name: str
    kind: str | list  # type name, or the list of allowed values of a combo
    opts: dict
    required: bool

    @property
    def is_combo(self) -> bool:
        return isinstance(self.kind, list) or self.kind == "COMBO"

    @property
    def choices(self) -> list | None:
        if isinstance(self.kind, list):
            return self.kind
        return self.opts.get("options")

    @property
    def is_widget(self) -> bool:
        return (self.is_combo or self.kind in WIDGET_TYPES) and not self.opts.get("forceInput")

    @property
    def link_type(self) -> str:
        return "COMBO" if self.is_combo else str(self.kind)

    @property
    def has_control(self) -> bool:
        """A seed-like INT gets a control_after_generate combo right after it."""
        if self.kind != "INT":
            return False
        if "control_after_generate" in self.opts:  # an explicit False turns the name rule off
            return bool(self.opts["control_after_generate"])
        return self.name in ("seed", "noise_seed")

    @property
    def upload_extras(self) -> list:
        """Values of the upload widgets this widget brings; the frontend appends them after all
        declared widgets (they are not in the node's input_order)."""
        extras: list = []
        for flag, values in UPLOAD_EXTRAS.items():
            if self.opts.get(flag):
                extras.extend(values)
        return extras


@dataclass
class NodeDef:
    node_id: str
    display: str
    inputs: list[Input]
    outputs: tuple[str, ...]
    output_names: tuple[str, ...]
    output_node: bool
    core: bool = False
    category: str = ""
    extra: dict = field(default_factory=dict)

    def input(self, name: str) -> Input:
        for inp in self.inputs:
            if inp.name == name:
                return inp
        raise KeyError(f"{self.node_id} has no input {name!r}")

    @property
    def widgets(self) -> list[Input]:
        return [i for i in self.inputs if i.is_widget]

    @property
    def sockets(self) -> list[Input]:
        return [i for i in self.inputs if not i.is_widget]

    def widget_layout(self) -> list[tuple[str, Input | None]]:
        """What each widgets_values entry of a saved node holds, in order: ("value", input) for a
        declared widget, ("control", input) for a seed's control_after_generate, ("ui", None) for an
        upload/player widget's value (meaningless to the server)."""
        layout: list[tuple[str, Input | None]] = []
        trailing: list[tuple[str, Input | None]] = []
        for widget in self.widgets:
            layout.append(("value", widget))
            if widget.has_control:
                layout.append(("control", widget))
            trailing.extend(("ui", None) for _ in widget.upload_extras)
        return layout + trailing

    def default_ui_values(self, values: dict[str, Any]) -> list:
        """widgets_values for the given widget values (controls "fixed", upload widgets as saved by
        the frontend)."""
        out: list = []
        extras = iter([v for w in self.widgets for v in w.upload_extras])
        for kind, inp in self.widget_layout():
            if kind == "value":
                out.append(values[inp.name])
            elif kind == "control":
                out.append("fixed")
            else:
                out.append(next(extras))
        return out


def _inputs_from_spec(spec: dict) -> list[Input]:
    out = []
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            kind = entry[0]
            opts = dict(entry[1]) if len(entry) > 1 else {}
            out.append(
                Input(name, list(kind) if isinstance(kind, (list, tuple)) else kind, opts, section == "required")
            )
    return out


def node_definitions(pack_mappings: dict[str, type], display_names: dict[str, str]) -> dict[str, NodeDef]:
    """Definitions of the pack's nodes (from their classes) and of the core nodes we use."""
    defs: dict[str, NodeDef] = {}
    for node_id, spec in CORE_NODES.items():
        defs[node_id] = NodeDef(
            node_id,
            spec["display"],
            _inputs_from_spec(spec),
            tuple(spec["outputs"]),
            tuple(spec.get("output_names", spec["outputs"])),
            bool(spec.get("output_node")),
            core=True,
        )
    for node_id, cls in pack_mappings.items():
        inputs = _inputs_from_spec(cls.INPUT_TYPES())
        for inp in inputs:
            if (node_id, inp.name) in PACK_FILE_COMBOS:
                inp.opts["files"] = True
        defs[node_id] = NodeDef(
            node_id,
            display_names.get(node_id, node_id),
            inputs,
            tuple(cls.RETURN_TYPES),
            tuple(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES),
            bool(getattr(cls, "OUTPUT_NODE", False)),
            category=cls.CATEGORY,
        )
    return defs


def ui_to_api(ui: dict, defs: dict[str, NodeDef]) -> dict:
    """What the frontend's "Export (API)" produces for a UI-format workflow."""
    links = {link[0]: link for link in ui.get("links", [])}
    api: dict[str, dict] = {}
    for node in sorted(ui["nodes"], key=lambda n: n["id"]):
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) in (2, 4):
            continue
        d = defs[node["type"]]
        values = list(node.get("widgets_values") or [])
        layout = d.widget_layout()
        if len(values) != len(layout):
            raise ValueError(f"node {node['id']} ({d.node_id}): {len(values)} widgets_values, expected {len(layout)}")
        inputs: dict[str, Any] = {}
        for (kind, widget), value in zip(layout, values):
            if kind == "value":
                inputs[widget.name] = value
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                link = links[slot["link"]]
                inputs[slot["name"]] = [str(link[1]), link[2]]
        ordered = {i.name: inputs[i.name] for i in d.inputs if i.name in inputs}
        api[str(node["id"])] = {
            "inputs": ordered,
            "class_type": node["type"],
            "_meta": {"title": node.get("title") or d.display},
        }
    return api


def check_value(where: str, inp: Input, value: Any, input_files: set[str] | None = None) -> list[str]:
    """Problems with a widget value (empty list when it is valid)."""
    problems: list[str] = []
    if inp.is_combo and inp.opts.get("model_folder"):
        wanted = f"{inp.opts['model_folder']}/{value}"
        if input_files is not None and wanted not in input_files:
            problems.append(f"{where}: model file {wanted!r} is not listed in the workflow's needs")
        return problems
    if inp.is_combo:
        if inp.opts.get("files") or (inp.choices is not None and _looks_like_file_list(inp)):
            if input_files is not None and value not in input_files and value not in (inp.choices or []):
                problems.append(f"{where}: {value!r} is neither a provided input file nor an option")
        elif inp.choices is not None and value not in inp.choices:
            problems.append(f"{where}: {value!r} not in {inp.choices}")
        return problems
    if inp.kind == "INT":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: INT value {value!r}"]
    elif inp.kind == "FLOAT":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return [f"{where}: FLOAT value {value!r}"]
    elif inp.kind == "BOOLEAN":
        if not isinstance(value, bool):
            return [f"{where}: BOOLEAN value {value!r}"]
        return problems
    elif inp.kind == "STRING":
        if not isinstance(value, str):
            return [f"{where}: STRING value {value!r}"]
        return problems
    lo, hi = inp.opts.get("min"), inp.opts.get("max")
    if lo is not None and value < lo:
        problems.append(f"{where}: {value} < min {lo}")
    if hi is not None and value > hi:
        problems.append(f"{where}: {value} > max {hi}")
    return problems


def _looks_like_file_list(inp: Input) -> bool:
    return any(inp.opts.get(flag) for flag in UPLOAD_EXTRAS) or inp.opts.get("files", False)


def check_api(api: dict, defs: dict[str, NodeDef], input_files: set[str] | None = None) -> list[str]:
    """Problems in an API-format graph: unknown nodes, dangling or mistyped links, bad values."""
    problems: list[str] = []
    if not any(defs[n["class_type"]].output_node for n in api.values() if n.get("class_type") in defs):
        problems.append("no output node")
    for node_id, node in api.items():
        cls = node.get("class_type")
        if cls not in defs:
            problems.append(f"{node_id}: unknown node type {cls!r}")
            continue
        d = defs[cls]
        for name in node["inputs"]:
            if name not in {i.name for i in d.inputs}:
                problems.append(f"{node_id} ({cls}): unknown input {name!r}")
        for inp in d.inputs:
            where = f"{node_id} ({cls}).{inp.name}"
            if inp.name not in node["inputs"]:
                if inp.required:
                    problems.append(f"{where}: required input missing")
                continue
            value = node["inputs"][inp.name]
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                src = api.get(value[0])
                if src is None or src.get("class_type") not in defs:
                    problems.append(f"{where}: link from missing node {value[0]}")
                    continue
                outs = defs[src["class_type"]].outputs
                if not (0 <= value[1] < len(outs)):
                    problems.append(
                        f"{where}: link from output {value[1]} of {src['class_type']} ({len(outs)} outputs)"
                    )
                    continue
                if outs[value[1]] != inp.link_type and "*" not in (outs[value[1]], inp.link_type):
                    problems.append(f"{where}: {src['class_type']} gives {outs[value[1]]}, input takes {inp.link_type}")
            elif not inp.is_widget:
                problems.append(f"{where}: socket input given a literal {value!r}")
            else:
                problems.extend(check_value(where, inp, value, input_files))
    return problems


def check_ui(ui: dict, defs: dict[str, NodeDef], input_files: set[str] | None = None) -> list[str]:
    """Problems in a UI-format graph: node slots vs definitions, link bookkeeping and types."""
    problems: list[str] = []
    nodes = {n["id"]: n for n in ui["nodes"]}
    if len(nodes) != len(ui["nodes"]):
        problems.append("duplicate node ids")
    if ui.get("last_node_id", 0) < max(nodes, default=0):
        problems.append("last_node_id smaller than a node id")
    if ui.get("last_link_id", 0) < max((link[0] for link in ui.get("links", [])), default=0):
        problems.append("last_link_id smaller than a link id")
    for link in ui.get("links", []):
        link_id, src, src_slot, dst, dst_slot, kind = link
        if src not in nodes or dst not in nodes:
            problems.append(f"link {link_id}: missing node")
            continue
        s, t = nodes[src], nodes[dst]
        try:
            out = s["outputs"][src_slot]
            inp = t["inputs"][dst_slot]
        except (IndexError, KeyError):
            problems.append(f"link {link_id}: slot out of range")
            continue
        if link_id not in (out.get("links") or []):
            problems.append(f"link {link_id}: not listed in node {src} output {out['name']}")
        if inp.get("link") != link_id:
            problems.append(f"link {link_id}: node {dst} input {inp['name']} points at {inp.get('link')}")
        if not (out["type"] == inp["type"] == kind):
            problems.append(f"link {link_id}: {out['type']} -> {inp['type']} (link says {kind})")
        if s["type"] in defs and t["type"] in defs:
            src_type = defs[s["type"]].outputs[src_slot]
            dst_type = defs[t["type"]].input(inp["name"]).link_type
            if src_type != dst_type:
                problems.append(
                    f"link {link_id}: {s['type']} gives {src_type}, {t['type']}.{inp['name']} takes {dst_type}"
                )
    for node in ui["nodes"]:
        kind = node["type"]
        if kind in VIRTUAL_NODES:
            continue
        if kind not in defs:
            problems.append(f"node {node['id']}: unknown type {kind!r}")
            continue
        d = defs[kind]
        outs = [(o["name"], o["type"]) for o in node.get("outputs", [])]
        if outs != list(zip(d.output_names, d.outputs)):
            problems.append(f"node {node['id']} ({kind}): outputs {outs} != {list(zip(d.output_names, d.outputs))}")
        for slot in node.get("inputs", []):
            try:
                inp = d.input(slot["name"])
            except KeyError:
                problems.append(f"node {node['id']} ({kind}): unknown input slot {slot['name']!r}")
                continue
            if slot["type"] != inp.link_type:
                problems.append(f"node {node['id']} ({kind}).{inp.name}: slot type {slot['type']} != {inp.link_type}")
            if inp.is_widget and slot.get("widget", {}).get("name") != inp.name:
                problems.append(f"node {node['id']} ({kind}).{inp.name}: widget input without widget marker")
        slot_names = {s["name"] for s in node.get("inputs", [])}
        for inp in d.sockets:
            if inp.name not in slot_names:
                problems.append(f"node {node['id']} ({kind}): socket {inp.name} missing from inputs")
            elif inp.required and not any(s["name"] == inp.name and s.get("link") is not None for s in node["inputs"]):
                problems.append(f"node {node['id']} ({kind}): required input {inp.name} not connected")
        values = list(node.get("widgets_values") or [])
        layout = d.widget_layout()
        if len(values) != len(layout):
            problems.append(f"node {node['id']} ({kind}): {len(values)} widgets_values, expected {len(layout)}")
            continue
        for (slot, widget), value in zip(layout, values):
            if slot == "value":
                problems.extend(check_value(f"node {node['id']} ({kind}).{widget.name}", widget, value, input_files))
            elif slot == "control" and value not in ("fixed", "increment", "decrement", "randomize"):
                problems.append(f"node {node['id']} ({kind}).{widget.name}: control_after_generate {value!r}")
    return problems


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


# What each example workflow needs besides the pack: ``inputs`` = files to put in ComfyUI's input
# folder (name in the graph -> file in this repository), ``pack_files`` = files of this repository
# that must exist (bundled weights), ``models`` = files under models/. The real-ComfyUI test copies
# the inputs, skips a workflow whose files are absent, and applies ``test_overrides``
# ({"ClassType.input": value}, e.g. a shorter excerpt) to stay fast on a CPU.
# the first accepted name of every photoreal file (stm2pe_core/weights/champ.py SLOTS)
PHOTOREAL_MODELS = [
    "champ/denoising_unet.pth",
    "champ/reference_unet.pth",
    "champ/motion_module.pth",
    "champ/guidance_encoder_depth.pth",
    "champ/guidance_encoder_normal.pth",
    "champ/guidance_encoder_semantic_map.pth",
    "champ/guidance_encoder_dwpose.pth",
    "vae/sd-vae-ft-mse.safetensors",
    "clip_vision/image_encoder",
]
BUNDLED_M2PENC = "stm2pe_core/assets/m2penc_default.safetensors"
# Workflows also run on tiny random networks (tests/comfyui/standins_pack; a random M2PEnc while the
# bundled one is absent) at this size, so every node but the model loaders runs for real in ComfyUI
# without the model files.
_TINY_SIZE = {
    "STM2PEReferenceUNet.width": 64,
    "STM2PEReferenceUNet.height": 64,
    "STM2PERenderSMPLGuidance.width": 64,
    "STM2PERenderSMPLGuidance.height": 64,
}
TINY = {**_TINY_SIZE, "STM2PEDenoiseVideoSegment.steps": 2}
TINY_SONG = {**_TINY_SIZE, "STM2PEDenoiseSong.steps": 2, "STM2PEDenoiseSong.segment_frames": 30}
STANDIN_NODES = {"STM2PELoadModels": "ZZTestTinyModels", "VAELoader": "ZZTestTinyVAE"}
WORKFLOW_NEEDS: dict[str, dict[str, Any]] = {
    "01_music_to_dance_preview": {
        "inputs": {},  # Load Music uses "demo_song.ogg (bundled)"
        "pack_files": [BUNDLED_M2PENC],
        "models": [],
        "test_overrides": {"STM2PELoadMusic.duration_seconds": 4.0},
        "standin_overrides": {"STM2PELoadMusic.duration_seconds": 4.0},
        "expect_videos": {"frames": 60, "fps": 15, "audio": True},
        "timeout": 600,
    },
    "02_music_to_dance_video": {
        "inputs": {"stm2pe_dancer.png": "generated:photo"},
        "pack_files": [BUNDLED_M2PENC],
        "models": PHOTOREAL_MODELS,
        "test_overrides": {"STM2PELoadMusic.duration_seconds": 2.0},
        "standin_overrides": {"STM2PELoadMusic.duration_seconds": 4.0, **TINY_SONG},
        "expect_videos": {"frames": 60, "fps": 15, "audio": True},
        "timeout": 1800,
    },
    "03_guidance_ablation_dns_p_pdns": {
        "inputs": {"stm2pe_dancer.png": "generated:photo"},
        "pack_files": [BUNDLED_M2PENC],
        "models": PHOTOREAL_MODELS,
        "test_overrides": {"STM2PELoadMusic.duration_seconds": 1.0},
        "standin_overrides": {"STM2PELoadMusic.duration_seconds": 1.0, **TINY},
        "expect_videos": {"frames": 15, "fps": 15, "audio": True},
        "timeout": 1800,
    },
    "04_motion_file_to_video": {
        "inputs": {"stm2pe_sample_dance.npz": "generated:motion", "stm2pe_dancer.png": "generated:photo"},
        "pack_files": [],
        "models": PHOTOREAL_MODELS,
        "test_overrides": {"STM2PELoadMotion.duration_seconds": 1.0},
        "standin_overrides": {"STM2PELoadMotion.duration_seconds": 1.0, **TINY},
        "expect_videos": {"frames": 15, "fps": 15, "audio": False},
        "timeout": 1800,
    },
}
