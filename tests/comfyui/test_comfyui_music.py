"""Music graphs in a real ComfyUI: core LoadAudio → Load Music → Jukebox Encode (librosa), and
what a user sees when the music file is broken."""

from __future__ import annotations

import shutil

import pytest
from comfy_harness import ComfyServer, execution_error
from pack_loader import REPO, load_pack

DEMO_SONG = REPO / "stm2pe_core" / "assets" / "demo_song.ogg"


@pytest.fixture(scope="module")
def song(comfy: ComfyServer) -> str:
    shutil.copy(DEMO_SONG, comfy.input_dir / "it_song.ogg")
    return "it_song.ogg"


def _features_output_node() -> str | None:
    """An output node of the pack that takes STM2PE_MUSIC_FEATURES (a preview/inspection node)."""
    for node_id, cls in load_pack().NODE_CLASS_MAPPINGS.items():
        if getattr(cls, "OUTPUT_NODE", False):
            for section in ("required", "optional"):
                for name, spec in cls.INPUT_TYPES().get(section, {}).items():
                    if spec[0] == "STM2PE_MUSIC_FEATURES":
                        return node_id, name
    return None


def test_loadaudio_to_load_music_to_jukebox_encode_runs(comfy: ComfyServer, song: str) -> None:
    preview = _features_output_node()
    if preview is None:
        pytest.fail(
            "the pack has no output node taking STM2PE_MUSIC_FEATURES: Jukebox Encode cannot be the end of a graph"
        )
    node_id, input_name = preview
    prompt = {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": song}},
        "2": {
            "class_type": "STM2PELoadMusic",
            "inputs": {
                "audio": "(none - use audio_input)",
                "start_seconds": 2.0,
                "duration_seconds": 4.0,
                "fps": 15.0,
                "audio_input": ["1", 0],
                "bpm_hint": 0.0,
            },
        },
        "3": {
            "class_type": "STM2PEJukeboxEncode",
            "inputs": {"music": ["2", 1], "mode": "librosa", "beat_channel": False, "use_cache": True},
        },
        "4": {
            "class_type": node_id,
            "inputs": {
                input_name: ["3", 0],
                **({"music": ["2", 1]} if node_id == "STM2PEPreviewMusicFeatures" else {}),
            },
        },
        "5": {"class_type": "PreviewAudio", "inputs": {"audio": ["2", 0]}},
    }
    entry = comfy.run(prompt, timeout=180)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert set(entry["outputs"]) >= {"4", "5"}, entry["outputs"]
    for image in entry["outputs"]["4"].get("images", []):
        png = comfy.view(image["filename"], image.get("subfolder", ""), image["type"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    text = " ".join(entry["outputs"]["4"].get("text", []))
    if text:
        assert "librosa" in text and "60" in text, text  # 4 s at 15 fps = 60 frames
    audio = entry["outputs"]["5"]["audio"][0]
    data = comfy.view(audio["filename"], audio.get("subfolder", ""), audio["type"])
    assert len(data) > 1000
    # the same graph again is served from ComfyUI's cache: nothing re-executes
    again = comfy.run(prompt, timeout=60)
    assert again["status"]["status_str"] == "success"
    cached = [m[1] for m in again["status"]["messages"] if m[0] == "execution_cached"]
    assert cached and set(cached[0]["nodes"]) >= {"1", "2", "3"}


def test_corrupt_music_file_names_the_file(comfy: ComfyServer) -> None:
    bad = comfy.input_dir / "it_broken_song.mp3"
    bad.write_bytes(b"ID3\x03\x00" + bytes(range(256)) * 40)
    prompt = {
        "1": {
            "class_type": "STM2PELoadMusic",
            "inputs": {"audio": bad.name, "start_seconds": 0.0, "duration_seconds": 0.0, "fps": 15.0},
        },
        "2": {"class_type": "PreviewAudio", "inputs": {"audio": ["1", 0]}},
    }
    entry = comfy.run(prompt, timeout=60)
    assert entry["status"]["status_str"] == "error"
    err = execution_error(entry)
    assert err is not None and err["node_id"] == "1" and err["node_type"] == "STM2PELoadMusic"
    message = err["exception_message"]
    assert bad.name in message, message
    assert "Traceback" not in message and len(message) < 1000, message
    assert err["exception_type"].rsplit(".", 1)[-1] in {"InputError", "STM2PEError"}, err["exception_type"]


def test_missing_music_input_is_explained(comfy: ComfyServer) -> None:
    prompt = {
        "1": {
            "class_type": "STM2PELoadMusic",
            "inputs": {"audio": "(none - use audio_input)", "start_seconds": 0.0, "duration_seconds": 0.0, "fps": 15.0},
        },
        "2": {"class_type": "PreviewAudio", "inputs": {"audio": ["1", 0]}},
    }
    entry = comfy.run(prompt, timeout=60)
    err = execution_error(entry)
    assert err is not None and "audio_input" in err["exception_message"], err
