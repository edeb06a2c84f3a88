"""Separable Gaussian smoothing of scale fields along named axes of `B C F H W`."""

from __future__ import annotations

import math

import torch

AXES = {"f": 2, "h": 3, "w": 4}


def gaussian_kernel(sigma: float, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ceil(3 sigma), shape (2r + 1,)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _replicate_pad(x: torch.Tensor, dim: int, r: int) -> torch.Tensor:
    """Pad `r` copies of the edge slices on both ends of `dim` (works for any r, even r > length)."""
    shape = [r if d == dim else -1 for d in range(x.ndim)]
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, x.shape[dim] - 1, 1)
    return torch.cat([first.expand(*shape), x, last.expand(*shape)], dim=dim)


def smooth_along(x: torch.Tensor, axis: str, sigma: float) -> torch.Tensor:
    """Gaussian blur of x (B, C, F, H, W) along `axis` ("f", "h" or "w"), replicate borders.

    out = sum_i k_i * shift_i(x): one multiply-add per tap on views of the padded field
    (several times faster on the CPU than a one-channel conv1d over a reshaped copy).
    sigma == 0 returns x unchanged; a constant signal stays constant (normalised kernel).
    """
    if sigma == 0:
        return x
    dim, k = AXES[axis], gaussian_kernel(sigma).tolist()
    r, length = (len(k) - 1) // 2, x.shape[AXES[axis]]
    padded = _replicate_pad(x, dim, r)
    out = padded.narrow(dim, 0, length) * k[0]
    for i in range(1, len(k)):
        out.add_(padded.narrow(dim, i, length), alpha=k[i])
    return out


def smooth_field(x: torch.Tensor, spatial_sigma: float, temporal_sigma: float) -> torch.Tensor:
    """Spatial (H, W) then temporal (F) Gaussian smoothing of a field (B, 1, F, H, W)."""
    x = smooth_along(smooth_along(x, "h", spatial_sigma), "w", spatial_sigma)
    return smooth_along(x, "f", temporal_sigma)
