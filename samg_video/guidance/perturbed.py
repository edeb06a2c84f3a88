"""Perturbation guidance: STG, SLG and PAG, and SAMG composed with STG.

A third prediction p is the conditional prediction of the denoiser with chosen blocks
weakened (`Perturbation`), from one extra denoiser call per step that `samg_video.apply`
makes (on the conditional half only):

    out = u + w (c - u) + s (c - p)            s = 0: exactly CFG at w, and no extra call

- stg: spatiotemporal skip guidance (Hyung et al., CVPR 2025, arXiv 2411.18664): chosen
  spatial / temporal blocks of a video model are skipped whole (mode "block", STG-R) or
  their self-attention becomes the identity map (mode "attention", STG-A).
- slg: skip-layer guidance (Stable Diffusion 3.5; diffusers' SkipLayerGuidance): blocks
  skipped, the term on only inside `interval` of the run (default 1 % to 20 %).
- pag: perturbed-attention guidance (Ahn et al. 2024, arXiv 2403.17377; diffusers'
  PerturbedAttentionGuidance): self-attention maps replaced by the identity, same interval.
- samg+stg: SAMG's scale field W (guidance.samg) on the CFG delta, plus the STG term

      out = u + W (c - u) + s S (c - p),   S = W / mean(W) with stg_field, else S = 1

  (mean over each sample's field), so the STG term keeps its mean strength s and, with
  `stg_field`, follows the field's pattern.

`interval` (a fraction [start, end) of the run, as everywhere in samg-video) switches only
the perturbation term; outside it the step is plain CFG (SAMG) with no extra call.
Differences from diffusers by design: diffusers' SkipLayerGuidance and PAG perturb the
steps int(start n) < step < int(stop n), so their first step (and step 0) is never
perturbed, where [start, end) of step / n includes it (the default [1 %, 20 %) gives the
same steps in both); and with w = 1 diffusers returns p + s (c - p) where the formula
above gives c + s (c - p).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..lazy import lazy

from .base import (INTERVAL_HELP, RUN_FRACTION, SCALE_HELP, Guidance, Perturbation, StepContext, check_interval,
                   in_interval, param, register)
from .cfg import cfg_combine, round_to
from .samg import SAMG, SAMGState

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch

MODES = ("block", "attention")
LAYERS_HELP = "the denoiser's blocks the perturbed call acts on, by index (None: the middle block)"
MODE_HELP = "block: each chosen block skipped whole; attention: its self-attention made the identity"
FQN_HELP = "the module path of the denoiser's stack of blocks (e.g. transformer_blocks; auto: found)"
TERM_HELP = "the strength s of the perturbation term s (c - p), p: the prediction with the blocks perturbed"


def add_perturbed_term(guided: torch.Tensor, pred_cond: torch.Tensor, pred_perturbed: torch.Tensor,
                       scale: float | torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """guided + s (c - p), each operation rounded to `dtype` (as guidance.cfg.guided_line).

    guided, pred_cond, pred_perturbed: float32 (B, C, F, H, W); scale: a number or a field
    broadcastable to them; `dtype` None: float32.
    """
    dtype = torch.float32 if dtype is None else dtype
    term = round_to(round_to(pred_cond - pred_perturbed, dtype) * scale, dtype)
    return round_to(guided + term, dtype)


@dataclass
class PerturbedGuidance(Guidance):
    """CFG at `scale` plus a perturbation term (module docstring); subclasses name its strength."""

    without_perturbation: ClassVar[str] = "cfg"  # the method this one adds its term to

    scale: float = param(7.5, SCALE_HELP, lo=0.0, hi=100.0, step=0.05)
    layers: tuple[int, ...] | None = param(None, LAYERS_HELP)
    mode: str = param("block", MODE_HELP)
    fqn: str = param("auto", FQN_HELP)
    interval: tuple[float, float] = param((0.0, 1.0), INTERVAL_HELP + " (the perturbation term's)",
                                           unit=RUN_FRACTION)

    @property
    def perturbed_scale(self) -> float:
        raise NotImplementedError

    def validate(self) -> None:
        check_perturbation(self)

    def perturbation(self, step: int, num_steps: int) -> Perturbation | None:
        return perturbation_of(self, self.perturbed_scale, self.interval, step, num_steps)

    def combine(self, pred_uncond, pred_cond, ctx: StepContext, state):
        out = cfg_combine(pred_uncond, pred_cond, self.scale, ctx.dtype)
        if ctx.perturbed is None:
            return out, state
        return add_perturbed_term(out, pred_cond, ctx.perturbed, self.perturbed_scale, ctx.dtype), state


def check_perturbation(method, interval_field: str = "interval") -> None:
    """The perturbation fields every method with one shares: mode, fqn and the term's interval."""
    if method.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} (block: skip each block; attention: "
                         f"identity self-attention), got {method.mode!r}.")
    if not method.fqn:
        raise ValueError("fqn must name the denoiser's stack of blocks (e.g. transformer_blocks) or be 'auto'.")
    setattr(method, interval_field, check_interval(interval_field, getattr(method, interval_field)))


def perturbation_of(method, strength: float, interval: tuple[float, float], step: int,
                    num_steps: int) -> Perturbation | None:
    """The method's perturbation at this step: None where its term is off (strength 0, or
    outside `interval` of the run), so no extra denoiser call is made there."""
    if strength == 0 or not in_interval(step / num_steps, interval):
        return None
    return Perturbation(method.layers, method.mode, method.fqn)


@register("stg",
          "CFG plus spatiotemporal skip guidance: push away from a prediction with blocks skipped (Hyung et al. 2025)")
@dataclass
class STG(PerturbedGuidance):
    scale_stg: float = param(1.0, TERM_HELP, lo=0.0, hi=100.0, step=0.05, label="always")

    @property
    def perturbed_scale(self) -> float:
        return self.scale_stg


@register("slg",
          "CFG plus skip-layer guidance in an interval of the run (SD 3.5; diffusers' SkipLayerGuidance)")
@dataclass
class SLG(PerturbedGuidance):
    interval: tuple[float, float] = param((0.01, 0.2), INTERVAL_HELP + " (the perturbation term's)",
                                           unit=RUN_FRACTION)
    scale_slg: float = param(2.8, TERM_HELP, lo=0.0, hi=100.0, step=0.05, label="always")

    @property
    def perturbed_scale(self) -> float:
        return self.scale_slg


@register("pag",
          "CFG plus perturbed-attention guidance: self-attention made the identity (Ahn et al. 2024)")
@dataclass
class PAG(PerturbedGuidance):
    mode: str = param("attention", MODE_HELP)
    interval: tuple[float, float] = param((0.01, 0.2), INTERVAL_HELP + " (the perturbation term's)",
                                           unit=RUN_FRACTION)
    scale_pag: float = param(2.8, TERM_HELP, lo=0.0, hi=100.0, step=0.05, label="always")

    @property
    def perturbed_scale(self) -> float:
        return self.scale_pag


@register("samg+stg", "SAMG's per-location scale on the CFG delta plus the STG term")
@dataclass
class SAMGSTG(SAMG):
    """SAMG on the CFG delta plus the STG term (module docstring)."""

    without_perturbation: ClassVar[str] = "samg"

    scale_stg: float = param(1.0, TERM_HELP, lo=0.0, hi=100.0, step=0.05, label="always")
    stg_field: bool = param(False, "the STG term follows SAMG's field too: s W / mean(W) in place of s")
    layers: tuple[int, ...] | None = param(None, LAYERS_HELP)
    mode: str = param("block", MODE_HELP)
    fqn: str = param("auto", FQN_HELP)
    stg_interval: tuple[float, float] = param((0.0, 1.0), INTERVAL_HELP + " (the STG term's)", unit=RUN_FRACTION)

    def validate(self) -> None:
        super().validate()
        check_perturbation(self, "stg_interval")

    def perturbation(self, step: int, num_steps: int) -> Perturbation | None:
        return perturbation_of(self, self.scale_stg, self.stg_interval, step, num_steps)

    def values_to_check(self, out: torch.Tensor, state: SAMGState) -> torch.Tensor:
        """The output: the STG term can be non-finite where the field is not."""
        return out

    def combine(self, pred_uncond, pred_cond, ctx: StepContext, state: SAMGState):
        out, state = super().combine(pred_uncond, pred_cond, ctx, state)
        if ctx.perturbed is None:
            return out, state
        scale = self.scale_stg
        if self.stg_field and state.scale_field is not None:
            field = state.scale_field
            scale = self.scale_stg * field / field.mean(dim=tuple(range(1, field.ndim)), keepdim=True).clamp_min(1e-12)
        return add_perturbed_term(out, pred_cond, ctx.perturbed, scale, ctx.dtype), state
