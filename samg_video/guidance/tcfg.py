"""Tangential CFG (Kwon et al. 2025, arXiv 2503.18137).

Per sample, stack the two predictions as the rows of M = [c; u] (2 x N, N = all other
elements) and take v1, the first right-singular vector of M (the direction both share most).
The unconditional prediction keeps only its component along v1,

    u' = <u, v1> v1,        out = u' + w (c - u')

which drops the part of u tangential to the shared direction. `per="frame"` does this for
each frame on its own (N = C*H*W), `per="clip"` once per clip (N = C*F*H*W; diffusers'
TangentialClassifierFreeGuidance on a video latent).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

from .base import Guidance, reduce_dims, register
from .cfg import guided_line


def principal_uncond(pred_uncond: torch.Tensor, pred_cond: torch.Tensor) -> torch.Tensor:
    """u' = <u, v1> v1 for rows (S, N): v1 the first right-singular vector of [c; u] per row."""
    preds = torch.stack([pred_cond, pred_uncond], dim=1)  # (S, 2, N)
    try:
        _, _, vh = torch.linalg.svd(preds, full_matrices=False)
    except torch.linalg.LinAlgError:  # non-finite predictions: return NaN for the caller's finiteness check
        return torch.full_like(pred_uncond, float("nan"))
    v1 = vh[:, :1]  # (S, 1, N)
    return torch.matmul(torch.matmul(pred_uncond[:, None], v1.transpose(-2, -1)), v1)[:, 0]


@register("tcfg", "CFG from u projected on the predictions' shared principal direction (tangential CFG, Kwon et al. 2025)")
@dataclass
class TCFG(Guidance):
    scale: float = 7.5
    per: str = "clip"

    def validate(self) -> None:
        reduce_dims(self.per)

    def combine(self, pred_uncond, pred_cond, ctx, state):
        pattern = "b c f h w -> b (c f h w)" if self.per == "clip" else "b c f h w -> (b f) (c h w)"
        u, c = (rearrange(x, pattern) for x in (pred_uncond, pred_cond))
        u_par = principal_uncond(u, c)
        sizes = dict(zip("bcfhw", pred_cond.shape))
        back = pattern.split(" -> ")[1] + " -> " + pattern.split(" -> ")[0]
        u_par = rearrange(u_par, back, **{k: sizes[k] for k in "cfhw"})
        return guided_line(u_par, pred_cond - u_par, self.scale, ctx.dtype, overwrite=True), state
