"""Choosing the headless OpenGL platform."""

from __future__ import annotations

import pytest

from stm2pe_core.errors import STM2PEError
from stm2pe_core.render import gl


@pytest.mark.parametrize(
    ("gpu", "libs", "vendor", "expected"),
    [
        (True, {"EGL", "EGL_nvidia", "OSMesa"}, False, "egl"),
        (True, {"EGL", "OSMesa"}, True, "egl"),
        (True, {"EGL", "OSMesa"}, False, "osmesa"),  # GPU but no NVIDIA EGL driver in the container
        (False, {"EGL", "OSMesa"}, False, "osmesa"),
        (False, {"EGL"}, False, "egl"),
    ],
)
def test_choose_platform(monkeypatch, gpu, libs, vendor, expected):
    monkeypatch.setattr(gl.glob, "glob", lambda pattern: ["/dev/nvidia0"] if (gpu and "dev" in pattern) else [])
    monkeypatch.setattr(gl, "_has_lib", lambda name: name in libs)
    monkeypatch.setattr(gl, "_nvidia_egl_vendor", lambda: vendor)
    assert gl.choose_platform() == expected


def test_no_gl_at_all_says_how_to_fix(monkeypatch):
    monkeypatch.setattr(gl.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(gl, "_has_lib", lambda name: False)
    with pytest.raises(STM2PEError, match="libosmesa6"):
        gl.choose_platform()


def test_configure_respects_the_environment(monkeypatch):
    monkeypatch.setenv("PYOPENGL_PLATFORM", "egl")
    assert gl.configure() == "egl"
