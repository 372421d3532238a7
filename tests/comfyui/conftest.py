"""Fixtures for the real-ComfyUI integration tests in this folder.

Needs ``COMFYUI_PATH`` (a ComfyUI checkout) and optionally ``COMFYUI_PYTHON`` (the python of its
virtualenv; default: this interpreter) and ``COMFYUI_MODELS`` (a models/ tree; default
``$COMFYUI_PATH/models``). Without ``COMFYUI_PATH`` every test here is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfy_harness import (  # noqa: E402
    PACK_DIR_NAME,
    START_TIMEOUT_S,
    TINY_M2PENC,
    ComfyServer,
    _free_port,
    _stop,
)
from pack_loader import REPO  # noqa: E402


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.comfyui)


@pytest.fixture(scope="session")
def comfyui_path() -> Path:
    raw = os.environ.get("COMFYUI_PATH")
    if not raw:
        pytest.skip("COMFYUI_PATH is not set (path of a ComfyUI checkout); see tests/comfyui/setup_comfyui.sh")
    path = Path(raw).expanduser().resolve()
    if not (path / "main.py").is_file():
        pytest.fail(f"COMFYUI_PATH={path} has no main.py: point it at a ComfyUI checkout")
    return path


@pytest.fixture(scope="session")
def comfy(comfyui_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ComfyServer:
    python = os.environ.get("COMFYUI_PYTHON") or sys.executable
    base = tmp_path_factory.mktemp("comfy_base")
    for sub in ("custom_nodes", "input", "output", "temp", "user"):
        (base / sub).mkdir()
    (base / "custom_nodes" / PACK_DIR_NAME).symlink_to(REPO, target_is_directory=True)
    # test-only stand-ins for the photoreal model files (see standins_pack/__init__.py)
    (base / "custom_nodes" / "zz_stm2pe_test_standins").symlink_to(Path(__file__).parent / "standins_pack")
    _models_tree(Path(os.environ.get("COMFYUI_MODELS") or comfyui_path / "models"), base / "models")
    port = _free_port()
    log_path = base / "comfyui.log"
    cmd = [
        python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
        "--disable-auto-launch", "--base-directory", str(base),
        "--database-url", "sqlite:///:memory:", "--preview-method", "none",
    ]  # fmt: skip
    # the pack's feature cache goes to the temp base too, so tests neither read nor leave cache files
    env = dict(os.environ, PYTHONUNBUFFERED="1", STM2PE_CACHE=str(base / "stm2pe_cache"))
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd, cwd=comfyui_path, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = ComfyServer(f"http://127.0.0.1:{port}", base, log_path, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"ComfyUI exited with {process.returncode} during start; log:\n{server.log_text()[-6000:]}")
            try:
                status, _ = server._request("/system_stats", timeout=5)
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ComfyUI did not answer within {START_TIMEOUT_S:.0f} s; log:\n{server.log_text()[-6000:]}")
            time.sleep(1.0)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def object_info(comfy: ComfyServer) -> dict:
    return comfy.get_json("/object_info")


def _models_tree(source: Path, target: Path) -> None:
    """target/ mirrors the user's models tree through symlinks (nothing is written into it), plus a
    randomly initialised M2PEnc in stm2pe/ that the stand-in workflow runs use when the pack's
    bundled one is absent."""
    target.mkdir()
    if source.is_dir():
        for entry in source.iterdir():
            if entry.name != "stm2pe":
                (target / entry.name).symlink_to(entry.resolve())
    (target / "stm2pe").mkdir()
    if (source / "stm2pe").is_dir():
        for entry in (source / "stm2pe").iterdir():
            (target / "stm2pe" / entry.name).symlink_to(entry.resolve())
    import torch
    from pack_loader import pack_submodule

    m2penc = pack_submodule("stm2pe_core.models.m2penc")
    torch.manual_seed(0)
    m2penc.M2PEnc(m2penc.M2PEncConfig()).save_pretrained(target / "stm2pe" / TINY_M2PENC)
