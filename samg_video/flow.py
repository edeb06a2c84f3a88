"""Optical flow and warping (OpenCV DIS / Farneback; torchvision RAFT when weights are given), shared by
the temporal metrics and SAMG's motion-following smoothing (`temporal_mode="motion"`).

Flow convention: `flow[y, x] = (dx, dy)` maps pixel (x, y) of frame A to (x + dx, y + dy)
in frame B. `warp(B, flow)` samples B at those positions, so for a correct flow
`warp(B, flow_AB) ~= A`.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

BACKENDS = ("dis", "farneback", "raft")


def gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


@lru_cache(maxsize=4)
def _dis(preset: int):
    return cv2.DISOpticalFlow_create(preset)


def flow(a: np.ndarray, b: np.ndarray, backend: str = "dis", raft_weights: str | None = None) -> np.ndarray:
    """Flow (H, W, 2) float32 from grey uint8 frame a to b."""
    if backend == "dis":
        return _dis(cv2.DISOPTICAL_FLOW_PRESET_FAST).calc(a, b, None)
    if backend == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 5, 5, 1.1, 0)
    if backend == "raft":
        return raft_flow(a, b, raft_weights)
    raise ValueError(f"Unknown flow backend {backend!r}; use one of {', '.join(BACKENDS)}.")


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    return np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)


def warp(image: np.ndarray, flow_ab: np.ndarray) -> np.ndarray:
    """Sample `image` (frame B) at x + flow_ab(x): bilinear, border replicated; (H, W, C) or (H, W)."""
    return cv2.remap(image, _grid(*flow_ab.shape[:2]) + flow_ab, None, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """Lai et al. 2018: True where forward/backward flow disagree or on a motion boundary (H, W).

    inconsistent: |f + b'|^2 > 0.01 (|f|^2 + |b'|^2) + 0.5, b' = backward flow warped by f;
    boundary:     |grad f_x|^2 + |grad f_y|^2 > 0.01 |f|^2 + 0.002.
    Written on separate x / y planes: numpy's reductions over a last axis of size 2 are
    ~15x slower than the same sums done plane by plane.
    """
    fx, fy = cv2.split(flow_fw)
    bx, by = cv2.split(warp(flow_bw, flow_fw))
    sx, sy = fx + bx, fy + by
    f_sq = fx * fx + fy * fy
    inconsistent = sx * sx + sy * sy > 0.01 * (f_sq + bx * bx + by * by) + 0.5
    du_y, du_x = np.gradient(fx)
    dv_y, dv_x = np.gradient(fy)
    grad_sq = du_x * du_x + du_y * du_y + dv_x * dv_x + dv_y * dv_y
    boundary = grad_sq > 0.01 * f_sq + 0.002
    return inconsistent | boundary


def magnitude(flow_ab: np.ndarray) -> np.ndarray:
    """Per-pixel flow length sqrt(dx^2 + dy^2), (H, W)."""
    return cv2.magnitude(*cv2.split(flow_ab))


def masked_channel_mean(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean over pixels (where mask != 0) and channels of an (H, W, C<=4) image; 0.0 for an empty mask."""
    means = cv2.mean(image, mask=mask)
    return float(np.mean(means[:image.shape[2] if image.ndim == 3 else 1]))


@lru_cache(maxsize=1)
def _raft(weights: str):
    import torch
    from torchvision.models.optical_flow import raft_large

    model = raft_large(weights=None)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    return model.eval()


def raft_flow(a: np.ndarray, b: np.ndarray, weights: str | None) -> np.ndarray:
    """torchvision RAFT-large on grey frames (repeated to RGB); needs a local weights file."""
    import torch

    if not weights:
        raise ValueError("The RAFT backend needs weights: pass raft_weights=/path/raft_large_C_T_SKHT_V2-ff5fadd5.pth "
                         "(torchvision's Raft_Large_Weights file); samg-video never downloads.")
    h, w = a.shape
    pad_h, pad_w = (-h) % 8, (-w) % 8
    to_t = lambda g: torch.from_numpy(np.pad(g, ((0, pad_h), (0, pad_w)), mode="edge")).float().div(127.5).sub(1)[None, None].repeat(1, 3, 1, 1)  # noqa: E731
    with torch.no_grad():
        out = _raft(weights)(to_t(a), to_t(b))[-1][0]
    return out.permute(1, 2, 0).numpy()[:h, :w].astype(np.float32)
