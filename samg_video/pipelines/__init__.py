"""Integration with diffusers pipelines: `apply(pipe, method)` wraps the denoiser."""

from __future__ import annotations

from typing import Callable

from ..guidance import Guidance, create
from .hook import Adapter, GuidanceHandle, StepInfo

__all__ = ["apply", "adapter_for", "Adapter", "GuidanceHandle", "StepInfo", "SAMGGuider"]


def __getattr__(name):
    if name == "SAMGGuider":  # imported lazily: diffusers' guiders log a warning on construction
        from .guider import SAMGGuider

        return SAMGGuider
    raise AttributeError(name)

def adapter_for(pipe) -> Adapter:
    """How `pipe` runs CFG, derived from the pipeline itself (`derive.derive_adapter`)."""
    from .derive import derive_adapter

    return derive_adapter(pipe)


def apply(pipe, method: Guidance | str | dict, *, callback: Callable[[StepInfo], None] | None = None,
          **params) -> GuidanceHandle:
    """Make `pipe` guide with `method` until the returned handle is removed.

    `method` is a method object, a registered name (with `**params`) or a config dict.
    `callback(StepInfo)` runs after every guided denoiser call.

        with apply(pipe, "samg", w_min=3, w_max=9):
            video = pipe("a red circle moving left").frames[0]
    """
    if isinstance(method, str):
        method = create(method, **params)
    elif isinstance(method, dict):
        from ..guidance import from_dict

        method = from_dict(method)
    return GuidanceHandle(pipe, method, adapter_for(pipe), callback)
