"""Guidance in a limited interval (Kynkaanniemi et al. 2024, arXiv 2404.07724).

CFG at `scale` while the run is inside `interval`, else no guidance (w = 1, the
conditional prediction). `by="progress"`: the interval is a fraction of the run,
[start, end) of step / num_steps. `by="sigma"`: the interval is (sigma_lo, sigma_hi]
of the noise level that the caller passes as `sigma`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import RUN_FRACTION, SCALE_HELP, Guidance, check_interval, in_interval, param, register
from .cfg import cfg_combine


@register("interval",
          "CFG only inside an interval of the run, else the conditional prediction (Kynkaanniemi et al. 2024)")
@dataclass
class Interval(Guidance):
    scale: float = param(7.5, SCALE_HELP, lo=0.0, hi=100.0, step=0.05)
    interval: tuple[float, float] = param((0.0, 1.0), "(start, end) where CFG runs: a fraction of the run's "
                                                      "steps, or a range of sigma (by)", unit=RUN_FRACTION)
    by: str = param("progress", "what the interval measures: the run's progress (0..1) or the noise level sigma",
                    choices=("progress", "sigma"))

    def validate(self) -> None:
        if self.by == "progress":
            self.interval = check_interval("interval", self.interval)
        else:
            lo, hi = (float(v) for v in self.interval)
            if not 0 <= lo < hi:
                raise ValueError(f"A sigma interval must be (lo, hi) with 0 <= lo < hi, got {tuple(self.interval)}.")
            self.interval = (lo, hi)

    def progress_settings(self) -> tuple[str, ...]:
        return super().progress_settings() if self.by == "progress" else ()  # by sigma: the noise level

    def active(self, ctx) -> bool:
        if self.by == "progress":
            return in_interval(ctx.progress, self.interval)
        if ctx.sigma is None:
            raise ValueError("Interval guidance with by='sigma' needs the noise level: pass sigma=... per call.")
        return self.interval[0] < ctx.sigma <= self.interval[1]

    def combine(self, pred_uncond, pred_cond, ctx, state):
        if not self.active(ctx):
            return pred_cond.clone(), state
        return cfg_combine(pred_uncond, pred_cond, self.scale, ctx.dtype), state
