"""samg-video's ComfyUI node pack: link or copy this folder into ComfyUI/custom_nodes/ (with
samg-video installed in ComfyUI's Python). Nodes: SAMG (video), SAMG scale-field preview,
Temporal metrics. See docs/comfyui.md."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
