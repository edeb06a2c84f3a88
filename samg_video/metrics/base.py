"""Streaming evaluation: frames arrive in order, each metric accumulates over frames or frame pairs.

A `Pair` holds two consecutive uint8 frames (H, W, 3) and computes their flows once,
lazily, for every metric that asks (flicker's motion compensation, warping error and
motion share them). Memory stays bounded by one chunk of decoded frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import flow as flowlib


@dataclass
class FlowOptions:
    backend: str = "dis"
    raft_weights: str | None = None
    downscale: int = 1  # compute flow on frames shrunk by this factor (EvalCrafter uses 2)


MIN_FLOW_SIDE = 12  # OpenCV's DIS flow needs width or height >= 12


@dataclass
class Pair:
    """Frames t and t+1 with lazily computed flows (in full-resolution pixels)."""

    prev: np.ndarray
    next: np.ndarray
    options: FlowOptions = field(default_factory=FlowOptions)
    _cache: dict = field(default_factory=dict)

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import cv2

        s = self.options.downscale
        size = (a.shape[1] // s, a.shape[0] // s)
        if max(size) < MIN_FLOW_SIDE:
            raise ValueError(f"Optical flow needs frames of at least {MIN_FLOW_SIDE} px on one side; these are "
                             f"{size[0]}x{size[1]}" + (f" after flow_downscale {s}" if s > 1 else "") + ".")
        ga, gb = flowlib.gray(a), flowlib.gray(b)
        if s > 1:
            ga, gb = (cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (ga, gb))
        f = flowlib.flow(ga, gb, self.options.backend, self.options.raft_weights)
        if s > 1:
            f = cv2.resize(f, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR) * s
        return f

    @property
    def flow_fw(self) -> np.ndarray:
        if "fw" not in self._cache:
            self._cache["fw"] = self._flow(self.prev, self.next)
        return self._cache["fw"]

    @property
    def flow_bw(self) -> np.ndarray:
        if "bw" not in self._cache:
            self._cache["bw"] = self._flow(self.next, self.prev)
        return self._cache["bw"]

    @property
    def prev_float(self) -> np.ndarray:
        """Frame t as float32 in [0, 1] (H, W, 3)."""
        if "prev_float" not in self._cache:
            self._cache["prev_float"] = self.prev.astype(np.float32) * np.float32(1 / 255)
        return self._cache["prev_float"]

    @property
    def warped_next(self) -> np.ndarray:
        """Frame t+1 warped onto frame t, float32 in [0, 1]."""
        if "warped" not in self._cache:
            self._cache["warped"] = flowlib.warp(self.next.astype(np.float32) * np.float32(1 / 255), self.flow_fw)
        return self._cache["warped"]

    @property
    def valid(self) -> np.ndarray:
        """Non-occluded pixels (H, W) by Lai et al.'s test."""
        if "valid" not in self._cache:
            self._cache["valid"] = ~flowlib.occlusion_mask(self.flow_fw, self.flow_bw)
        return self._cache["valid"]

    @property
    def valid_u8(self) -> np.ndarray:
        """`valid` as a uint8 mask (1 = use) for OpenCV's masked means."""
        if "valid_u8" not in self._cache:
            self._cache["valid_u8"] = self.valid.view(np.uint8)
        return self._cache["valid_u8"]


class Metric:
    """Accumulator: `frame(f)` for every frame, `pair(p)` for every consecutive pair, then `result()`."""

    name = "metric"
    temporal = True  # needs at least two frames

    def frame(self, frame: np.ndarray) -> None:
        pass

    def pair(self, pair: Pair) -> None:
        pass

    def result(self) -> dict:
        raise NotImplementedError


def mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
