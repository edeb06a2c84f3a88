"""Warping error (Lai et al. 2018, "Learning Blind Video Temporal Consistency").

    E = 1/(T-1) sum_t  sum_i M_t(i) |V_t(i) - warp(V_{t+1})(i)|^2 / sum_i M_t(i)

pixels in [0, 1], squared differences summed over RGB, M_t = 1 - occlusion (forward /
backward flow inconsistency or motion boundary, Lai et al.'s thresholds). Flow from
OpenCV DIS by default (Farneback, or torchvision RAFT with local weights).
"""

from __future__ import annotations

import numpy as np

from .base import Metric, Pair, mean_or_none


class WarpError(Metric):
    name = "warp_error"

    def __init__(self):
        self.errors = []

    def pair(self, pair: Pair) -> None:
        sq = ((pair.prev.astype(np.float32) / 255 - pair.warped_next) ** 2).sum(-1)
        valid = pair.valid
        count = valid.sum()
        self.errors.append(float(sq[valid].sum() / count) if count else float(sq.mean()))

    def result(self) -> dict:
        return {"warp_error": mean_or_none(self.errors)}
