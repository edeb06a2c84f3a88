"""Guidance enters a pipeline by wrapping its denoiser, never by editing its loop.

For a pipeline that runs CFG as one batched call on `[uncond, cond]`, a forward hook
on the denoiser splits the output into `(pred_uncond, pred_cond)`, computes the
guided prediction `g` with the method, and returns `[g, g]`. The pipeline's own line
`u + w (c - u)` then yields `g + w (g - g) = g` exactly, whatever its `w`, so the
loop, the number of denoiser calls and everything else stay the pipeline's own.

The run starts (and the method's state is reset) when the pipeline calls
`scheduler.set_timesteps`; the step index is the number of denoiser calls since.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..guidance import Guidance


@dataclass
class StepInfo:
    """What a step callback receives (shapes in the pipeline's own layout)."""

    step: int
    num_steps: int
    timestep: float
    sigma: float | None
    latents: torch.Tensor  # the denoiser's input for one half of the batch
    guided: torch.Tensor  # the guided prediction
    scale_field: torch.Tensor | None  # the method's field (SAMG), else None
    method: str


@dataclass(frozen=True)
class Adapter:
    """How one pipeline family runs CFG: denoiser attribute, latent layout, output access."""

    denoiser: str = "unet"
    layout: str = "BCFHW"


def model_output_tensor(output: Any) -> torch.Tensor:
    """The prediction inside a denoiser's output (tuple, BaseOutput with .sample, or tensor)."""
    if torch.is_tensor(output):
        return output
    if isinstance(output, tuple):
        return output[0]
    return output.sample


def replace_output(output: Any, new: torch.Tensor) -> Any:
    if torch.is_tensor(output):
        return new
    if isinstance(output, tuple):
        return (new,) + tuple(output[1:])
    output.sample = new
    if hasattr(output, "__setitem__") and "sample" in output:
        output["sample"] = new
    return output


def noise_level(scheduler, step: int, timestep: float) -> float | None:
    """sigma of this step: from `scheduler.sigmas` where it has them, else sqrt((1 - abar) / abar)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and len(sigmas) > step:
        return float(sigmas[step])
    abar = getattr(scheduler, "alphas_cumprod", None)
    if abar is not None:
        a = float(abar[int(round(timestep))])
        return math.sqrt((1 - a) / a)
    return None


def _timestep_of(args, kwargs) -> float:
    t = kwargs.get("timestep", args[1] if len(args) > 1 else None)
    if t is None:
        return float("nan")
    t = torch.as_tensor(t)
    return float(t.reshape(-1)[0])


class GuidanceHandle:
    """A method applied to a pipeline; `.remove()` (or leaving the `with` block) restores it."""

    def __init__(self, pipe, method: Guidance, adapter: Adapter, callback: Callable[[StepInfo], None] | None):
        self.pipe, self.method, self.adapter, self.callback = pipe, method, adapter, callback
        self.calls = 0
        self.step = 0
        self._scheduler = pipe.scheduler
        self._had_set_timesteps = "set_timesteps" in vars(self._scheduler)
        self._orig_set_timesteps = self._scheduler.set_timesteps
        self._scheduler.set_timesteps = self._set_timesteps
        denoiser = getattr(pipe, adapter.denoiser)
        self._hook = denoiser.register_forward_hook(self._after_forward, with_kwargs=True)
        self.active = True

    def _set_timesteps(self, *args, **kwargs):
        self._orig_set_timesteps(*args, **kwargs)
        self.method.reset()
        self.step = 0

    def _check_cfg(self) -> None:
        if not getattr(self.pipe, "do_classifier_free_guidance", True):
            raise ValueError(
                f"The pipeline is not running classifier-free guidance (guidance_scale={self.pipe.guidance_scale}), "
                f"so there is no unconditional half for {self.method.name!r} to use; call it with any "
                "guidance_scale > 1 (the applied method sets the actual strength).")

    def _after_forward(self, module, args, kwargs, output):
        self._check_cfg()
        pred = model_output_tensor(output)
        pred_uncond, pred_cond = pred.chunk(2)
        num_steps = len(self._scheduler.timesteps)
        step = min(self.step, num_steps - 1)
        t = _timestep_of(args, kwargs)
        sigma = noise_level(self._scheduler, step, t)
        guided = self.method(pred_uncond, pred_cond, step=step, num_steps=num_steps,
                             layout=self.adapter.layout, sigma=sigma)
        self.calls += 1
        self.step += 1
        if self.callback is not None:
            sample = kwargs.get("sample", kwargs.get("hidden_states", args[0] if args else None))
            self.callback(StepInfo(step, num_steps, t, sigma, sample.chunk(2)[0], guided,
                                   self._field_in_layout(), self.method.name))
        return replace_output(output, torch.cat([guided, guided]))

    def _field_in_layout(self) -> torch.Tensor | None:
        from ..guidance.layout import from_canonical

        field = getattr(self.method.state, "scale_field", None)
        return None if field is None else from_canonical(field, self.adapter.layout)

    def remove(self) -> None:
        """Restore the pipeline exactly: drop the hook and the scheduler wrapper."""
        if not self.active:
            return
        self._hook.remove()
        if self._had_set_timesteps:
            self._scheduler.set_timesteps = self._orig_set_timesteps
        else:
            del self._scheduler.set_timesteps
        self.active = False

    def __enter__(self) -> "GuidanceHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
