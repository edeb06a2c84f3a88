"""The one evaluation harness: measure a generated clip, and score it against its prompt where a
scorer exists. `samg-video compare`, sweeps and the bundled model's held-out evaluation all call it.

A record (`measure`) holds
- the model-agnostic temporal metrics (flicker, flicker_compensated, warp_error, motion,
  saturation / clipped pixels, and lpips_temporal unless switched off), and clip_score
  with a CLIP model;
- the scale-field diagnostics (`metrics.field`) where the method has a field;
- `denoiser_passes`: denoiser calls per item and step (2, or 3 with a perturbed call; fewer
  under a skip policy), `denoiser_calls`: per clip (all steps), `skipped_steps`: steps without
  an unconditional pass; under a skip policy also `plan` (one letter per step: C computed,
  R reused, - dropped) and `skip_signal` (per step, the number the policy decided on, or None);
- the columns of an optional scorer, which judges the clip against its prompt.

A scorer is named by the model card (`scorer:`) or a sweep config (`scorer:`, `none` to
switch it off) and resolved from `SCORERS`. Its interface (`Scorer`): `check_prompt`
(raises on a prompt it cannot judge, before any work), `row` (its columns for one clip)
and `regions` (object masks, so the field diagnostics can split object and background).
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from . import catalogue, media, metrics
from .metrics.field import field_diagnostics

SCORERS = {  # name -> "module:class"; the class takes no arguments
    "shapes": "samg_video.demo.evaluate:ShapeScorer",
}


class Scorer(Protocol):
    """Judges a clip against its prompt (e.g. the bundled world's exact scorer)."""

    name: str

    def check_prompt(self, prompt: str) -> None:
        """Raise ValueError (one sentence) on a prompt this scorer cannot judge."""

    def row(self, clip: np.ndarray, prompt: str, generation) -> dict:
        """Columns for one uint8 clip (F, H, W, 3) and the `generate.Generation` it came from."""

    def regions(self, clip: np.ndarray, prompt: str) -> tuple[np.ndarray | None, dict[str, np.ndarray] | None]:
        """(object mask (F, H, W) or None, {region name: mask (F, H, W)} or None) of one clip."""


def scorer(name: str | None) -> Scorer | None:
    """The scorer called `name` (None or "none": no scorer); an unknown name is one sentence."""
    if name in (None, "none"):
        return None
    if name not in SCORERS:
        raise ValueError(f"Unknown scorer {name!r}; use one of {', '.join(SCORERS)} or 'none'.")
    module, _, attr = SCORERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)()


def scorer_of(card: dict, override: str | None = None) -> Scorer | None:
    """The scorer of a run: `override` when given (a sweep's `scorer`), else the model card's."""
    return scorer(override if override is not None else card.get("scorer"))


PLAN_CODES = {"compute": "C", "reuse": "R", "drop": "-"}


def plan_code(plans) -> str:
    """A clip's plans as one letter per step: C computed, R reused, - dropped ("CCCRRC...")."""
    return "".join(PLAN_CODES[p] for p in plans)


def measure(generation, prompt: str, lpips: bool = True, clip_model: str | None = None,
            judge: Scorer | None = None, vbench: dict | None = None) -> dict:
    """One clip's record (see the module docstring). `generation`: a `generate.Generation`; `vbench`:
    {"models": {"dino" | "clip" | "raft": model}, "device": ...} adds those models' VBench dimensions."""
    clip = media.to_uint8(generation.clip)
    names = catalogue.chosen(lpips, bool(clip_model))
    extra = {}
    if vbench:
        names += [d for d in catalogue.VBENCH if catalogue.MODEL_OF[d] in vbench["models"]]
        extra = {"vbench_models": vbench["models"], "device": vbench["device"]}
    row = metrics.compute(clip, metrics=names, clip_model=clip_model, prompt=prompt, **extra)
    masks, regions = None, None
    if judge is not None:
        row.update(judge.row(clip, prompt, generation))
        masks, regions = judge.regions(clip, prompt)
    row.update(field_diagnostics([f[0, 0].numpy() for f in generation.fields], clip, masks, regions))
    row["denoiser_passes"] = generation.denoiser_passes
    if generation.denoiser_calls is not None:
        row["denoiser_calls"] = generation.denoiser_calls
        row["skipped_steps"] = sum(p != "compute" for p in generation.plans)
        if generation.plans and any(p != "compute" for p in generation.plans) or any(
                v is not None for v in generation.signals):
            row["plan"] = plan_code(generation.plans)
            row["skip_signal"] = [None if v is None else round(float(v), 6) for v in generation.signals]
    return row


def evaluate_pairs(target, method, pairs: list[tuple[str, int]], judge: Scorer, batch: int = 16,
                   progress=None) -> list[dict]:
    """Generate every (prompt, seed) pair with `method` on `target` (a `generate.Target`), `batch`
    at a time, and return one row per clip: prompt, seed, the scorer's row and the clip itself
    under `clip` (uint8 (F, H, W, 3)). `progress`: a tqdm bar advanced per batch, or None."""
    from .generate import generate_clips  # heavy (diffusers); only the held-out evaluation needs it

    rows = []
    for i in range(0, len(pairs), batch):
        chunk = pairs[i:i + batch]
        for (prompt, seed), g in zip(chunk, generate_clips(target, [p for p, _ in chunk], [s for _, s in chunk],
                                                           method)):
            clip = media.to_uint8(g.clip)
            rows.append({"prompt": prompt, "seed": seed, **judge.row(clip, prompt, g), "clip": clip})
        if progress is not None:
            progress.update(len(chunk))
    return rows
