"""Adaptive Projected Guidance (Sadat et al. 2024, arXiv 2410.02416).

    d      = c - u
    d_m    = d + beta * d_m(previous step)          momentum (beta = 0: off)
    d_r    = d_m * min(1, r / |d_m|)                 norm clipping (r = 0: off)
    d_par  = (<d_r, c> / <c, c>) c,  d_perp = d_r - d_par
    out    = u + w (d_perp + eta d_par) = u + w (d_r - (1 - eta) d_par)

Norms and inner products reduce over explicit axes: per frame (C, H, W; default) or
per clip (C, F, H, W). eta = 1 with no clipping and no momentum is CFG.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Guidance, check_range, reduce_dims, register
from .cfg import guided_line


def project(v: torch.Tensor, onto: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Component of v parallel to `onto`, with inner products over `dims`."""
    coef = (v * onto).sum(dim=dims, keepdim=True) / (onto * onto).sum(dim=dims, keepdim=True).clamp_min(1e-12)
    return coef * onto


@dataclass
class APGState:
    momentum: torch.Tensor | None = None


@register("apg")
@dataclass
class APG(Guidance):
    scale: float = 7.5
    eta: float = 0.0
    norm_threshold: float = 0.0
    momentum: float = 0.0
    per: str = "frame"

    def validate(self) -> None:
        reduce_dims(self.per)
        check_range("norm_threshold", self.norm_threshold)
        check_range("eta", self.eta)
        check_range("momentum", self.momentum, -1.0, 1.0)

    def initial_state(self) -> APGState:
        return APGState()

    def combine(self, pred_uncond, pred_cond, ctx, state: APGState):
        dims = reduce_dims(self.per)
        delta = pred_cond - pred_uncond
        if self.momentum != 0 and state.momentum is not None:
            delta = delta + self.momentum * state.momentum
        new_state = APGState(momentum=delta if self.momentum != 0 else None)
        if self.norm_threshold > 0:
            norm = torch.linalg.vector_norm(delta, dim=dims, keepdim=True)
            delta = delta * (self.norm_threshold / norm.clamp_min(1e-12)).clamp(max=1.0)
        if self.eta != 1:
            delta = delta - (1 - self.eta) * project(delta, pred_cond, dims)
        return guided_line(pred_uncond, delta, self.scale, ctx.dtype), new_state
