"""The UI-format workflows in ComfyUI's real web frontend (headless Chromium): they load with every
node built (no missing types, no script errors), and the prompt the frontend would queue equals
our API-format copy. Skipped without a Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from comfy_harness import ComfyServer
from pack_loader import load_pack
from workflow_tools import API_DIR, WORKFLOWS, load_json, node_definitions

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from frontend_driver import find_chromium  # noqa: E402

UI_FILES = sorted(WORKFLOWS.glob("*.json"))


@pytest.fixture(scope="module")
def frontend(comfy: ComfyServer, tmp_path_factory) -> dict:
    if find_chromium() is None:
        pytest.skip("no chromium/google-chrome on PATH")
    if not UI_FILES:
        pytest.skip("no workflows")
    out = tmp_path_factory.mktemp("frontend")
    python = os.environ.get("COMFYUI_PYTHON") or sys.executable
    cmd = [
        python,
        str(HERE / "frontend_driver.py"),
        "--url",
        comfy.base_url,
        "--out",
        str(out / "result.json"),
        "--shots",
        str(out),
        *map(str, UI_FILES),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return json.loads((out / "result.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_frontend_loads_workflow_and_exports_our_api_copy(path: Path, frontend: dict) -> None:
    seen = frontend[path.stem]
    assert seen["unknown"] == [], f"node types the frontend does not know: {seen['unknown']}"
    assert seen["errors"] == [], "script errors while loading:\n" + "\n".join(seen["errors"])
    assert Path(seen["screenshot"]).stat().st_size > 10_000
    pack = load_pack()
    defs = node_definitions(pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS)
    ours = load_json(API_DIR / path.name)
    exported = seen["output"]
    assert set(exported) == set(ours)
    for node_id, node in ours.items():
        got = exported[node_id]
        declared = {i.name for i in defs[node["class_type"]].inputs}
        # the frontend also sends its audio player widget (audioUI); the server ignores undeclared inputs
        got_inputs = {k: v for k, v in got["inputs"].items() if k in declared}
        assert got["class_type"] == node["class_type"]
        assert got_inputs == node["inputs"], f"node {node_id} ({node['class_type']})"
        assert got["_meta"]["title"] == node["_meta"]["title"]


@pytest.mark.slow
def test_audio_players_can_play_their_files_including_the_bundled_song(frontend: dict) -> None:
    """Every Load Music player in the example graphs gets a URL the server answers with audio;
    the bundled demo song (not in input/) comes from the pack's own route."""
    players = {(stem, nid): v for stem, seen in frontend.items() for nid, v in seen.get("audio", {}).items()}
    assert players, "no audio player found in the example workflows"
    bundled = [v for v in players.values() if "/stm2pe/bundled/demo_song.ogg" in v[0]]
    assert bundled, f"no player points at the bundled song: {players}"
    for (stem, nid), (src, status, ctype) in players.items():
        assert status == 200, f"{stem} node {nid}: {src} -> HTTP {status}"
        assert (ctype or "").startswith("audio/"), f"{stem} node {nid}: {src} is {ctype}"


def test_bundled_route_serves_only_bundled_files(comfy: ComfyServer) -> None:
    import urllib.error
    import urllib.request

    from stm2pe_core.audio.load import DEMO_SONG

    with urllib.request.urlopen(f"{comfy.base_url}/stm2pe/bundled/demo_song.ogg", timeout=30) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("audio/ogg")
        assert resp.read() == DEMO_SONG.read_bytes()
    for bad in ("m2penc_default.safetensors", "..%2F..%2Fnodes%2Froutes.py", "nothing.ogg"):
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(f"{comfy.base_url}/stm2pe/bundled/{bad}", timeout=30)
        assert ei.value.code == 404
