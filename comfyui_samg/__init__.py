"""samg-video's ComfyUI node pack (declared in `nodes.py`): SAMG (video), Guidance method
(samg-video), SAMG scale-field preview, Temporal metrics (samg-video). ComfyUI loads it from
the repository root (`custom_nodes/samg-video/__init__.py`, a `git clone` or the Comfy
Registry) or from a link of this folder into `custom_nodes/`. Where ComfyUI has the V3 API
(`comfy_api.latest`) the pack offers `comfy_entrypoint` (V3 nodes, `v3.py`); elsewhere the V1
`NODE_CLASS_MAPPINGS` (ComfyUI's loader takes the V1 mappings first when both are there). See
docs/comfyui.md."""

from .nodes import NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"  # the frontend extensions: the metrics node's numbers and a guidance node's work, on the node

try:
    import comfy_api.latest  # noqa: F401
except ImportError:  # a ComfyUI before the V3 API, or no ComfyUI at all
    from .nodes import NODE_CLASS_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
else:
    from .v3 import comfy_entrypoint

    __all__ = ["comfy_entrypoint", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
