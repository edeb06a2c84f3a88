"""The example workflows in ComfyUI's canvas format, made from their API format.

ComfyUI has two workflow formats: the API format (`{id: {class_type, inputs, _meta}}`, what
the server executes) and the canvas format that the frontend saves and loads (nodes with
positions, `widgets_values` in input order, a `links` table). The API files in
`comfyui_samg/api_workflows/` are the source; `python -m comfyui_samg.workflow_ui` (with
`COMFYUI_PATH` pointing at a ComfyUI checkout; `--help`) writes the templates in
`example_workflows/` from them, each with its thumbnail (`TITLE.json` and `TITLE.jpg`, the
folder and names ComfyUI serves under Templates), and with `--picture` the picture of the Wan
2.1 one in docs/images/, using each node's input definition as ComfyUI's `/object_info` serves it:

- an input whose type is INT, FLOAT, STRING, BOOLEAN, COMBO or a list of choices is a widget;
  its value goes to `widgets_values` in the order the node declares its inputs, followed by
  the frontend's extra value for `control_after_generate` ("fixed") and for an image upload
  widget ("image");
- every other input is a socket fed by a link `[link, from_node, from_slot, to_node, to_slot,
  type]`;
- a node's title is the API file's `_meta.title` (display names, with the branch).

ComfyUI's Templates dialog titles a custom node's template card with its file name and
describes it with the same name, "-" and "_" turned into spaces: so a template's file is named
by its title (`TITLES`, with neither character). Its thumbnail shows what the template makes:
the bundled model's template runs (ComfyUI's executor, on the CPU, in seconds) and its card shows
a frame of CFG beside SAMG; the templates that need downloaded weights show their model, what
they compare and the files they need.

`to_api` inverts `to_ui` as the frontend's graph-to-prompt does (node ids as keys), so a test
can check that the canvas files carry exactly the API graphs (`renumbered`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FOLDER = Path(__file__).parent / "api_workflows"  # the API-format sources
TEMPLATES = Path(__file__).parents[1] / "example_workflows"  # the canvas files ComfyUI lists under Templates
TITLES = {  # API file stem -> the template's title, its file name (no "-" or "_": the dialog makes them spaces)
    "bundled_model_cfg_vs_samg": "Bundled model, CFG vs SAMG (CPU, no download)",
    "wan21_t2v_cfg_vs_samg": "Wan 2.1 T2V 1.3B, CFG vs SAMG vs SAMG+STG",
    "wan22_a14b_two_experts_cfg_vs_samg": "Wan 2.2 A14B with two experts, CFG vs SAMG",
    "ltxv_guide_image_cfg_vs_samg": "LTX Video with a guide image, CFG vs SAMG",
    "hunyuan_video_true_cfg_vs_samg": "HunyuanVideo, true CFG vs SAMG",
}
RUNS_WITHOUT_DOWNLOAD = ("bundled_model_cfg_vs_samg",)  # thumbnails made by running the template
SHOWN = {"SAMGCompareClips": (600, 200), "SAMGTemporalMetrics": (440, 200), "PreviewImage": (320, 240),
         "SaveVideo": (320, 260), "SAMGVideo": (320, 30)}  # (width, room below the widgets) for what a node shows
MODEL_FILES = ("unet_name", "ckpt_name", "clip_name", "clip_name1", "clip_name2", "vae_name")


def template_path(out: Path, api_name: str) -> Path:
    """Where the canvas template of an API file goes: `out/TITLE.json` (its stem where it has no title)."""
    stem = Path(api_name).stem
    return out / f"{TITLES.get(stem, stem)}.json"


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


def links_of(entry: dict) -> list[str]:
    """The node ids an API entry's inputs link from ([id, slot] values)."""
    return [v[0] for v in entry["inputs"].values() if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)]


def depths(api: dict) -> dict[str, int]:
    """Column of each node: one more than the deepest node that feeds it (Kahn's order, so a deep
    chain needs no recursion; a cycle raises ValueError)."""
    feeds = {node: links_of(entry) for node, entry in api.items()}
    users: dict[str, list[str]] = {}
    for node, sources in feeds.items():
        for source in sources:
            users.setdefault(source, []).append(node)
    waiting = {node: len(sources) for node, sources in feeds.items()}
    depth = {node: 0 for node in api}
    ready = [node for node, count in waiting.items() if count == 0]
    for node in ready:  # grows while it is read
        for user in users.get(node, []):
            depth[user] = max(depth[user], depth[node] + 1)
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    if len(ready) != len(api):
        raise ValueError(f"the graph has a cycle through {sorted(set(api) - set(ready))[0]!r}.")
    return depth


def check_graph(api, infos: dict[str, dict] | None = None) -> None:
    """An API-format graph's shape: {id: {"class_type": str, "inputs": {...}}}, links to nodes that
    exist, no cycle, and (with `infos`) only node classes ComfyUI has. Raises ValueError, one sentence."""
    if not isinstance(api, dict) or not api:
        raise ValueError("an API-format workflow is a non-empty JSON object {id: {class_type, inputs}}.")
    for key, entry in api.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("class_type"), str) \
                or not isinstance(entry.get("inputs"), dict):
            raise ValueError(f"node {key!r} needs a class_type (text) and inputs (an object).")
        for source in links_of(entry):
            if source not in api:
                raise ValueError(f"node {key!r} links from node {source!r}, which the graph does not have.")
        if infos is not None and entry["class_type"] not in infos:
            raise ValueError(f"node {key!r} is a {entry['class_type']}, a node class this ComfyUI does not have.")
    depths(api)


def to_ui(api: dict, infos: dict[str, dict]) -> dict:
    """The canvas-format workflow of an API-format graph (module docstring)."""
    ids = {key: i + 1 for i, key in enumerate(api)}
    column = depths(api)
    widths = {c: max(SHOWN.get(e["class_type"], (320, 0))[0] for k, e in api.items() if column[k] == c)
              for c in set(column.values())}
    lefts = {c: 60 + sum(widths[d] + 60 for d in range(c) if d in widths) for c in widths}
    tops: dict[int, int] = {}  # the next free height of each column
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
            kind = infos[api[source]["class_type"]]["output"][slot]  # a link has its source's type ("*" inputs)
            links.append([link, ids[source], slot, ids[key], len(inputs), kind])
            outgoing.setdefault((source, slot), []).append(link)
            inputs.append({"name": name, "type": spec[0], "link": link})
        width, shown = SHOWN.get(entry["class_type"], (320, 0))
        size = [width, 46 + 24 * max(len(inputs), len(info["output"])) + 26 * len(widgets) + shown]
        top = tops.get(column[key], 60)
        tops[column[key]] = top + size[1] + 60
        nodes.append({"id": ids[key], "type": entry["class_type"], "pos": [lefts[column[key]], top],
                      "size": size, "flags": {}, "order": 0, "mode": 0,
                      "inputs": inputs, "outputs": [], "properties": {"Node name for S&R": entry["class_type"]},
                      "widgets_values": widgets, "title": entry.get("_meta", {}).get("title", key)})
    for node, (key, entry) in zip(nodes, api.items()):
        info = infos[entry["class_type"]]
        node["outputs"] = [{"name": name, "type": kind, "links": outgoing.get((key, slot), []), "slot_index": slot}
                           for slot, (kind, name) in enumerate(zip(info["output"], info["output_name"]))]
    order = sorted(api, key=lambda k: (column[k], ids[k]))
    for node, key in zip(nodes, api):
        node["order"] = order.index(key)
    return {"last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


def renumbered(api: dict) -> dict:
    """An API graph with its keys replaced by the canvas ids `to_ui` gives them (1, 2, ... in file
    order), as the frontend's graph-to-prompt writes them."""
    ids = {key: str(i + 1) for i, key in enumerate(api)}
    return {ids[key]: {**entry, "inputs": {k: ([ids[v[0]], v[1]] if isinstance(v, list) and len(v) == 2 and v[0] in ids
                                               else v) for k, v in entry["inputs"].items()}}
            for key, entry in api.items()}


def to_api(ui: dict, infos: dict[str, dict]) -> dict:
    """The API-format graph of a canvas-format workflow (node ids as keys, titles in `_meta`)."""
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
                inputs[name] = [str(by_id[source]["id"]), slot]
        if values:
            raise ValueError(f"{node['title']} has {len(values)} widget values more than {node['type']} has widgets.")
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs, "_meta": {"title": node["title"]}}
    return api


def draw(api: dict, ui: dict, path: Path, title: str = "", dpi: int = 100) -> None:
    """A picture of a workflow as its canvas file lays it out: each node at its position with its
    title, class and widget values (named from the API file), each link a line coloured by type."""
    api = renumbered(api)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    colours = {"MODEL": "#b39ddb", "CLIP": "#ffd54f", "VAE": "#ef9a9a", "CONDITIONING": "#ffab91",
               "LATENT": "#f48fb1", "IMAGE": "#81d4fa", "VIDEO": "#80cbc4"}
    width = max(n["pos"][0] + n["size"][0] for n in ui["nodes"]) + 60
    height = max(n["pos"][1] + n["size"][1] for n in ui["nodes"]) + 60
    fig, ax = plt.subplots(figsize=(width / 100, height / 100))
    fig.patch.set_facecolor("#202020")
    by_id = {n["id"]: n for n in ui["nodes"]}
    for _, source, slot, target, target_slot, kind in ui["links"]:
        a, b = by_id[source], by_id[target]
        y0, y1 = a["pos"][1] + 40 + 24 * slot, b["pos"][1] + 40 + 24 * target_slot
        x0, x1 = a["pos"][0] + a["size"][0], b["pos"][0]
        ax.plot([x0, x0 + 20, x1 - 20, x1], [y0, y0, y1, y1], color=colours.get(kind, "#bdbdbd"), lw=1.3)
    for n in ui["nodes"]:
        (x, y), (w, h) = n["pos"], n["size"]
        ours = n["type"].startswith("SAMG")
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=8",
                                    fc="#2e3b2e" if ours else "#353535", ec="#8bc34a" if ours else "#555555", lw=1.5))
        ax.text(x + 10, y + 18, f"{n['title']}  ({n['type']})", color="white", fontsize=7, weight="bold", va="center")
        lines = [f"{i['name']}" for i in n["inputs"]]
        lines += [f"{k}: {v}" for k, v in api[str(n["id"])]["inputs"].items() if not isinstance(v, list)]
        for i, text in enumerate(lines):
            text = text.replace("\n", " ")
            ax.text(x + 10, y + 40 + 24 * i if i < len(n["inputs"]) else y + 46 + 24 * len(n["inputs"]) + 26 *
                    (i - len(n["inputs"])), text[:48] + ("..." if len(text) > 48 else ""),
                    color="#9e9e9e" if i < len(n["inputs"]) else "#dedede", fontsize=6, va="center")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    if title:
        ax.set_title(title, color="white", fontsize=11)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor=fig.get_facecolor())
    plt.close(fig)


def title_card(api: dict, title: str, path: Path) -> None:
    """A template's thumbnail when it needs downloaded weights: its model and what it compares in large
    type (the dialog shows the card's middle), and the model files it loads (the loaders' file widgets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = sorted({v for entry in api.values() for k, v in entry["inputs"].items() if k in MODEL_FILES})
    fig = plt.figure(figsize=(4, 3), dpi=100)
    fig.patch.set_facecolor("#1e1e1e")
    model, _, compared = title.partition(", ")
    fig.text(0.5, 0.68, model, color="white", fontsize=17, weight="bold", ha="center", va="center", wrap=True)
    fig.text(0.5, 0.50, compared, color="#8bc34a", fontsize=15, ha="center", va="center")
    fig.text(0.5, 0.36, "needs " + ", ".join(files[:4]), color="#9e9e9e", fontsize=6.5, ha="center", va="top",
             wrap=True)
    fig.savefig(path, facecolor=fig.get_facecolor(), format="jpg")
    plt.close(fig)


def result_card(frames, title: str, path: Path) -> None:
    """A template's thumbnail from what it made: the middle frame of its compared clips, under its title."""
    import numpy as np
    from PIL import Image

    frame = np.asarray(frames[len(frames) // 2])
    image = Image.fromarray(frame)
    scale = 400 / image.width
    image = image.resize((400, max(1, round(image.height * scale))), Image.NEAREST)
    canvas = Image.new("RGB", (400, 300), (30, 30, 30))
    canvas.paste(image, (0, (300 - image.height) // 2))
    canvas.save(path, format="JPEG", quality=90)


def execute(api: dict, folder: Path) -> dict:
    """Run an API graph through ComfyUI's executor (the checkout imported by `comfyui_infos`), writing
    into `folder`; returns what each output node shows ({node id: ui}, the run's history). A refused
    or failed graph raises ValueError with ComfyUI's message."""
    import asyncio

    import execution
    import folder_paths

    folder_paths.set_output_directory(str(folder / "output"))
    folder_paths.set_temp_directory(str(folder / "temp"))

    class Server:  # what PromptExecutor asks of ComfyUI's server when no client listens
        client_id = last_node_id = last_prompt_id = None

        def send_sync(self, *args, **kwargs):
            pass

    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("template", api, None))
    if not valid:
        raise ValueError(f"ComfyUI refuses the template: {error}, {node_errors}")
    executor = execution.PromptExecutor(Server(), cache_type=execution.CacheType.CLASSIC)
    executor.execute(api, "template", {}, outputs)
    if not executor.success:
        errors = [m for kind, m in executor.status_messages if kind == "execution_error"]
        raise ValueError(f"the template failed in ComfyUI: {errors[0]['exception_message'] if errors else '?'}")
    return executor.history_result["outputs"]


def saved_frames(shown: dict, folder: Path) -> list:
    """The frames of the first video the run saved (`execute`'s result), each (H, W, 3) uint8."""
    import av

    for ui in shown.values():
        for clip in ui.get("images", []):
            if clip["filename"].endswith((".mp4", ".webm", ".webp", ".gif")):
                with av.open(str(folder / "output" / clip["subfolder"] / clip["filename"])) as container:
                    return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    raise ValueError("the template saved no video.")


def run_template(api: dict, folder: Path) -> list:
    """The frames of the video an API graph saves when ComfyUI's executor runs it (its thumbnail's source)."""
    return saved_frames(execute(api, folder), folder)


def node_info(cls) -> dict:
    """A node class's input and output definition as ComfyUI's /object_info serves it."""
    if hasattr(cls, "GET_NODE_INFO_V1"):
        return cls.GET_NODE_INFO_V1()
    return {"input": cls.INPUT_TYPES(), "output": list(cls.RETURN_TYPES),
            "output_name": list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)}


def comfyui_infos() -> dict[str, dict]:
    """Every node's definition, from the ComfyUI checkout at COMFYUI_PATH (core nodes and this pack)."""
    import asyncio

    sys.path.insert(0, os.environ["COMFYUI_PATH"])
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import nodes

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    asyncio.run(nodes.load_custom_node(str(Path(__file__).parent)))
    return {name: node_info(cls) for name, cls in nodes.NODE_CLASS_MAPPINGS.items()}


def read_graphs(folder: Path) -> dict[str, dict]:
    """{file name: API graph} of every *.json in `folder`, each parsed and its shape checked."""
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not paths:
        raise ValueError(f"{folder} holds no API-format workflow (*.json).")
    graphs = {}
    for path in paths:
        try:
            graphs[path.name] = json.loads(path.read_text())
            check_graph(graphs[path.name])
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise ValueError(f"{path} is not a JSON workflow ({type(err).__name__}: {str(err)[:120]}).") from None
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return graphs


def write_all(graphs: dict[str, dict], infos: dict[str, dict], out: Path, run=None) -> list[Path]:
    """Each API graph's canvas template and its thumbnail in `out` (`template_path`), every one made
    before the first is written, each file written whole (atomically). `run(api)` -> frames runs a
    template that needs no download, for its thumbnail (None: a title card for every template)."""
    from samg_video.atomic import atomic_path

    for name, api in graphs.items():
        check_graph(api, infos)
    made = {name: to_ui(api, infos) for name, api in graphs.items()}
    frames = {name: run(graphs[name]) for name in made if run is not None and Path(name).stem in RUNS_WITHOUT_DOWNLOAD}
    written = []
    for name, ui in made.items():
        target = template_path(out, name)
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(ui, indent=1) + "\n")
        with atomic_path(target.with_suffix(".jpg")) as tmp:
            if name in frames:
                result_card(frames[name], target.stem, tmp)
            else:
                title_card(graphs[name], target.stem, tmp)
        written += [target, target.with_suffix(".jpg")]
    return written


def arguments(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m comfyui_samg.workflow_ui",
        description="Write the canvas-format templates (and their thumbnails) that ComfyUI lists under Templates "
                    "from the API-format workflows, with the node definitions of the ComfyUI checkout at "
                    "COMFYUI_PATH; with --picture, also the picture of the Wan 2.1 workflow in the docs.")
    parser.add_argument("--api", type=Path, default=FOLDER, help=f"folder of API-format workflows (default {FOLDER})")
    parser.add_argument("--out", type=Path, default=TEMPLATES,
                        help=f"folder the canvas templates go to (default {TEMPLATES}); never the --api folder")
    parser.add_argument("--picture", type=Path, default=None,
                        help="also draw wan21_t2v_cfg_vs_samg as a PNG here (docs/images/comfyui_wan21_workflow.png)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The command; a bad input is one line on stderr and exit code 2, before anything is written."""
    args = arguments(argv)
    try:
        if args.out.resolve() == args.api.resolve():
            raise ValueError(f"--out {args.out} is the --api folder; the canvas files would replace the API files.")
        graphs = read_graphs(args.api)
        comfy = os.environ.get("COMFYUI_PATH")
        if not comfy:
            raise ValueError("set COMFYUI_PATH to a ComfyUI checkout (its requirements installed): the canvas files "
                             "take ComfyUI's own node definitions.")
        if not (Path(comfy) / "nodes.py").is_file() or not (Path(comfy) / "comfy").is_dir():
            raise ValueError(f"COMFYUI_PATH={comfy} is not a ComfyUI checkout (no nodes.py and comfy/ in it); point "
                             "it at the folder `git clone https://github.com/Comfy-Org/ComfyUI` made.")
        infos = comfyui_infos()
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            written = write_all(graphs, infos, args.out, run=lambda api: run_template(api, Path(folder)))
    except ValueError as err:
        print(f"workflow_ui: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    name = "wan21_t2v_cfg_vs_samg.json"
    if args.picture is not None and name in graphs:
        draw(graphs[name], json.loads(template_path(args.out, name).read_text()), args.picture,
             f"{TITLES[Path(name).stem]}, on one seed")
        print(args.picture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
