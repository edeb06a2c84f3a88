"""Classifier-free guidance (Ho & Salimans 2022): out = u + w (c - u)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Guidance, register


def cfg_combine(pred_uncond: torch.Tensor, pred_cond: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """u + w (c - u); `scale` is a scalar or a field broadcastable to the predictions."""
    delta = pred_cond - pred_uncond
    if torch.is_tensor(scale):
        return torch.addcmul(pred_uncond, scale, delta)
    return torch.add(pred_uncond, delta, alpha=scale)


@register("cfg")
@dataclass
class CFG(Guidance):
    """Plain classifier-free guidance with one scalar scale."""

    scale: float = 7.5

    def combine(self, pred_uncond, pred_cond, ctx, state):
        return cfg_combine(pred_uncond, pred_cond, self.scale), state
