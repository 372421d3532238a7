"""HTTP routes the pack adds to ComfyUI's server (registered only when running inside ComfyUI).

``GET /stm2pe/bundled/<name>`` serves the pack's bundled demo song, so the Load Music node's
audio player can play ``demo_song.ogg (bundled)``: it is not in ComfyUI's input folder, where
the frontend's ``/view`` looks. Only the listed files are served.
"""

from __future__ import annotations

import logging

from ..stm2pe_core.audio.load import DEMO_SONG

log = logging.getLogger("STM2PE")

ROUTE = "/stm2pe/bundled/{name}"
BUNDLED_FILES = {DEMO_SONG.name: DEMO_SONG}  # url name -> file (web/js maps the combo choice to it)
NODE_CLASS_MAPPINGS: dict[str, type] = {}  # routes only; keeps the node-module contract


def register() -> bool:
    try:
        from aiohttp import web
        from server import PromptServer
    except ImportError:  # outside ComfyUI (tests, CLI): nothing to register
        return False
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        return False

    async def bundled(request: web.Request) -> web.StreamResponse:
        path = BUNDLED_FILES.get(request.match_info.get("name", ""))
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text="not a bundled STM2PE file")
        return web.FileResponse(path, headers={"Content-Type": "audio/ogg", "Cache-Control": "max-age=3600"})

    instance.routes.get(ROUTE)(bundled)
    return True


try:
    register()
except Exception:  # noqa: BLE001 - a route must never stop the nodes from loading
    log.exception("STM2PE: could not register %s", ROUTE)
