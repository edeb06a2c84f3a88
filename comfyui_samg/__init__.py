"""samg-video's ComfyUI node pack (declared in `nodes.py`): SAMG (video), Guidance method
(samg-video), SAMG scale-field preview, Temporal metrics (samg-video), Compare clips
(samg-video), Load bundled model (samg-video) and Empty bundled clip (samg-video). ComfyUI loads it from
the repository root (`custom_nodes/samg-video/__init__.py`, a `git clone` or the Comfy
Registry) or from a link of this folder into `custom_nodes/`. Where ComfyUI has the V3 API
(`comfy_api.latest`) the pack offers `comfy_entrypoint` (V3 nodes, `v3.py`); elsewhere the V1
`NODE_CLASS_MAPPINGS` (ComfyUI's loader takes the V1 mappings first when both are there). See
docs/comfyui.md."""

import json
from pathlib import Path

from .nodes import NODE_DISPLAY_NAME_MAPPINGS

CATEGORY = "samg-video"  # the name of the pack's templates category in ComfyUI's Templates dialog


def name_templates_category(pack: Path) -> None:
    """ComfyUI's Templates dialog names a pack's category by its folder in custom_nodes/ (`ComfyUI-SAMG`
    when cloned so) unless the pack's `locales/en/main.json` translates `templateWorkflows.category.
    FOLDER` (dots as "_", as the frontend writes the key). Where the folder is not named CATEGORY,
    that file is written (atomically, untracked: .gitignore) so the category reads "samg-video"; a
    folder that cannot be written keeps its folder name."""
    folder = pack.name
    if folder == CATEGORY:
        return
    target = pack / "locales" / "en" / "main.json"
    wanted = {"templateWorkflows": {"category": {folder.replace(".", "_"): CATEGORY}}}
    try:
        if target.is_file() and json.loads(target.read_text()) == wanted:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(".main.json.tmp")
        tmp.write_text(json.dumps(wanted) + "\n")
        tmp.replace(target)
    except (OSError, ValueError):
        pass


if not (Path(__file__).parents[1] / "__init__.py").is_file():  # this folder itself is the pack (a link)
    name_templates_category(Path(__file__).parent)

WEB_DIRECTORY = "./web"  # the frontend extensions: the metrics node's numbers and a guidance node's work, on the node

try:
    import comfy_api.latest  # noqa: F401
except ImportError:  # a ComfyUI before the V3 API, or no ComfyUI at all
    from .nodes import NODE_CLASS_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
else:
    from .v3 import comfy_entrypoint

    __all__ = ["comfy_entrypoint", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
