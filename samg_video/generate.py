"""One guided generation on any registry model (the bundled one included), with its scale fields.

Shared by `samg-video generate`, `compare` and sweeps: the pipeline is loaded once
(`load_target`), then each `generate_clips` applies a method for one batched run and
returns the clips and the fields the method used (canonical `(B, 1, F, H, W)`, one per step).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from . import cards
from .arguments import call_arguments, call_kwargs, check_size
from .guidance import Guidance
from .guidance.layout import to_canonical
from .guidance.spec import rescaled
from .pipelines import StepInfo, apply
from .pipelines.registry import frames_of, load_model
from .settings import RunSettings


@dataclass
class Target:
    """A loaded pipeline with its call defaults and its card.

    `notes`: one-line remarks for the user (the device chosen, a frame count rounded).
    """

    pipe: object
    kwargs: dict
    card: dict
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> int:
        """The model's native frame rate (card field `fps`)."""
        return int(self.card.get("fps", 8))

    @property
    def view_scale(self) -> int:
        """Nearest-neighbour enlargement of written clips for viewing (card field `view_scale`, default 1)."""
        return int(self.card.get("view_scale", 1))


@dataclass
class Generation:
    clip: np.ndarray  # (F, H, W, 3) floats in [0, 1]
    fields: list[torch.Tensor] = field(default_factory=list)  # canonical (1, 1, F', H', W') per step
    latents: torch.Tensor | None = None  # the final latents, where the pipeline's output carries them (`raw`)
    denoiser_passes: float = 2.0  # denoiser passes per item and step: cond + uncond, + the perturbed one (STG, ...)
    denoiser_calls: float | None = None  # denoiser evaluations per clip (batch rows computed per item), all steps
    plans: tuple[str, ...] = ()  # per guided step: how it got its unconditional prediction (guidance.skip)
    signals: tuple[float | None, ...] = ()  # per guided step: the number the skip policy decided on, or None

    def mean_field(self) -> np.ndarray | None:
        """Scale field averaged over steps, resized (nearest) to the clip: (F, H, W) (`viz.field_frames`)."""
        from . import viz

        return viz.field_frames(self.fields, size=self.clip.shape[:3]) if self.fields else None

    def heatmap(self, w_min: float, w_max: float, scale: int = 1) -> np.ndarray | None:
        """The mean field's heatmap at the clip's size times `scale` (`viz.field_heatmap`), or None."""
        from . import viz

        return viz.field_heatmap(self.fields, w_min, w_max, scale, size=self.clip.shape[:3]) if self.fields else None


def load_target(settings: RunSettings | None = None, **values) -> Target:
    """A registry model (`samg-video models`; "demo" is the bundled one) from local files, with call
    defaults: `settings` (a `RunSettings`; default: the bundled model) with `values` (any of its
    fields) over it, e.g. `load_target(model="demo", steps=4)`.

    `device="auto"` is the card's `device` when it names one, else CUDA when available, else the CPU.
    """
    s = replace(settings or RunSettings(), **values)
    c = s.card
    device, note = s.resolved_device()
    notes = [note] if note else []
    if s.frames and c.get("frames", 1) > 1:
        notes += [n for n in [cards.round_frames(c, s.frames)[1]] if n]
    pipe = load_model(c, s.model_path, device, s.dtype, s.cpu_offload, s.vae_tiling, s.adapter_path, s.controlnet_path)
    if (s.height or s.width) and "height" not in inspect.signature(type(pipe).__call__).parameters:
        notes.append(f"{type(pipe).__name__} sizes its clip from the input image; --height / --width are not used.")
    elif not c.get("bundled"):
        check_size(pipe, c["name"], s.height, s.width)
    return Target(pipe, call_kwargs(c, s.frames, s.height, s.width, s.steps), c, notes)


def expert_methods(card: dict, method: Guidance) -> dict[str, Guidance]:
    """A second expert's method: `method` at the expert's share of the scale (`cards.experts`), as
    the pipeline's own CFG runs it at guidance_scale_2."""
    return {name: rescaled(method, ratio) for name, ratio in cards.experts(card).items()}


def generate_clips(target: Target, prompts: list[str], seeds: list[int], method: Guidance,
                   on_step: Callable[[StepInfo], None] | None = None, inputs: dict | None = None,
                   skip=None) -> list[Generation]:
    """One batched run with `method` applied; item i uses prompts[i] and its own noise from seeds[i]
    (a generator per item), so a clip does not depend on what else is in the batch (up to float rounding).
    `inputs`: what the pipeline is conditioned on besides the prompt, shared by the batch (an
    image-to-video model's `image`). `on_step` is called after each guided denoising step (progress).
    `skip`: a skip policy (`guidance.skip`), or None for an unconditional pass every step.

    Work per clip: rows / B denoiser evaluations (the handle's batch rows, plus one row per item for
    each perturbed call), `denoiser_passes` = that / guided steps (2 for CFG)."""
    steps: list[torch.Tensor] = []

    def record(info: StepInfo) -> None:
        if info.scale_field is not None:
            steps.append(to_canonical(info.scale_field, info.layout).float().cpu())
        if on_step is not None:
            on_step(info)

    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    kwargs, inputs = call_arguments(target.pipe, target.card, target.kwargs, inputs or {})
    with apply(target.pipe, method, callback=record, experts=expert_methods(target.card, method), skip=skip) as handle:
        if len(prompts) == 1:  # a single item as a plain prompt and generator (Wan VACE takes no lists)
            out = target.pipe(prompt=prompts[0], generator=generators[0], **kwargs, **inputs)
        else:
            out = target.pipe(prompt=list(prompts), generator=generators, **kwargs, **inputs)
    latents = getattr(out, "raw", None)
    items = len(prompts)
    work = clip_work(handle, items)
    return [Generation(frames_of(out, i), [s[i:i + 1] for s in steps], None if latents is None else latents[i],
                       calls / max(handle.step, 1), calls, plans, signals)
            for i, (calls, plans, signals) in enumerate(work)]


def clip_work(handle, items: int) -> list[tuple[float, tuple[str, ...], tuple[float | None, ...]]]:
    """(denoiser rows, plan of each step, skip signal of each step) per clip: the rows its own plans cost
    in every run (its conditional row each evaluation, its unconditional row where computed), plus an
    equal share of the rows no plan accounts for (the pipeline's own passes) and one row per perturbed
    call."""
    runs = handle.runs
    own = [sum(r.clip_rows[i] if i < len(r.clip_rows) else 0 for r in runs) for i in range(items)]
    shared = (handle.rows - sum(own)) / items
    plans = [tuple(p for r in runs for p in r.clip_plans(i)) for i in range(items)]
    signals = [tuple(v for r in runs for v in r.clip_signals(i)) for i in range(items)]
    return [(own[i] + shared + handle.extra_calls, plans[i], signals[i]) for i in range(items)]


def generate_clip(target: Target, prompt: str, method: Guidance, seed: int = 0, inputs: dict | None = None,
                  skip=None) -> Generation:
    """Run the pipeline once with `method` applied (and `skip`, a skip policy); the pipeline is restored
    afterwards."""
    return generate_clips(target, [prompt], [seed], method, inputs=inputs, skip=skip)[0]
