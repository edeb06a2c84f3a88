"""The pack's nodes in ComfyUI's V3 API (`comfy_api.latest`: `io.ComfyNode`, `io.Schema`,
`comfy_entrypoint`), made from the node declarations in `nodes.py` (inputs with their defaults,
ranges and tooltips, outputs with names and tooltips, the queue-time check), so the V1 and V3
forms are one definition. ComfyUI versions with `comfy_api.latest` load these; older ones load
`nodes.NODE_CLASS_MAPPINGS` (comfyui_samg/__init__.py decides)."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import nodes

KINDS = {"FLOAT": io.Float, "INT": io.Int, "BOOLEAN": io.Boolean, "STRING": io.String, "MODEL": io.Model,
         "IMAGE": io.Image, "LATENT": io.Latent, "CLIP": io.Clip, "VAE": io.Vae}


def v3_input(name: str, spec: tuple, optional: bool = False):
    """A V1 input declaration (TYPE or [choices], {default, min, max, step, tooltip, ...}) as a V3 input."""
    kind, options = spec[0], dict(spec[1]) if len(spec) > 1 else {}
    if optional:
        options["optional"] = True
    if isinstance(kind, list):
        return io.Combo.Input(name, options=kind, **options)
    return KINDS[kind].Input(name, **options)


def schema(node_id: str, cls) -> io.Schema:
    """The V3 schema of a V1 node class."""
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    tips = getattr(cls, "OUTPUT_TOOLTIPS", None) or (None,) * len(names)
    return io.Schema(node_id=node_id, display_name=nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id], category=cls.CATEGORY,
                     description=cls.DESCRIPTION,
                     inputs=[v3_input(name, spec, group == "optional") for group in ("required", "optional")
                             for name, spec in cls.INPUT_TYPES().get(group, {}).items()],
                     outputs=[KINDS[kind].Output(display_name=name, tooltip=tip)
                              for kind, name, tip in zip(cls.RETURN_TYPES, names, tips)],
                     is_output_node=getattr(cls, "OUTPUT_NODE", False))


def v3_node(node_id: str, cls) -> type[io.ComfyNode]:
    """A V3 node running `cls`'s function (its result, and its `ui` where it has one)."""
    def define_schema(node):
        return schema(node_id, cls)

    def execute(node, **inputs):
        result = getattr(cls(), cls.FUNCTION)(**inputs)
        if isinstance(result, dict):
            return io.NodeOutput(*result["result"], ui=result.get("ui"))
        return io.NodeOutput(*result)

    methods = {"define_schema": classmethod(define_schema), "execute": classmethod(execute), "__doc__": cls.__doc__}
    if hasattr(cls, "VALIDATE_INPUTS"):  # the same queue-time check, with the same named inputs
        methods["validate_inputs"] = classmethod(cls.VALIDATE_INPUTS.__func__)
    return type(cls.__name__, (io.ComfyNode,), methods)


NODES = [v3_node(node_id, cls) for node_id, cls in nodes.NODE_CLASS_MAPPINGS.items()]


class SAMGVideoExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> SAMGVideoExtension:
    return SAMGVideoExtension()
