"""Choose PyOpenGL's platform before pyrender/OpenGL are imported.

Headless machines have no window system: with an NVIDIA GPU (``/dev/nvidia*`` plus libEGL)
we use EGL, otherwise Mesa's OSMesa software renderer (``apt install libosmesa6``). An
explicit ``PYOPENGL_PLATFORM`` in the environment always wins. PyOpenGL fixes its platform
at first import, so when something else imported OpenGL first we keep what it chose.
"""

from __future__ import annotations

import ctypes.util
import glob
import logging
import os
import sys
import types

from ..errors import STM2PEError

log = logging.getLogger("STM2PE")


def _has_lib(name: str) -> bool:
    return ctypes.util.find_library(name) is not None


def _nvidia_egl_vendor() -> bool:
    """Is NVIDIA's EGL driver registered with libglvnd (containers often lack it)?"""
    env = os.environ.get("__EGL_VENDOR_LIBRARY_FILENAMES", "")
    if "nvidia" in env.lower():
        return True
    dirs = ("/usr/share/glvnd/egl_vendor.d", "/etc/glvnd/egl_vendor.d", "/usr/local/nvidia/share/glvnd/egl_vendor.d")
    return any(glob.glob(os.path.join(d, "*nvidia*.json")) for d in dirs)


def choose_platform() -> str:
    """'egl' or 'osmesa' for this machine: EGL when an NVIDIA GPU and its EGL driver are there,
    else OSMesa when installed, else EGL (e.g. Mesa's EGL), else a clear error."""
    if glob.glob("/dev/nvidia[0-9]*") and _has_lib("EGL") and (_has_lib("EGL_nvidia") or _nvidia_egl_vendor()):
        return "egl"
    if _has_lib("OSMesa"):
        return "osmesa"
    if _has_lib("EGL"):
        return "egl"
    raise STM2PEError(
        "Guidance rendering needs OpenGL without a display: install Mesa's OSMesa "
        "(Debian/Ubuntu: `sudo apt-get install libosmesa6`, or run scripts/setup.sh) or use a machine "
        "with an NVIDIA GPU and libEGL; or set PYOPENGL_PLATFORM yourself."
    )


# osmesa.h constants (Mesa >= 11.2), for PyOpenGL releases whose OpenGL.osmesa lacks them
_OSMESA_CONSTANTS = {
    "OSMESA_RGBA": 0x1908,
    "OSMESA_FORMAT": 0x22,
    "OSMESA_DEPTH_BITS": 0x30,
    "OSMESA_STENCIL_BITS": 0x31,
    "OSMESA_ACCUM_BITS": 0x32,
    "OSMESA_PROFILE": 0x33,
    "OSMESA_CORE_PROFILE": 0x34,
    "OSMESA_COMPAT_PROFILE": 0x35,
    "OSMESA_CONTEXT_MAJOR_VERSION": 0x36,
    "OSMESA_CONTEXT_MINOR_VERSION": 0x37,
}


def patch_osmesa() -> None:
    """pyrender's OSMesa platform asks for a GL 3.3 core context through
    ``OSMesaCreateContextAttribs``, which PyOpenGL 3.1.0 (the version pyrender pins) does not
    wrap. Add a ctypes binding of Mesa's own function when it is missing."""
    import ctypes

    import OpenGL.osmesa as osmesa
    from OpenGL import platform as gl_platform

    plat = gl_platform.PLATFORM
    if not getattr(plat, "_stm2pe_patched", False):
        # PyOpenGL 3.1.0 returns the current context as a ctypes pointer, which its own
        # per-context cache cannot hash; hand it the address instead
        get_current = plat.OSMesa.OSMesaGetCurrentContext
        get_current.restype = ctypes.c_void_p
        plat.GetCurrentContext = lambda: get_current() or 0
        plat._stm2pe_patched = True
    if hasattr(osmesa, "OSMesaCreateContextAttribs"):
        return
    lib = getattr(plat, "OSMesa", None)  # the libOSMesa PyOpenGL already loaded
    if lib is None or not hasattr(lib, "OSMesaCreateContextAttribs"):
        raise STM2PEError(
            "libOSMesa with OSMesaCreateContextAttribs not found: `sudo apt-get install libosmesa6` (Mesa >= 11.2)"
        )
    fn = lib.OSMesaCreateContextAttribs
    fn.restype = osmesa.OSMesaContext
    fn.argtypes = [ctypes.POINTER(ctypes.c_int), osmesa.OSMesaContext]

    def create_context_attribs(attrs, share):
        arr = (ctypes.c_int * len(attrs))(*[int(a) for a in attrs])
        ctx = fn(arr, share)
        if not ctx:
            raise STM2PEError("OSMesaCreateContextAttribs failed (Mesa too old for a GL 3.3 core context?)")
        return ctx

    osmesa.OSMesaCreateContextAttribs = create_context_attribs
    for key, value in _OSMESA_CONSTANTS.items():
        if not hasattr(osmesa, key):
            setattr(osmesa, key, value)


def configure() -> str:
    """Set ``PYOPENGL_PLATFORM`` if unset and OpenGL is not imported yet; return the platform in use."""
    current = os.environ.get("PYOPENGL_PLATFORM")
    if current:
        return current
    if "OpenGL" in sys.modules or "pyrender" in sys.modules:
        log.warning("STM2PE: OpenGL was imported before the renderer chose a platform; using PyOpenGL's default")
        return "default"
    platform = choose_platform()
    os.environ["PYOPENGL_PLATFORM"] = platform
    return platform


def import_pyrender():
    """``import pyrender``, surviving machines where pyglet (imported by pyrender's on-screen
    Viewer, which we never use) cannot load its window system (no X11 libraries)."""
    try:
        import pyrender
    except Exception as exc:  # noqa: BLE001 - pyglet raises AttributeError/ImportError/...
        if "pyglet" not in repr(exc) and "Window" not in repr(exc) and "X" not in str(exc):
            raise
        log.info("STM2PE: pyrender's viewer could not load pyglet (%s); importing pyrender without it", exc)
        for name in [m for m in sys.modules if m == "pyrender" or m.startswith("pyrender.")]:
            del sys.modules[name]
        stub = types.ModuleType("pyrender.viewer")
        stub.Viewer = None  # type: ignore[attr-defined]
        sys.modules["pyrender.viewer"] = stub
        import pyrender
    return pyrender


def prepare() -> str:
    """:func:`configure`, the OSMesa binding fix when OSMesa is the platform, and a pyrender
    import that works without X11 (so later plain ``import pyrender`` calls succeed)."""
    platform = configure()
    if platform == "osmesa":
        patch_osmesa()
    import_pyrender()
    return platform
