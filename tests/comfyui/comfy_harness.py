"""Starts and talks to a real ComfyUI with this pack loaded (the fixtures are in conftest.py).

Needs ``COMFYUI_PATH`` (a ComfyUI checkout) and optionally ``COMFYUI_PYTHON`` (the python of its
virtualenv; default: this interpreter) and ``COMFYUI_MODELS`` (a models/ tree; default
``$COMFYUI_PATH/models``). Without ``COMFYUI_PATH`` every test here is skipped.

The server runs from a temporary base directory (custom_nodes/ holding a symlink to this
repository, and its own input/output/temp/user folders) on a free loopback port, with an
in-memory database, so the checkout is left untouched. ``tests/comfyui/setup_comfyui.sh`` builds
such a checkout + virtualenv.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PACK_DIR_NAME = "stm2pe-dance"
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0
# a randomly initialised M2PEnc the fixture writes into models/stm2pe (stand-in workflow runs)
TINY_M2PENC = "zz_test_tiny_m2penc.safetensors"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyError(RuntimeError):
    """POST /prompt refused the graph (validation errors are in ``.body``)."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {json.dumps(body)[:2000]}")
        self.status = status
        self.body = body


class ComfyServer:
    """Minimal HTTP client for one running ComfyUI (stdlib only: no websocket needed)."""

    def __init__(self, base_url: str, base_dir: Path, log_path: Path, process: subprocess.Popen):
        self.base_url = base_url
        self.base_dir = base_dir
        self.input_dir = base_dir / "input"
        self.output_dir = base_dir / "output"
        self.temp_dir = base_dir / "temp"
        self.models_dir = base_dir / "models"
        self.log_path = log_path
        self.process = process
        self.client_id = uuid.uuid4().hex

    # -- plumbing --------------------------------------------------------------------------------
    def _request(self, path: str, body: Any = None, timeout: float = 60.0) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method="POST" if data else "GET")
        if data:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get_json(self, path: str) -> Any:
        status, raw = self._request(path)
        assert status == 200, f"GET {path} -> {status}: {raw[:500]!r}"
        return json.loads(raw)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    # -- prompts ---------------------------------------------------------------------------------
    def queue(self, prompt: dict) -> str:
        status, raw = self._request("/prompt", {"prompt": prompt, "client_id": self.client_id})
        body = json.loads(raw) if raw else {}
        # a prompt with some invalid outputs is still queued (200): ComfyUI drops those outputs and
        # lists them in node_errors; for the tests every output must be valid
        if status != 200 or body.get("node_errors"):
            raise ComfyError(status, body)
        return body["prompt_id"]

    def wait(self, prompt_id: str, timeout: float) -> dict:
        """The /history entry once the prompt finished (success or error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited ({self.process.returncode}); log tail:\n{self.log_text()[-4000:]}")
            hist = self.get_json(f"/history/{prompt_id}")
            entry = hist.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            time.sleep(0.5)
        self._request("/interrupt", {"prompt_id": prompt_id})
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")

    def run(self, prompt: dict, timeout: float = 300.0) -> dict:
        return self.wait(self.queue(prompt), timeout)

    def view(self, filename: str, subfolder: str = "", kind: str = "output") -> bytes:
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": kind})
        status, raw = self._request(f"/view?{query}")
        assert status == 200, f"/view {filename} -> {status}"
        return raw


def execution_error(entry: dict) -> dict | None:
    """The execution_error message of a /history entry, if any."""
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return data
    return None


def output_files(entry: dict) -> list[dict]:
    """Every file an output node reported (images, videos, audio) in a /history entry."""
    files = []
    for ui in entry.get("outputs", {}).values():
        for key in ("images", "gifs", "videos", "audio", "animated_files"):
            for item in ui.get(key, []) or []:
                if isinstance(item, dict) and "filename" in item:
                    files.append(item)
    return files


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
