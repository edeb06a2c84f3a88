"""Motion magnitude: mean optical-flow length in pixels per frame (reported beside smoothness,
since a frozen video is perfectly smooth)."""

from __future__ import annotations

from .. import flow as flowlib
from .base import Metric, Pair, mean_or_none


class Motion(Metric):
    name = "motion"

    def __init__(self):
        self.magnitudes = []

    def pair(self, pair: Pair) -> None:
        self.magnitudes.append(float(flowlib.magnitude(pair.flow_fw).mean()))

    def result(self) -> dict:
        return {"motion": mean_or_none(self.magnitudes)}
