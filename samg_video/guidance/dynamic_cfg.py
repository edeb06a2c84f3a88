"""CogVideoX's dynamic CFG, defined on the step index.

    w_i = 1 + w (1 - cos(pi (i / N)^p)) / 2,    i = 0 .. N-1, p = 5

The reference pipeline feeds the raw timestep where the formula wants the step
count, so its scale oscillates (an open upstream issue); here the schedule is a
function of the step index i and run length N, rising smoothly from 1 towards 1 + w.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Guidance, param, register
from .cfg import cfg_combine


def dynamic_scale(scale: float, step: int, num_steps: int, power: float = 5.0) -> float:
    return 1 + scale * (1 - math.cos(math.pi * (step / num_steps) ** power)) / 2


@register("dynamic_cfg",
          "CFG whose scale follows a cosine schedule over the steps (CogVideoX's use_dynamic_cfg)")
@dataclass
class DynamicCFG(Guidance):
    scale: float = param(6.0, "the scale the schedule reaches at the end: w_t = 1 + scale (1 - cos(pi (t / T)^power)) "
                              "/ 2", lo=0.0, hi=100.0, step=0.05)
    power: float = param(5.0, "how late the schedule rises (higher: later)", lo=0.0)

    def progress_settings(self) -> tuple[str, ...]:
        return ("the scale's schedule (t / T)",)  # read at every step

    def combine(self, pred_uncond, pred_cond, ctx, state):
        w = dynamic_scale(self.scale, ctx.step, ctx.num_steps, self.power)
        return cfg_combine(pred_uncond, pred_cond, w, ctx.dtype), state
