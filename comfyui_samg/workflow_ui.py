"""The example workflows in ComfyUI's canvas format, made from their API format.

ComfyUI has two workflow formats: the API format (`{id: {class_type, inputs}}`, what the
server executes) and the canvas format that the frontend saves and loads (nodes with
positions, `widgets_values` in input order, a `links` table). The API files in
`workflows/` are the source; `python -m comfyui_samg.workflow_ui` (with `COMFYUI_PATH`
pointing at a ComfyUI checkout) writes `workflows/ui/` from them, using each node's input
definition as ComfyUI's `/object_info` serves it:

- an input whose type is INT, FLOAT, STRING, BOOLEAN, COMBO or a list of choices is a widget;
  its value goes to `widgets_values` in the order the node declares its inputs, followed by
  the frontend's extra value for `control_after_generate` ("fixed") and for an image upload
  widget ("image");
- every other input is a socket fed by a link `[link, from_node, from_slot, to_node, to_slot,
  type]`.

`to_api` inverts `to_ui` as the frontend's graph-to-prompt does, so a test can check that the
canvas files carry exactly the API graphs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FOLDER = Path(__file__).parent / "workflows"


def is_widget(spec) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def extra_widget_values(spec) -> list:
    """Values the frontend stores after a widget's own: the seed control and the upload button."""
    options = spec[1] if len(spec) > 1 else {}
    extra = ["fixed"] if options.get("control_after_generate") else []
    return extra + (["image"] if options.get("image_upload") else [])


def ordered_inputs(info: dict) -> list[tuple[str, tuple]]:
    """(name, spec) of a node's required then optional inputs, in declaration order."""
    return [(name, tuple(spec)) for group in ("required", "optional")
            for name, spec in info["input"].get(group, {}).items()]


def depths(api: dict) -> dict[str, int]:
    """Column of each node: one more than the deepest node that feeds it."""
    memo: dict[str, int] = {}

    def depth(node: str) -> int:
        if node not in memo:
            sources = [v[0] for v in api[node]["inputs"].values() if isinstance(v, list)]
            memo[node] = 1 + max((depth(s) for s in sources), default=-1)
        return memo[node]

    return {node: depth(node) for node in api}


def to_ui(api: dict, infos: dict[str, dict]) -> dict:
    """The canvas-format workflow of an API-format graph (module docstring)."""
    ids = {key: i + 1 for i, key in enumerate(api)}
    column = depths(api)
    rows: dict[int, int] = {}
    links, nodes = [], []
    outgoing: dict[tuple[str, int], list[int]] = {}
    for key, entry in api.items():
        info = infos[entry["class_type"]]
        inputs, widgets = [], []
        for name, spec in ordered_inputs(info):
            if name not in entry["inputs"]:
                continue
            value = entry["inputs"][name]
            if is_widget(spec):
                if isinstance(value, list) and len(value) == 2 and value[0] in api:
                    raise ValueError(f"{key}.{name} is a widget fed by a link; write its value in the API file.")
                widgets += [value, *extra_widget_values(spec)]
                continue
            link = len(links) + 1
            source, slot = value
            links.append([link, ids[source], slot, ids[key], len(inputs), spec[0]])
            outgoing.setdefault((source, slot), []).append(link)
            inputs.append({"name": name, "type": spec[0], "link": link})
        row = rows.get(column[key], 0)
        rows[column[key]] = row + 1
        nodes.append({"id": ids[key], "type": entry["class_type"], "pos": [60 + 360 * column[key], 60 + 300 * row],
                      "size": [320, 120 + 26 * len(widgets)], "flags": {}, "order": 0, "mode": 0,
                      "inputs": inputs, "outputs": [], "properties": {"Node name for S&R": entry["class_type"]},
                      "widgets_values": widgets, "title": key})
    for node, (key, entry) in zip(nodes, api.items()):
        info = infos[entry["class_type"]]
        node["outputs"] = [{"name": name, "type": kind, "links": outgoing.get((key, slot), []), "slot_index": slot}
                           for slot, (kind, name) in enumerate(zip(info["output"], info["output_name"]))]
    order = sorted(api, key=lambda k: (column[k], ids[k]))
    for node in nodes:
        node["order"] = order.index(node["title"])
    return {"last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


def to_api(ui: dict, infos: dict[str, dict]) -> dict:
    """The API-format graph of a canvas-format workflow (node titles as ids)."""
    by_id = {node["id"]: node for node in ui["nodes"]}
    links = {link[0]: link for link in ui["links"]}
    api = {}
    for node in ui["nodes"]:
        info = infos[node["type"]]
        values = list(node["widgets_values"])
        inputs = {}
        linked = {i["name"]: links[i["link"]] for i in node["inputs"] if i["link"] is not None}
        for name, spec in ordered_inputs(info):
            if is_widget(spec) and values:
                inputs[name] = values.pop(0)
                del values[:len(extra_widget_values(spec))]
            elif name in linked:
                _, source, slot, *_ = linked[name]
                inputs[name] = [by_id[source]["title"], slot]
        if values:
            raise ValueError(f"{node['title']} has {len(values)} widget values more than {node['type']} has widgets.")
        api[node["title"]] = {"class_type": node["type"], "inputs": inputs}
    return api


def node_info(cls) -> dict:
    """A node class's input and output definition as ComfyUI's /object_info serves it."""
    if hasattr(cls, "GET_NODE_INFO_V1"):
        return cls.GET_NODE_INFO_V1()
    return {"input": cls.INPUT_TYPES(), "output": list(cls.RETURN_TYPES),
            "output_name": list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)}


def comfyui_infos() -> dict[str, dict]:
    """Every node's definition, from the ComfyUI checkout at COMFYUI_PATH (core nodes and this pack)."""
    import asyncio

    path = os.environ.get("COMFYUI_PATH")
    if not path:
        raise SystemExit("Set COMFYUI_PATH to a ComfyUI checkout (its requirements installed) to write the canvas files.")
    sys.path.insert(0, path)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import nodes

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    asyncio.run(nodes.load_custom_node(str(Path(__file__).parent)))
    return {name: node_info(cls) for name, cls in nodes.NODE_CLASS_MAPPINGS.items()}


def write_all(infos: dict[str, dict]) -> list[Path]:
    (FOLDER / "ui").mkdir(exist_ok=True)
    written = []
    for path in sorted(FOLDER.glob("*.json")):
        out = FOLDER / "ui" / path.name
        out.write_text(json.dumps(to_ui(json.loads(path.read_text()), infos), indent=1) + "\n")
        written.append(out)
    return written


if __name__ == "__main__":
    for written in write_all(comfyui_infos()):
        print(written)
