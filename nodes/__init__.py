"""Gathers the node mappings of every node module.

Each module is imported on its own, so one that fails (a missing optional package) does not
hide the others; failures are logged with the module name and the fix.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger("STM2PE")

_MODULES = ("music", "motion", "m2penc", "diffusion", "video", "routes")

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
IMPORT_FAILURES: dict[str, str] = {}

for _name in _MODULES:
    try:
        _mod = importlib.import_module(f".{_name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{_name}":
            continue  # module not written yet
        IMPORT_FAILURES[_name] = str(exc)
        log.error("STM2PE: nodes/%s.py not loaded: %s (pip install -r requirements.txt)", _name, exc)
        continue
    except Exception as exc:  # noqa: BLE001 - keep the rest of the pack usable
        IMPORT_FAILURES[_name] = f"{type(exc).__name__}: {exc}"
        log.exception("STM2PE: nodes/%s.py failed to import", _name)
        continue
    NODE_CLASS_MAPPINGS.update(getattr(_mod, "NODE_CLASS_MAPPINGS", {}))
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_mod, "NODE_DISPLAY_NAME_MAPPINGS", {}))
