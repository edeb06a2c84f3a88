"""samg-video as a ComfyUI custom-node pack: the repository root is what ComfyUI-Manager, a
`git clone` into `ComfyUI/custom_nodes/` and the Comfy Registry put there, and ComfyUI imports
this file. The nodes live in `comfyui_samg/`; their math in `samg_video/`, which is used from
this checkout when ComfyUI's Python does not have samg-video installed (`pip install -r
requirements.txt` adds what the nodes import, nothing else)."""

import importlib.util
import sys
from pathlib import Path

if "samg_video" not in sys.modules and importlib.util.find_spec("samg_video") is None:
    _spec = importlib.util.spec_from_file_location("samg_video", Path(__file__).parent / "samg_video" / "__init__.py")
    sys.modules["samg_video"] = importlib.util.module_from_spec(_spec)  # the package only, sys.path untouched
    _spec.loader.exec_module(sys.modules["samg_video"])

if __package__:  # as ComfyUI loads a pack folder: the V3 entry point or the V1 mappings (comfyui_samg)
    from .comfyui_samg import *  # noqa: F401,F403
    from .comfyui_samg import __all__, name_templates_category

    name_templates_category(Path(__file__).parent)

    WEB_DIRECTORY = "./comfyui_samg/web"  # relative to this folder, where ComfyUI looks for it
else:  # a plain module (pytest collecting a checkout whose folder name is no identifier): no nodes
    __all__ = []
