"""Integration with diffusers pipelines: `apply(pipe, method)` wraps the denoiser."""

from __future__ import annotations

from typing import Callable

from ..guidance import Guidance, create
from .hook import Adapter, GuidanceHandle, StepInfo

__all__ = ["apply", "supported", "Adapter", "GuidanceHandle", "StepInfo", "ADAPTERS", "SAMGGuider"]


def __getattr__(name):
    if name == "SAMGGuider":  # imported lazily: diffusers' guiders log a warning on construction
        from .guider import SAMGGuider

        return SAMGGuider
    raise AttributeError(name)

# pipeline class name -> how it runs CFG (read off each pipeline's denoising loop in diffusers 0.42)
ADAPTERS: dict[str, Adapter] = {
    "DemoVideoPipeline": Adapter(("unet",), "BCFHW"),
    "CogVideoXPipeline": Adapter(("transformer",), "BFCHW", upcast=True),
    "TextToVideoSDPipeline": Adapter(("unet",), "BCFHW"),
    "AnimateDiffPipeline": Adapter(("unet",), "BCFHW"),
    "LTXPipeline": Adapter(("transformer",), "tokens", upcast=True),
    "WanPipeline": Adapter(("transformer", "transformer_2"), "BCFHW", calls="two"),
    "HunyuanVideoPipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    "StableDiffusionPipeline": Adapter(("unet",), "BCHW"),
    "StableDiffusionXLPipeline": Adapter(("unet",), "BCHW"),
    "StableDiffusion3Pipeline": Adapter(("transformer",), "BCHW"),
}


def supported() -> list[str]:
    return sorted(ADAPTERS)


def adapter_for(pipe) -> Adapter:
    for cls in type(pipe).__mro__:
        if cls.__name__ in ADAPTERS:
            return ADAPTERS[cls.__name__]
    raise ValueError(f"{type(pipe).__name__} is not supported by samg_video.pipelines.apply; "
                     f"supported pipelines: {', '.join(supported())}.")


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
