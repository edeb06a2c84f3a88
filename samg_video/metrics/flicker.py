"""Temporal flickering (VBench), and a motion-compensated variant.

VBench: on uint8 frames, `score = (255 - mean_t MAE(frame_t, frame_{t+1})) / 255`
(1 = perfectly steady). It also counts real motion as flicker, so
`flicker_compensated` applies the same formula to the residual between frame t and
frame t+1 warped onto it by optical flow, over non-occluded pixels: smooth motion
costs nothing there, brightness flicker still does.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..flow import masked_channel_mean
from .base import Metric, Pair, mean_or_none


def vbench_flicker(frames: np.ndarray) -> float:
    """The VBench formula on a whole uint8 clip (F, H, W, 3)."""
    diffs = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    return float((255 - diffs.mean()) / 255)


class Flicker(Metric):
    name = "flicker"

    def __init__(self):
        self.mae, self.residual = [], []

    def pair(self, pair: Pair) -> None:
        self.mae.append(masked_channel_mean(cv2.absdiff(pair.next, pair.prev)))
        residual = cv2.absdiff(pair.warped_next, pair.prev_float)  # (H, W, 3) in [0, 1]
        self.residual.append(masked_channel_mean(residual, pair.valid_u8) * 255)  # 0 if all occluded

    def result(self) -> dict:
        mae, res = mean_or_none(self.mae), mean_or_none(self.residual)
        return {"flicker": None if mae is None else (255 - mae) / 255,
                "flicker_compensated": None if res is None else (255 - res) / 255}
