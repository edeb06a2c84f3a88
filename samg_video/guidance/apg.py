"""Adaptive Projected Guidance (Sadat et al. 2024, arXiv 2410.02416).

    d      = c - u
    d_m    = d + beta * d_m(previous step)          momentum (beta = 0: off)
    d_r    = d_m * min(1, r / |d_m|)                 norm clipping (r = 0: off)
    d_par  = (<d_r, c> / <c, c>) c,  d_perp = d_r - d_par
    out    = u + w (d_perp + eta d_par) = u + w (d_r - (1 - eta) d_par)

Norms and inner products reduce over explicit axes: per frame (C, H, W; default) or
per clip (C, F, H, W; diffusers' AdaptiveProjectedGuidance on a video latent). eta = 1
with no clipping and no momentum is CFG.

`apg_mix` (diffusers' AdaptiveProjectedMixGuidance, as HunyuanImage 2.1 uses it): CFG at
`cfg_scale` up to and including step `start_step` while the momentum accumulates d, then
APG at `scale` from the accumulated d_m.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lazy import lazy

from .base import PER, PER_HELP, SCALE_HELP, Guidance, param, reduce_dims, register
from .cfg import guided_line

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch


def project(v: torch.Tensor, onto: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Component of v parallel to `onto`, with inner products over `dims`."""
    coef = (v * onto).sum(dim=dims, keepdim=True) / (onto * onto).sum(dim=dims, keepdim=True).clamp_min(1e-12)
    return coef * onto


NORM_HELP = "cap r on the delta's norm, per frame or clip as `per` says (0: no cap)"
MOMENTUM_HELP = "beta: the share of the previous steps' delta added to this step's (negative: pushes away from it)"


@dataclass
class APGState:
    momentum: torch.Tensor | None = None


@register("apg",
          "adaptive projected guidance: the delta's part parallel to c scaled by eta, norm-clipped, with momentum "
          "(Sadat et al. 2024)")
@dataclass
class APG(Guidance):
    scale: float = param(7.5, SCALE_HELP, lo=0.0, hi=100.0, step=0.05)
    eta: float = param(0.0, "weight of the delta's part parallel to the conditional prediction (0: dropped, 1: "
                            "kept as in CFG)", lo=0.0)
    norm_threshold: float = param(0.0, NORM_HELP, lo=0.0)
    momentum: float = param(0.0, MOMENTUM_HELP, lo=-1.0, hi=1.0)
    per: str = param("frame", PER_HELP, choices=PER)

    def validate(self) -> None:
        reduce_dims(self.per)

    def initial_state(self) -> APGState:
        return APGState()

    def combine(self, pred_uncond, pred_cond, ctx, state: APGState):
        delta, new_state = with_momentum(pred_cond - pred_uncond, state, self.momentum)
        delta = projected_delta(delta, pred_cond, reduce_dims(self.per), self.eta, self.norm_threshold)
        return guided_line(pred_uncond, delta, self.scale, ctx.dtype), new_state


def with_momentum(delta: torch.Tensor, state: APGState, momentum: float) -> tuple[torch.Tensor, APGState]:
    """d_m = d + beta d_m(previous step) and the state that carries it (beta = 0: d, no state)."""
    if momentum != 0 and state.momentum is not None:
        delta = delta + momentum * state.momentum
    return delta, APGState(momentum=delta if momentum != 0 else None)


def projected_delta(delta: torch.Tensor, pred_cond: torch.Tensor, dims: tuple[int, ...], eta: float,
                    norm_threshold: float) -> torch.Tensor:
    """APG's update from d_m: norm-clipped to r, parallel part (to c) scaled by eta."""
    if norm_threshold > 0:
        norm = torch.linalg.vector_norm(delta, dim=dims, keepdim=True)
        delta = delta * (norm_threshold / norm.clamp_min(1e-12)).clamp(max=1.0)
    if eta != 1:
        delta = delta - (1 - eta) * project(delta, pred_cond, dims)
    return delta


@register("apg_mix",
          "CFG for the first steps, then APG from the momentum gathered meanwhile "
          "(diffusers' APG-mix, HunyuanImage 2.1)")
@dataclass
class APGMix(APG):
    """APG (its parameters, other defaults) after `start_step` steps of CFG at `cfg_scale`."""

    scale: float = param(10.0, SCALE_HELP, lo=0.0, hi=100.0, step=0.05)
    norm_threshold: float = param(10.0, NORM_HELP, lo=0.0)
    momentum: float = param(-0.5, MOMENTUM_HELP, lo=-1.0, hi=1.0)
    per: str = param("clip", PER_HELP, choices=PER)
    cfg_scale: float = param(3.5, "the CFG scale of the first steps", lo=0.0, hi=100.0, step=0.05, label="always")
    start_step: int = param(5, "the steps of CFG before APG takes over (their momentum is gathered)", lo=0,
                            label="always")

    def combine(self, pred_uncond, pred_cond, ctx, state: APGState):
        if ctx.step > self.start_step:
            return super().combine(pred_uncond, pred_cond, ctx, state)
        _, new_state = with_momentum(pred_cond - pred_uncond, state, self.momentum)
        return guided_line(pred_uncond, pred_cond - pred_uncond, self.cfg_scale, ctx.dtype), new_state
