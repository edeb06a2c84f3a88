"""The pack's nodes in ComfyUI's V3 API (`comfy_api.latest`: `io.ComfyNode`, `io.Schema`,
`comfy_entrypoint`), written as core's V3 nodes are: a schema whose inputs are `io.Float.Input(...)`,
`io.Combo.Input(...)` and the like, made from the same `inputs.Input` declarations as the V1
`INPUT_TYPES` (`nodes.py`); a `validate_inputs` naming the values it checks (every dropdown among
them: ComfyUI checks a V3 node's dropdowns nowhere else); an `execute` running the node's function.
ComfyUI versions with `comfy_api.latest` load these; older ones load `nodes.NODE_CLASS_MAPPINGS`
(comfyui_samg/__init__.py decides)."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import nodes
from .inputs import Input

SOCKETS = {"MODEL": io.Model, "IMAGE": io.Image, "LATENT": io.Latent, "CLIP": io.Clip, "VAE": io.Vae}


def v3_input(i: Input):
    """One declared input as ComfyUI's V3 input."""
    common = dict(tooltip=i.tooltip, optional=i.optional)
    if i.kind == "FLOAT":
        return io.Float.Input(i.name, default=i.default, min=i.min, max=i.max, step=i.step, **common)
    if i.kind == "INT":
        return io.Int.Input(i.name, default=i.default, min=i.min, max=i.max, step=i.step, **common)
    if i.kind == "BOOLEAN":
        return io.Boolean.Input(i.name, default=i.default, **common)
    if i.kind == "STRING":
        return io.String.Input(i.name, default=i.default, multiline=i.multiline, **common)
    if i.kind == "COMBO":
        return io.Combo.Input(i.name, options=list(i.options), default=i.default, **common)
    return SOCKETS[i.kind].Input(i.name, **common)


def schema(node_id: str, node: type[nodes.Node]) -> io.Schema:
    """The V3 schema of a pack node: its declared inputs, its outputs with names and tooltips."""
    names = getattr(node, "RETURN_NAMES", None) or node.RETURN_TYPES
    tips = getattr(node, "OUTPUT_TOOLTIPS", None) or (None,) * len(names)
    kinds = {**SOCKETS, "FLOAT": io.Float, "STRING": io.String}
    return io.Schema(node_id=node_id, display_name=nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id], category=node.CATEGORY,
                     description=node.DESCRIPTION, inputs=[v3_input(i) for i in node.inputs()],
                     outputs=[kinds[kind].Output(display_name=name, tooltip=tip)
                              for kind, name, tip in zip(node.RETURN_TYPES, names, tips)],
                     is_output_node=getattr(node, "OUTPUT_NODE", False))


def output(result) -> io.NodeOutput:
    """A V1 function's result (a tuple, or {"ui", "result"}) as a V3 NodeOutput."""
    if isinstance(result, dict):
        return io.NodeOutput(*result["result"], ui=result.get("ui"))
    return io.NodeOutput(*result)


class SAMGVideo(io.ComfyNode):
    """SAMG (video): a MODEL guided by spatio-temporal SAMG (nodes.SAMGVideo)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema("SAMGVideo", nodes.SAMGVideo)

    @classmethod
    def validate_inputs(cls, w_min, w_max, quantile_low, quantile_high, start, end, skip="off", normalize="clip",
                        temporal_mode="fixed") -> bool | str:
        return nodes.SAMGVideo.VALIDATE_INPUTS(w_min, w_max, quantile_low, quantile_high, start, end, skip, normalize,
                                               temporal_mode)

    @classmethod
    def execute(cls, model, guide_frames=0, skip="off", **widgets) -> io.NodeOutput:
        return output(nodes.SAMGVideo().patch(model, guide_frames, skip, **widgets))


class GuidanceMethod(io.ComfyNode):
    """Guidance method (samg-video): a MODEL guided by any samg-video method (nodes.GuidanceMethod)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema("SAMGGuidanceMethod", nodes.GuidanceMethod)

    @classmethod
    def validate_inputs(cls, method, options, skip="off", space="auto") -> bool | str:
        return nodes.GuidanceMethod.VALIDATE_INPUTS(method, options, skip, space)

    @classmethod
    def execute(cls, model, method, options, space, guide_frames, skip="off") -> io.NodeOutput:
        return output(nodes.GuidanceMethod().patch(model, method, options, space, guide_frames, skip))


class SAMGFieldPreview(io.ComfyNode):
    """SAMG scale-field preview (nodes.SAMGFieldPreview)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema("SAMGFieldPreview", nodes.SAMGFieldPreview)

    @classmethod
    def execute(cls, model, samples, step, upscale) -> io.NodeOutput:
        return output(nodes.SAMGFieldPreview().preview(model, samples, step, upscale))


class TemporalMetrics(io.ComfyNode):
    """Temporal metrics (samg-video) of one clip (nodes.TemporalMetrics)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema("SAMGTemporalMetrics", nodes.TemporalMetrics)

    @classmethod
    def execute(cls, images, lpips) -> io.NodeOutput:
        return output(nodes.TemporalMetrics().measure(images, lpips))


class CompareClips(io.ComfyNode):
    """Compare clips (samg-video): clips side by side, each measured (nodes.CompareClips)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema("SAMGCompareClips", nodes.CompareClips)

    @classmethod
    def execute(cls, a, b, labels, upscale, lpips, c=None) -> io.NodeOutput:
        return output(nodes.CompareClips().compare(a, b, labels, upscale, lpips, c))


class LoadBundledModel(io.ComfyNode):
    """Load bundled model (samg-video): MODEL, CLIP and VAE with no download (nodes.LoadBundledModel)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema("SAMGLoadBundledModel", nodes.LoadBundledModel)

    @classmethod
    def validate_inputs(cls, folder) -> bool | str:
        return nodes.LoadBundledModel.VALIDATE_INPUTS(folder)

    @classmethod
    def execute(cls, folder="") -> io.NodeOutput:
        return output(nodes.LoadBundledModel().load(folder))


class EmptyBundledClip(io.ComfyNode):
    """Empty bundled clip (samg-video): the bundled model's starting latent (nodes.EmptyBundledClip)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema("SAMGEmptyBundledClip", nodes.EmptyBundledClip)

    @classmethod
    def execute(cls, width, height, length, batch_size) -> io.NodeOutput:
        return output(nodes.EmptyBundledClip().empty(width, height, length, batch_size))


NODES = [SAMGVideo, GuidanceMethod, SAMGFieldPreview, TemporalMetrics, CompareClips, LoadBundledModel,
         EmptyBundledClip]


class SAMGVideoExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> SAMGVideoExtension:
    return SAMGVideoExtension()
