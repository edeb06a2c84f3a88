"""CFG rescale (Lin et al. 2023, arXiv 2305.08891, "Common Diffusion Noise Schedules ...").

    x   = u + w d
    x_r = x * std(c) / std(x)        std over all non-batch dims, per sample
    out = phi x_r + (1 - phi) x      phi = 0 is plain CFG
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import SCALE_HELP, Guidance, param, register
from .cfg import cfg_combine


@register("rescale", "CFG rescaled towards the conditional prediction's std (Lin et al. 2024)")
@dataclass
class Rescale(Guidance):
    scale: float = param(7.5, SCALE_HELP, lo=0.0, hi=100.0, step=0.05)
    phi: float = param(0.7, "how far the result is rescaled to the conditional prediction's std (0: CFG, 1: fully)",
                       lo=0.0, hi=1.0)

    def combine(self, pred_uncond, pred_cond, ctx, state):
        guided = cfg_combine(pred_uncond, pred_cond, self.scale)
        if self.phi == 0:
            return guided, state
        dims = tuple(range(1, guided.ndim))
        ratio = pred_cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
        return guided * (self.phi * ratio + (1 - self.phi)), state
