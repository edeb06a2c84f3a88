"""One guided generation on the bundled model or a registry model, with its scale fields.

Shared by `samg-video generate` and `samg-video compare`: the pipeline is loaded once
(`load_target`), then each `generate_clip` applies a method for one run and returns the
clip and the SAMG fields it used (canonical `(B, 1, F, H, W)`, one per step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .guidance import Guidance
from .guidance.layout import to_canonical
from .pipelines import StepInfo, apply


@dataclass
class Target:
    """A loaded pipeline with its call defaults; `demo` marks the bundled model."""

    pipe: object
    kwargs: dict
    card: dict
    demo: bool


@dataclass
class Generation:
    clip: np.ndarray  # (F, H, W, 3) floats in [0, 1]
    fields: list[torch.Tensor] = field(default_factory=list)  # canonical (B, 1, F', H', W') per step

    def mean_field(self) -> np.ndarray | None:
        """Scale field averaged over steps, resized (nearest) to the clip: (F, H, W)."""
        if not self.fields:
            return None
        mean = torch.stack(self.fields).mean(0)[:1, :1]
        size = (len(self.clip),) + self.clip.shape[1:3]
        return torch.nn.functional.interpolate(mean, size=size, mode="nearest")[0, 0].numpy()


def load_target(model: str = "demo", model_path: str | None = None, device: str = "cpu", dtype: str | None = None,
                cpu_offload: bool = False, vae_tiling: bool = False, frames: int | None = None,
                height: int | None = None, width: int | None = None, steps: int | None = None) -> Target:
    """The bundled model (`model="demo"`) or a registry model from local files, with call defaults."""
    if model == "demo":
        from .demo import load_card, load_pipeline

        kwargs = dict(num_frames=frames or 8, num_inference_steps=steps or 25, guidance_scale=2.0)
        return Target(load_pipeline(model_path, device), kwargs, load_card(), True)
    from .pipelines.registry import call_kwargs, card, load_model

    c = card(model)
    pipe = load_model(c, model_path, device, dtype, cpu_offload, vae_tiling)
    return Target(pipe, call_kwargs(c, frames, height, width, steps), c, False)


def generate_clip(target: Target, prompt: str, method: Guidance, seed: int = 0) -> Generation:
    """Run the pipeline once with `method` applied; the pipeline is restored afterwards."""
    from .pipelines.registry import frames_of

    result = Generation(clip=np.empty(0))

    def record(info: StepInfo) -> None:
        if info.scale_field is not None:
            result.fields.append(to_canonical(info.scale_field, info.layout).float().cpu())

    with apply(target.pipe, method, callback=record):
        out = target.pipe(prompt, generator=torch.Generator().manual_seed(seed), **target.kwargs)
    result.clip = np.asarray(out.frames[0]) if target.demo else frames_of(out)
    return result
