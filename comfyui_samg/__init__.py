"""samg-video's ComfyUI node pack (the nodes are in `nodes.py`): SAMG (video), Guidance method
(samg-video), SAMG scale-field preview, Temporal metrics (samg-video). ComfyUI loads it from
the repository root (`custom_nodes/samg-video/__init__.py`, a `git clone` or the Comfy
Registry) or from a link of this folder into `custom_nodes/`. See docs/comfyui.md."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
