"""ComfyUI entry point for the STM2PE Dance node pack (classic V1 API)."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

# frontend extensions (web/js/*.js), served by ComfyUI at /extensions/<pack folder>/
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
