"""Shared references of the tests, written independently of samg_video: the paper's SAMG formula.

    d = c - u,  E = mean_c d^2,  E_n = (E - min E) / (max E - min E + 1e-8)  per sample,
    W = w_max - E_n (w_max - w_min),  out = u + W d

(Li et al., arXiv 2604.26503; min and max over every entry of a sample but the channel axis.)
"""

from __future__ import annotations

import torch


def samg_scale(d: torch.Tensor, w_min: float, w_max: float, channel_dim: int = 1,
               keep: torch.Tensor | None = None) -> torch.Tensor:
    """W for a delta `d` of any layout (its channel axis given), the energy's shape. With `keep` (bool,
    the energy's shape) the range is taken over the kept entries only, and W outside them is clamped
    to [w_min, w_max]."""
    e = (d ** 2).mean(dim=channel_dim, keepdim=True)
    flat = e.flatten(1)
    shape = (-1,) + (1,) * (e.ndim - 1)
    if keep is None:
        lo, hi = flat.min(1).values.view(shape), flat.max(1).values.view(shape)
    else:
        kept = keep.flatten(1)
        lo = flat.where(kept, torch.inf).min(1).values.view(shape)
        hi = flat.where(kept, -torch.inf).max(1).values.view(shape)
    w = w_max - (e - lo) / (hi - lo + 1e-8) * (w_max - w_min)
    return w if keep is None else w.clamp(w_min, w_max)


def samg(u: torch.Tensor, c: torch.Tensor, w_min: float, w_max: float, channel_dim: int = 1,
         keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(u + W d, W): the guided prediction and its scale field."""
    d = c - u
    w = samg_scale(d, w_min, w_max, channel_dim, keep)
    return u + w * d, w
