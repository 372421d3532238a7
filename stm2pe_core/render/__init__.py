"""Guidance-map rendering (pyrender), cameras, skeleton drawing and heatmaps.

On a headless machine the OpenGL platform must be chosen before anything imports PyOpenGL,
so importing this package sets ``PYOPENGL_PLATFORM`` (EGL with an NVIDIA GPU, else OSMesa)
when it is unset and no display is attached. Nothing heavy is imported here.
"""

import os as _os

from . import gl as _gl

if not (_os.environ.get("DISPLAY") or _os.environ.get("WAYLAND_DISPLAY")):
    try:
        _gl.configure()
    except Exception:  # noqa: BLE001 - no GL at all: the renderer reports it when used
        pass
