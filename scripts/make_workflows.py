"""Writes the example workflows: UI format in workflows/*.json (drag onto the ComfyUI canvas) and
API format in workflows/api/*.json (POST /prompt; used by the tests).

    python scripts/make_workflows.py          # rewrite both folders
    python scripts/make_workflows.py --check  # exit 1 when the files differ from what would be written

Each graph is described once below; widget values not given take the node's declared default.
Input files the graphs name (music, photo, motion) and model files they need are listed in
``tests/workflow_tools.py`` ``WORKFLOW_NEEDS``.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from pack_loader import load_pack  # noqa: E402
from workflow_tools import API_DIR, VIRTUAL_NODES, WORKFLOWS, NodeDef, node_definitions  # noqa: E402

COLUMN_W = 400
NODE_W = 330


class Ref:
    """Output ``slot`` of a node in a graph being built."""

    def __init__(self, node: GNode, slot: int):
        self.node, self.slot = node, slot


class GNode:
    def __init__(self, graph: Graph, node_id: int, d: NodeDef | None, kind: str, title: str | None, values: dict):
        self.graph, self.id, self.d, self.kind, self.title, self.values = graph, node_id, d, kind, title, values

    def out(self, name: str) -> Ref:
        assert self.d is not None
        names = list(self.d.output_names)
        if name not in names:
            raise KeyError(f"{self.kind} has no output {name!r} (has {names})")
        return Ref(self, names.index(name))

    def __getitem__(self, slot: int) -> Ref:
        return Ref(self, slot)


class Graph:
    def __init__(self, name: str, defs: dict[str, NodeDef]):
        self.name, self.defs = name, defs
        self.nodes: list[GNode] = []
        self.notes: list[tuple[str, str]] = []

    def add(self, kind: str, title: str | None = None, **values: Any) -> GNode:
        if kind not in self.defs:
            raise KeyError(f"unknown node type {kind!r}")
        d = self.defs[kind]
        known = {i.name for i in d.inputs}
        unknown = set(values) - known
        if unknown:
            raise KeyError(f"{kind} has no inputs {sorted(unknown)} (has {sorted(known)})")
        node = GNode(self, len(self.nodes) + 1, d, kind, title, values)
        self.nodes.append(node)
        return node

    def note(self, title: str, text: str) -> None:
        self.notes.append((title, text))

    # -- layout ----------------------------------------------------------------------------------
    def _depths(self) -> dict[int, int]:
        depth: dict[int, int] = {}
        for node in self.nodes:  # nodes are added after their sources
            srcs = [v.node.id for v in node.values.values() if isinstance(v, Ref)]
            depth[node.id] = 1 + max((depth[s] for s in srcs), default=-1)
        return depth

    def _widget_value(self, node: GNode, inp) -> Any:
        """The widget's value (a linked widget keeps its default in widgets_values)."""
        if inp.name in node.values and not isinstance(node.values[inp.name], Ref):
            return node.values[inp.name]
        if "default" in inp.opts:
            return inp.opts["default"]
        choices = inp.choices
        if choices:
            return choices[0]
        if inp.kind == "STRING":
            return ""
        raise ValueError(f"{node.kind}.{inp.name}: give a value (no default)")

    # -- API format ------------------------------------------------------------------------------
    def api(self) -> dict:
        out: dict[str, dict] = {}
        for node in self.nodes:
            inputs: dict[str, Any] = {}
            for inp in node.d.inputs:
                value = node.values.get(inp.name)
                if isinstance(value, Ref):
                    inputs[inp.name] = [str(value.node.id), value.slot]
                elif inp.is_widget:
                    inputs[inp.name] = self._widget_value(node, inp)
                elif inp.required:
                    raise ValueError(f"{self.name}: {node.kind}.{inp.name} is required and not connected")
            out[str(node.id)] = {
                "inputs": inputs,
                "class_type": node.kind,
                "_meta": {"title": node.title or node.d.display},
            }
        return out

    # -- UI format -------------------------------------------------------------------------------
    def ui(self) -> dict:
        depth = self._depths()
        column_y: dict[int, float] = {}
        links: list[list] = []
        ui_nodes: list[dict] = []
        out_links: dict[tuple[int, int], list[int]] = {}
        in_link: dict[tuple[int, str], int] = {}
        for node in self.nodes:
            for inp in node.d.inputs:
                value = node.values.get(inp.name)
                if isinstance(value, Ref):
                    link_id = len(links) + 1
                    src_type = value.node.d.outputs[value.slot]
                    dst_slot = [i.name for i in self._slots(node)].index(inp.name)
                    links.append([link_id, value.node.id, value.slot, node.id, dst_slot, src_type])
                    out_links.setdefault((value.node.id, value.slot), []).append(link_id)
                    in_link[(node.id, inp.name)] = link_id
        for order, node in enumerate(self.nodes):
            col = depth[node.id]
            y = column_y.get(col, 80.0)
            widgets = node.d.widgets
            slots = self._slots(node)
            height = 30 + 22 * max(len(slots), len(node.d.outputs)) + 24 * len(widgets)
            height += sum(80 for w in widgets if w.opts.get("multiline"))
            height += sum(70 for w in widgets if w.upload_extras)  # player / upload button
            if node.d.output_node:
                height += 200  # room for the preview the node shows after a run
            column_y[col] = y + height + 60
            inputs = []
            for inp in slots:
                entry: dict[str, Any] = {
                    "name": inp.name,
                    "type": inp.link_type,
                    "link": in_link.get((node.id, inp.name)),
                }
                if not inp.required:
                    entry["shape"] = 7
                if inp.is_widget:
                    entry["widget"] = {"name": inp.name}
                inputs.append(entry)
            outputs = [
                {"name": name, "type": kind, "links": out_links.get((node.id, slot), []), "slot_index": slot}
                for slot, (name, kind) in enumerate(zip(node.d.output_names, node.d.outputs))
            ]
            values = node.d.default_ui_values({inp.name: self._widget_value(node, inp) for inp in widgets})
            entry = {
                "id": node.id,
                "type": node.kind,
                "pos": [60 + COLUMN_W * col, y],
                "size": [NODE_W, height],
                "flags": {},
                "order": order,
                "mode": 0,
                "inputs": inputs,
                "outputs": outputs,
                "properties": {"Node name for S&R": node.kind},
                "widgets_values": values,
            }
            if node.title:
                entry["title"] = node.title
            ui_nodes.append(entry)
        note_y = 80.0
        for title, text in self.notes:
            node_id = len(ui_nodes) + 1
            lines = text.count("\n") + len(text) // 48 + 2
            ui_nodes.append(
                {
                    "id": node_id,
                    "type": "Note",
                    "pos": [60 - COLUMN_W - 40, note_y],
                    "size": [COLUMN_W, 30 + 19 * lines],
                    "flags": {},
                    "order": len(ui_nodes),
                    "mode": 0,
                    "inputs": [],
                    "outputs": [],
                    "title": title,
                    "properties": {},
                    "widgets_values": [text],
                    "color": "#432",
                    "bgcolor": "#653",
                }
            )
            note_y += 30 + 19 * lines + 40
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"stm2pe-dance/workflows/{self.name}")),
            "revision": 0,
            "last_node_id": len(ui_nodes),
            "last_link_id": len(links),
            "nodes": ui_nodes,
            "links": links,
            "groups": [],
            "config": {},
            "extra": {"ds": {"scale": 0.75, "offset": [COLUMN_W + 80, 40]}},
            "version": 0.4,
        }

    def _slots(self, node: GNode):
        """Input slots shown on the node: sockets, plus widgets that a link drives."""
        return [i for i in node.d.inputs if not i.is_widget or isinstance(node.values.get(i.name), Ref)]


# ------------------------------------------------------------------------------------------------
# The graphs
# ------------------------------------------------------------------------------------------------
GRAPHS: dict[str, Any] = {}


def graph(name: str):
    def register(fn):
        GRAPHS[name] = fn
        return fn

    return register


DEMO_SONG = "demo_song.ogg (bundled)"  # Load Music's option for stm2pe_core/assets/demo_song.ogg


@graph("01_music_to_dance_preview")
def music_to_dance_preview(g: Graph) -> None:
    g.note(
        "Music -> dance preview (nothing to download)",
        "Runs with the embedded default: librosa music features + the bundled M2PEnc + the built-in "
        "preview body rendered with pyrender.\n\n"
        "1. Load Music: 'demo_song.ogg (bundled)' is the pack's 20-s demo song; pick or upload your own "
        "song instead. Set duration_seconds to try a short excerpt first.\n"
        "2. Jukebox Encode: 'librosa' mode with the beat channel is what the bundled M2PEnc was "
        "trained on. 'jukebox' needs jukemirlib + its weights + a big GPU.\n"
        "3. M2PEnc Pose Guidance: the dance (SMPL motion) and a keypoint-heatmap skeleton preview.\n"
        "4. Render SMPL Guidance: CHAMP-style depth / normal / semantic / skeleton maps; with SMPL "
        "model files in models/smpl the real SMPL body is used.\n"
        "5. Create Video + Save Video (core): the preview grid with the music, saved to "
        "ComfyUI/output/stm2pe/.\n"
        "6. Save Motion: the dance as an STM2PE .npz in ComfyUI/output/stm2pe/; Load Motion lists it as "
        "'stm2pe/dance_motion_00001_.npz [output]' (refresh the page), e.g. for workflow 04.",
    )
    music = g.add("STM2PELoadMusic", audio=DEMO_SONG, fps=15.0)
    feats = g.add("STM2PEJukeboxEncode", music=music.out("music"), mode="librosa", beat_channel=True)
    m2p = g.add("STM2PEM2PEncPoseGuidance", music_features=feats.out("music_features"))
    g.add("STM2PESaveMotion", motion=m2p.out("motion"), filename_prefix="stm2pe/dance_motion")
    maps = g.add("STM2PERenderSMPLGuidance", motion=m2p.out("motion"), width=512, height=512)
    video = g.add("CreateVideo", images=maps.out("preview"), fps=15.0, audio=music.out("audio"))
    g.add("SaveVideo", video=video.out("VIDEO"), filename_prefix="stm2pe/dance_preview")
    heat = g.add(
        "CreateVideo",
        title="Create Video (heatmap skeletons)",
        images=m2p.out("heatmap_preview"),
        fps=15.0,
        audio=music.out("audio"),
    )
    g.add(
        "SaveVideo",
        title="Save Video (heatmap skeletons)",
        video=heat.out("VIDEO"),
        filename_prefix="stm2pe/dance_heatmaps",
    )


PHOTO = "stm2pe_dancer.png"
VAE_FILE = "sd-vae-ft-mse.safetensors"
MODEL_FILES_NOTE = (
    "Model files (nothing downloads by itself; see the README's Model files table): models/champ/ "
    "denoising_unet.pth, reference_unet.pth, motion_module.pth, guidance_encoder_{depth,normal,semantic_map,"
    "dwpose}.pth (CHAMP release); models/vae/sd-vae-ft-mse.safetensors; models/clip_vision/image_encoder/ "
    "(sd-image-variations). Load STM2PE Models names any file that is missing and where it goes."
)


def _music_to_motion(g: Graph, duration: float) -> tuple[GNode, GNode]:
    music = g.add("STM2PELoadMusic", audio=DEMO_SONG, duration_seconds=duration, fps=15.0)
    feats = g.add("STM2PEJukeboxEncode", music=music.out("music"), mode="librosa", beat_channel=True)
    m2p = g.add("STM2PEM2PEncPoseGuidance", music_features=feats.out("music_features"))
    return music, m2p


def _photo_and_models(g: Graph, size: int = 640) -> tuple[GNode, GNode, GNode]:
    photo = g.add("LoadImage", title="Load Image (the dancer's photo)", image=PHOTO)
    models = g.add("STM2PELoadModels", guidance_encoders="PDNS")
    ref = g.add("STM2PEReferenceUNet", models=models.out("models"), image=photo.out("IMAGE"), width=size, height=size)
    return photo, models, ref


def _render(g: Graph, motion, photo: GNode, size: int = 640) -> GNode:
    return g.add(
        "STM2PERenderSMPLGuidance",
        motion=motion,
        reference_image=photo.out("IMAGE"),
        width=size,
        height=size,
        camera="match reference person",
    )


@graph("02_music_to_dance_video")
def music_to_dance_video(g: Graph) -> None:
    g.note(
        "Music + photo -> dance video (photoreal)",
        "The whole STM2PE-Diff chain: music features -> M2PEnc dance -> CHAMP guidance maps rendered on the "
        "person in your photo -> reference UNet + 3D denoising UNet -> one mp4 with the music.\n\n"
        "Load Image: a full-body photo of the dancer (plain background works best).\n"
        "Denoise Song: the song as 5-second segments (75 frames at 15 fps) that continue each other: each "
        "starts from the photo's latent lightly noised (noise_prior) and follows the previous segment over "
        "their 8 shared frames (tie_until), then Stitch Segments blends the overlaps and decodes in chunks. "
        "For one segment at a time use Denoise Video Segment + Collect Segments (see workflow 04).\n"
        "Guidance: the bundled M2PEnc has no trained pose-guidance head, so its dance is rendered to "
        "depth/normal/semantic/skeleton maps (PDNS). With M2PEnc weights that have one, connect its "
        "pose_guidance output to Denoise Song instead.\n"
        "Time: 20 DDIM steps per segment; set duration_seconds in Load Music to try an excerpt first.\n\n"
        + MODEL_FILES_NOTE,
    )
    music, m2p = _music_to_motion(g, duration=10.0)
    photo, models, ref = _photo_and_models(g)
    maps = _render(g, m2p.out("motion"), photo)
    song = g.add(
        "STM2PEDenoiseSong",
        models=models.out("models"),
        reference=ref.out("reference"),
        guidance_maps=maps.out("guidance_maps"),
        guidance_set="PDNS",
        seed=42,
    )
    vae = g.add("VAELoader", vae_name=VAE_FILE)
    g.add(
        "STM2PEStitchSegments",
        segments=song.out("segments"),
        vae=vae.out("VAE"),
        fps=15.0,
        filename_prefix="stm2pe/dance_video",
        audio=music.out("audio"),
    )
    g.add("PreviewImage", title="Preview Image (guidance on the photo)", images=maps.out("preview"))


@graph("03_guidance_ablation_dns_p_pdns")
def guidance_ablation(g: Graph) -> None:
    g.note(
        "Ablation: DNS vs P vs PDNS guidance",
        "The same dance, photo and seed denoised three times with different CHAMP guidance encoders summed "
        "after the UNet's conv_in: DNS = depth + normal + semantic, P = pose skeleton only, PDNS = all four "
        "(the paper's comparison). Compare the three videos in ComfyUI/output/stm2pe/ablation_*.\n\n"
        "To add the paper's own M2PEnc guidance as a fourth row: use M2PEnc weights with a trained "
        "pose-guidance head (models/stm2pe), add a Denoise Video Segment and connect M2PEnc's pose_guidance "
        "to it instead of guidance_maps.\n\n" + MODEL_FILES_NOTE,
    )
    music, m2p = _music_to_motion(g, duration=5.0)
    photo, models, ref = _photo_and_models(g)
    maps = _render(g, m2p.out("motion"), photo)
    for kind in ("DNS", "P", "PDNS"):
        seg = g.add(
            "STM2PEDenoiseVideoSegment",
            title=f"Denoise Video Segment ({kind})",
            models=models.out("models"),
            reference=ref.out("reference"),
            guidance_maps=maps.out("guidance_maps"),
            guidance_set=kind,
            seed=42,
            start_frame=0,
            num_frames=0,
            decode=True,
        )
        g.add(
            "STM2PESaveDanceVideo",
            title=f"Save Dance Video ({kind})",
            images=seg.out("frames"),
            fps=15.0,
            filename_prefix=f"stm2pe/ablation_{kind}",
            audio=music.out("audio"),
        )


@graph("04_motion_file_to_video")
def motion_file_to_video(g: Graph) -> None:
    g.note(
        "Motion file -> dance video (CHAMP-style)",
        "Animate the photo with an existing SMPL dance instead of one generated from music: AIST++ or EDGE "
        ".pkl, AMASS or STM2PE .npz in ComfyUI/input (pickles are read as plain arrays only), or a dance "
        "that Save Motion wrote (workflow 01), listed as '... [output]'.\n\n"
        "Render SMPL Guidance places the body on the person in the photo (camera: match reference person) "
        "and renders CHAMP's depth / normal / semantic / skeleton maps; the rest is CHAMP's pipeline. "
        "num_frames 0 runs the whole motion as one segment (context windows keep memory bounded); the "
        "rendered maps are also saved as a preview video.\n\n" + MODEL_FILES_NOTE,
    )
    motion = g.add("STM2PELoadMotion", motion_file=SAMPLE_MOTION, fps=15.0, duration_seconds=0.0)
    photo, models, ref = _photo_and_models(g)
    maps = _render(g, motion.out("motion"), photo)
    g.add(
        "STM2PESaveDanceVideo",
        title="Save Dance Video (guidance preview)",
        images=maps.out("preview"),
        fps=15.0,
        filename_prefix="stm2pe/motion_guidance",
    )
    seg = g.add(
        "STM2PEDenoiseVideoSegment",
        models=models.out("models"),
        reference=ref.out("reference"),
        guidance_maps=maps.out("guidance_maps"),
        guidance_set="PDNS",
        seed=42,
        start_frame=0,
        num_frames=0,
    )
    collect = g.add("STM2PECollectSegments", segment=seg.out("segment"))
    vae = g.add("VAELoader", vae_name=VAE_FILE)
    g.add(
        "STM2PEStitchSegments",
        segments=collect.out("segments"),
        vae=vae.out("VAE"),
        fps=15.0,
        filename_prefix="stm2pe/motion_video",
    )


SAMPLE_MOTION = "stm2pe_sample_dance.npz"


def build(defs: dict[str, NodeDef]) -> dict[str, Graph]:
    out = {}
    for name, fn in GRAPHS.items():
        g = Graph(name, defs)
        fn(g)
        out[name] = g
    return out


def dump(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the files on disk")
    args = parser.parse_args(argv)
    pack = load_pack()
    defs = node_definitions(pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS)
    stale = []
    for name, g in build(defs).items():
        for path, content in ((WORKFLOWS / f"{name}.json", dump(g.ui())), (API_DIR / f"{name}.json", dump(g.api()))):
            if args.check:
                if not path.exists() or path.read_text() != content:
                    stale.append(str(path.relative_to(REPO)))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
                print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print("out of date (run python scripts/make_workflows.py):\n  " + "\n  ".join(stale))
        return 1
    return 0


assert "Note" in VIRTUAL_NODES

if __name__ == "__main__":
    raise SystemExit(main())
