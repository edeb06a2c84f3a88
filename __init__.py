"""ComfyUI's entry point when this repository is cloned into ComfyUI/custom_nodes/: the node pack
of comfyui_samg/, with this folder on the import path so that `samg_video` is found here (its
dependencies come from `pip install -e .` in ComfyUI's Python; see docs/comfyui.md)."""

import os
import sys

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from .comfyui_samg import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
