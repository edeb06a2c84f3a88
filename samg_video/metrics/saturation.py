"""Colour artifacts of high guidance: clipped pixels and saturation.

clipped_high / clipped_low: fraction of pixels with any channel at 255 / at 0 (uint8),
the values a sampler pushed out of range and the decoder clipped (a black background
counts as clipped_low, so compare like with like); saturation: mean HSV saturation in
[0, 1]; oversaturated: fraction of pixels with saturation above 0.95.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import Metric


class Saturation(Metric):
    name = "saturation"
    temporal = False

    def __init__(self):
        self.high, self.low, self.saturation, self.over, self.frames = 0.0, 0.0, 0.0, 0.0, 0

    def frame(self, frame: np.ndarray) -> None:
        self.high += float((frame == 255).any(-1).mean())
        self.low += float((frame == 0).any(-1).mean())
        sat = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32) / 255
        self.saturation += float(sat.mean())
        self.over += float((sat > 0.95).mean())
        self.frames += 1

    def result(self) -> dict:
        if not self.frames:  # no frame, no pixel: nothing measured (None), not 0 % of nothing
            return {"clipped_high": None, "clipped_low": None, "saturation": None, "oversaturated": None}
        n = self.frames
        return {"clipped_high": self.high / n, "clipped_low": self.low / n, "saturation": self.saturation / n,
                "oversaturated": self.over / n}
