"""Separable Gaussian smoothing of scale fields along named axes of `B C F H W`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AXES = {"f": 2, "h": 3, "w": 4}


def gaussian_kernel(sigma: float, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ceil(3 sigma), shape (2r + 1,)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def smooth_along(x: torch.Tensor, axis: str, sigma: float) -> torch.Tensor:
    """Gaussian blur of x (B, C, F, H, W) along `axis` ("f", "h" or "w"), replicate borders.

    sigma == 0 returns x unchanged. A constant signal stays constant (normalised kernel).
    """
    if sigma == 0:
        return x
    dim = AXES[axis]
    k = gaussian_kernel(sigma, x.device).to(x.dtype)
    moved = x.movedim(dim, -1)
    flat = moved.reshape(-1, 1, moved.shape[-1])
    r = (len(k) - 1) // 2
    flat = F.pad(flat, (r, r), mode="replicate")
    out = F.conv1d(flat, k.view(1, 1, -1)).reshape(moved.shape)
    return out.movedim(-1, dim)


def smooth_field(x: torch.Tensor, spatial_sigma: float, temporal_sigma: float) -> torch.Tensor:
    """Spatial (H, W) then temporal (F) Gaussian smoothing of a field (B, 1, F, H, W)."""
    x = smooth_along(smooth_along(x, "h", spatial_sigma), "w", spatial_sigma)
    return smooth_along(x, "f", temporal_sigma)
