"""The pack's node inputs, each declared once as an `Input`: ComfyUI's V1 `INPUT_TYPES` tuples
(`v1_types`) and its V3 inputs (`v3.py`: `io.Float.Input(...)`, `io.Combo.Input(...)`, as core
nodes write them) are both made from it, and so is the queue-time check of each value against
its range and choices (`check_values`). A method's parameters become inputs through their own
declarations (`samg_video.guidance.base.param`; `nodes.declared_inputs`). No ComfyUI import here:
the contract tests read the declarations without ComfyUI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SettingError(ValueError):
    """A node setting that cannot work, in one sentence naming the widget."""


SettingError.__module__ = "samg-video"  # ComfyUI names an error by module and class: "samg-video.SettingError"

WIDGET_KINDS = ("FLOAT", "INT", "BOOLEAN", "STRING", "COMBO")  # the kinds a widget shows; the rest are sockets


@dataclass(frozen=True)
class Input:
    """One input of a node: `kind` is ComfyUI's type name (FLOAT, INT, BOOLEAN, STRING, COMBO, or a
    socket type: MODEL, IMAGE, LATENT, CLIP, VAE); `min` / `max` / `step` for numbers, `options` for
    a COMBO, `multiline` for a STRING; `optional` inputs may be left unconnected."""

    name: str
    kind: str
    tooltip: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    options: tuple = ()
    multiline: bool = False
    optional: bool = False

    def __post_init__(self):
        if (self.kind == "COMBO") != bool(self.options):
            raise ValueError(f"input {self.name}: a COMBO has options, and only a COMBO.")
        if self.kind == "COMBO" and self.default not in self.options:
            raise ValueError(f"input {self.name}: default {self.default!r} is not one of its options.")

    def v1(self) -> tuple:
        """ComfyUI's V1 declaration: (TYPE or [options], {default, min, max, step, multiline, tooltip})."""
        spec = {k: v for k, v in (("default", self.default), ("min", self.min), ("max", self.max),
                                  ("step", self.step)) if v is not None}
        if self.multiline:
            spec["multiline"] = True
        spec["tooltip"] = self.tooltip
        return (list(self.options) if self.kind == "COMBO" else self.kind, spec)


def v1_types(inputs: tuple[Input, ...]) -> dict:
    """A V1 node's INPUT_TYPES() from its inputs, in their order."""
    out = {"required": {i.name: i.v1() for i in inputs if not i.optional}}
    optional = {i.name: i.v1() for i in inputs if i.optional}
    if optional:
        out["optional"] = optional
    return out


def check_values(inputs: tuple[Input, ...], values: dict) -> None:
    """Each of `values` (any subset of the inputs' widgets) against its declared range and options:
    ComfyUI checks neither for the inputs a node's own check names, nor a V3 node's options at all.
    A value fed by a link is None until the node runs. Raises SettingError naming the widget."""
    declared = {i.name: i for i in inputs}
    for name, v in values.items():
        i = declared[name]
        if v is None:
            continue
        if i.kind == "COMBO" and v not in i.options:
            raise SettingError(f"{name} must be one of {', '.join(map(repr, i.options))}, got {v!r}.")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if i.min is not None and v < i.min or i.max is not None and v > i.max:
                raise SettingError(f"{name} = {v:g} is outside its range [{i.min}, {i.max}].")
