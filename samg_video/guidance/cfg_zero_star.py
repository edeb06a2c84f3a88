"""CFG-Zero* (Fan et al. 2025, arXiv 2503.18886).

    s   = <c, u> / |u|^2        per sample, over all non-batch dims (optimized_scale)
    out = s u + w (c - s u)
    out = 0 for the first `zero_init_steps` steps

With optimized_scale=False (s = 1) and zero_init_steps=0 it is CFG.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lazy import lazy

from .base import SCALE_HELP, Guidance, param, register
from .cfg import cfg_combine

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch


def optimized_scale(pred_uncond: torch.Tensor, pred_cond: torch.Tensor) -> torch.Tensor:
    """Per-sample least-squares scale s = <c, u> / |u|^2, shape (B, 1, 1, 1, 1)."""
    dims = tuple(range(1, pred_cond.ndim))
    dot = (pred_cond * pred_uncond).sum(dim=dims, keepdim=True)
    return dot / pred_uncond.square().sum(dim=dims, keepdim=True).clamp_min(1e-8)


@register("cfg_zero_star",
          "CFG with u rescaled by its least-squares fit to c, zero output for the first steps (Fan et al. 2025)")
@dataclass
class CFGZeroStar(Guidance):
    scale: float = param(7.5, SCALE_HELP, lo=0.0, hi=100.0, step=0.05)
    zero_init_steps: int = param(0, "the first steps, whose output is zero (the prediction is not yet trusted)", lo=0)
    use_optimized_scale: bool = param(True, "scale u by its least-squares fit to c, s = <c, u> / |u|^2, before "
                                            "the CFG line")

    def combine(self, pred_uncond, pred_cond, ctx, state):
        if ctx.step < self.zero_init_steps:
            return torch.zeros_like(pred_cond), state
        uncond = pred_uncond * optimized_scale(pred_uncond, pred_cond) if self.use_optimized_scale else pred_uncond
        return cfg_combine(uncond, pred_cond, self.scale, ctx.dtype), state
