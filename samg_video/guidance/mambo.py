"""MAMBO-G (arXiv 2508.03442): magnitude-aware damping of the CFG scale.

    w' = 1 + (w - 1) exp(-alpha |d| / |u|)      per sample, norms over non-batch dims
    out = u + w' d

alpha = 0 is CFG.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lazy import lazy

from .base import Guidance, param, register
from .cfg import guided_line

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch


@register("mambo", "CFG scale damped where the delta is large relative to u (MAMBO-G, 2025)")
@dataclass
class Mambo(Guidance):
    scale: float = param(7.5, "the scale where the delta is small; it falls towards 1 as |c - u| / |u| grows",
                         lo=0.0, hi=100.0, step=0.05)
    alpha: float = param(1.0, "how fast the scale falls: w = 1 + (scale - 1) exp(-alpha |c - u| / |u|)", lo=0.0)

    def combine(self, pred_uncond, pred_cond, ctx, state):
        dims = tuple(range(1, pred_cond.ndim))
        delta = pred_cond - pred_uncond
        ratio = torch.linalg.vector_norm(delta, dim=dims, keepdim=True) / \
            torch.linalg.vector_norm(pred_uncond, dim=dims, keepdim=True).clamp_min(1e-8)
        scale = 1 + (self.scale - 1) * torch.exp(-self.alpha * ratio)
        return guided_line(pred_uncond, delta, scale, ctx.dtype, overwrite=True), state
