"""Integration with diffusers pipelines: `apply(pipe, method)` wraps the denoiser."""

from __future__ import annotations

from typing import Callable

from ..guidance import Guidance, create, from_dict
from .hook import Adapter, GuiderHandle, GuidanceHandle, StepInfo

__all__ = ["apply", "adapter_for", "Adapter", "GuidanceHandle", "GuiderHandle", "StepInfo", "SAMGGuider"]


def __getattr__(name):
    if name == "SAMGGuider":  # imported lazily: diffusers' guiders log a warning on construction
        from .guider import SAMGGuider

        return SAMGGuider
    raise AttributeError(name)

def adapter_for(pipe) -> Adapter:
    """How `pipe` runs CFG, derived from the pipeline itself (`derive.derive_adapter`)."""
    from .derive import derive_adapter

    return derive_adapter(pipe)


def as_method(method, params: dict, what: str) -> Guidance:
    """A method object from what `apply` accepts (an object, a registered name with `params`, a
    config dict); anything else is one sentence, before the pipeline is touched."""
    if isinstance(method, Guidance):
        if params:
            raise ValueError(f"Parameters {sorted(params)} go with a method name; {what} is already a method object.")
        return method
    if isinstance(method, str):
        return create(method, **params)
    if isinstance(method, dict):
        return from_dict(method)
    raise ValueError(f"{what} must be a samg_video method object, a method name (e.g. 'samg') or a config dict; "
                     f"got {method!r} ({type(method).__name__}).")


def apply(pipe, method: Guidance | str | dict, *, callback: Callable[[StepInfo], None] | None = None,
          experts: dict[str, Guidance | str | dict] | None = None, **params) -> GuidanceHandle | GuiderHandle:
    """Make `pipe` guide with `method` until the returned handle is removed.

    A pipeline that combines its predictions in a `guider` component (HunyuanVideo 1.5) gets
    the method in that slot (`GuiderHandle`); every other pipeline gets its denoiser wrapped
    (`GuidanceHandle`, how: `adapter_for`).

    `method` is a method object, a registered name (with `**params`) or a config dict.
    `callback(StepInfo)` runs after every guided denoiser call. `experts` gives a denoiser of
    its own method, e.g. Wan 2.2 A14B's low-noise expert, which the pipeline guides at
    `guidance_scale_2`: `experts={"transformer_2": samg_video.guidance.create("samg", w_min=2, w_max=4)}`
    (by default every expert uses `method`).

        with apply(pipe, "samg", w_min=3, w_max=9):
            video = pipe("a red circle moving left").frames[0]
    """
    method = as_method(method, params, "method")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be a function of one StepInfo, got {callback!r} ({type(callback).__name__}).")
    if experts is not None and not isinstance(experts, dict):
        raise ValueError(f"experts must map denoiser names to methods, got {type(experts).__name__}.")
    experts = {name: as_method(m, {}, f"experts[{name!r}]") for name, m in (experts or {}).items()}
    if (getattr(pipe, "components", None) or {}).get("guider") is not None:
        from .derive import layout_of

        if experts:
            raise ValueError(f"{type(pipe).__name__} has one denoiser; `experts` is for pipelines with two.")
        return GuiderHandle(pipe, method, layout_of(pipe, pipe.transformer), callback)
    return GuidanceHandle(pipe, method, adapter_for(pipe), callback, experts)
