"""Warping error (Lai et al. 2018, "Learning Blind Video Temporal Consistency").

    E = 1/(T-1) sum_t  sum_i M_t(i) |V_t(i) - warp(V_{t+1})(i)|^2 / sum_i M_t(i)

pixels in [0, 1], squared differences summed over RGB, M_t = 1 - occlusion (forward /
backward flow inconsistency or motion boundary, Lai et al.'s thresholds). Flow from
OpenCV DIS by default (Farneback, or torchvision RAFT with local weights).
"""

from __future__ import annotations

from ..flow import masked_channel_mean
from .base import Metric, Pair, mean_or_none


class WarpError(Metric):
    name = "warp_error"

    def __init__(self):
        self.errors = []

    def pair(self, pair: Pair) -> None:
        diff = pair.prev_float - pair.warped_next
        sq = diff * diff  # (H, W, 3); E sums over RGB: 3 x the mean over channels
        mask = pair.valid_u8 if pair.valid.any() else None  # all occluded: every pixel
        self.errors.append(3 * masked_channel_mean(sq, mask))

    def result(self) -> dict:
        return {"warp_error": mean_or_none(self.errors)}
