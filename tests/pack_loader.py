"""Imports the repository as a ComfyUI custom-node package, the way ComfyUI does it.

ComfyUI executes a pack's ``__init__.py`` under a synthetic ``sys.modules`` name (its path with
dots replaced), so everything inside the pack must use relative imports. Loading it the same way
here catches absolute imports and import-time ComfyUI dependencies without a ComfyUI install.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
PACK_MODULE = "stm2pe_dance_pack_x_under_test"


def load_pack(name: str = PACK_MODULE) -> ModuleType:
    """The pack's top-level module (imported once per process under ``name``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def pack_submodule(relative: str, name: str = PACK_MODULE) -> ModuleType:
    """A submodule of the loaded pack, e.g. ``pack_submodule("nodes")``."""
    load_pack(name)
    return importlib.import_module(f"{name}.{relative}")
