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

from ..lazy import lazy
from einops import rearrange

from .base import PER, SCALE_HELP, Guidance, param, reduce_dims, register
from .cfg import guided_line

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch


def principal_uncond(pred_uncond: torch.Tensor, pred_cond: torch.Tensor) -> torch.Tensor:
    """u' = <u, v1> v1 for rows (S, N): v1 the first right-singular vector of [c; u] per row.

    Through the 2 x 2 Gram matrix G = M M^T (M = [c; u]): with e its top eigenvector,
    v1 = M^T e / |M^T e|, the SVD's v1 up to sign (which u' does not depend on), for four
    inner products and one pass over the rows instead of an SVD of a 2 x N matrix.
    """
    cc, uu, cu = ((a * b).sum(-1) for a, b in ((pred_cond, pred_cond), (pred_uncond, pred_uncond),
                                              (pred_cond, pred_uncond)))
    gram = torch.stack([torch.stack([cc, cu], -1), torch.stack([cu, uu], -1)], -2).double()  # (S, 2, 2)
    _, vectors = torch.linalg.eigh(gram)  # ascending eigenvalues: the last column is the top one
    top = vectors[..., -1].float()  # (S, 2)
    v1 = top[:, :1] * pred_cond + top[:, 1:] * pred_uncond
    v1 = v1 / torch.linalg.vector_norm(v1, dim=-1, keepdim=True).clamp_min(1e-30)
    return (pred_uncond * v1).sum(-1, keepdim=True) * v1


@register("tcfg",
          "CFG from u projected on the predictions' shared principal direction (tangential CFG, Kwon et al. 2025)")
@dataclass
class TCFG(Guidance):
    scale: float = param(7.5, SCALE_HELP, lo=0.0, hi=100.0, step=0.05)
    per: str = param("clip", "what the principal direction is computed over: each frame or the whole clip",
                     choices=PER)

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
