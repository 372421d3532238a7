"""STM2PE Dance core library: music + one photo -> dance video. Never imports ComfyUI."""

__version__ = "0.1.0"
