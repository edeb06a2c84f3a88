"""Frequency-decoupled guidance (Sadat et al. 2025, arXiv 2506.19713).

Each frame of both predictions is split into a Laplacian pyramid of two levels (kornia's
`build_laplacian_pyramid`): a high-frequency band and a low-frequency residual. CFG runs
per level with its own scale, and the pyramid is collapsed again:

    out = R( [u_l + w_l s_l]_l ),   s_l = c_l - u_l,   w = (scale, scale_low)  (high, low)

with R the pyramid reconstruction (upsample-and-blur the residual, add the band). With a
`parallel_weight` p != 1 the shift keeps p times its component along c_l (per frame):
s_l = p s_par + s_perp. Equal scales and p = 1 give CFG up to rounding (R is exact).
The paper's defaults for SDXL are w_high = 10, w_low = 5: low-frequency guidance (colour,
layout) weaker than high-frequency guidance (detail). diffusers' FrequencyDecoupledGuidance
computes the same on images; on video samg-video applies it frame by frame. On frames
whose sides are not powers of two kornia pads them (reflecting, at the bottom and right),
and diffusers returns that padded size (e.g. 64 x 128 for a 60 x 104 latent); samg-video
crops the result back to the input's size. Frames with a side under 3 latent pixels (tiny
test models) use replicate borders, which kornia's default reflect padding cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lazy import lazy
from einops import rearrange

from .base import Guidance, param, register
from .cfg import round_to

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch


def split_parallel(v: torch.Tensor, onto: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(v_par, v_perp) of v (N, ...) with respect to `onto` per row, computed in float64."""
    dims = tuple(range(1, v.ndim))
    v64, unit = v.double(), torch.nn.functional.normalize(onto.double(), dim=dims)
    par = (v64 * unit).sum(dim=dims, keepdim=True) * unit
    return par.to(v.dtype), (v64 - par).to(v.dtype)


def frequency_guided(pred_uncond: torch.Tensor, pred_cond: torch.Tensor, scales: tuple[float, ...],
                     parallel_weight: float = 1.0) -> torch.Tensor:
    """FDG on frames (N, C, H, W): one scale per pyramid level, highest frequency first."""
    from kornia.geometry import pyrup
    from kornia.geometry.transform import build_laplacian_pyramid

    levels, (height, width) = len(scales), pred_cond.shape[-2:]
    border = "reflect" if min(height, width) >= 3 else "replicate"  # reflect padding needs 3 pixels a side
    pyr_c, pyr_u = (build_laplacian_pyramid(x, levels, border) for x in (pred_cond, pred_uncond))
    guided = []
    for w, c, u in zip(scales, pyr_c, pyr_u):
        shift = c - u
        if parallel_weight != 1:
            par, perp = split_parallel(shift, c)
            shift = parallel_weight * par + perp
        guided.append(u + w * shift)
    out = guided[-1]
    for band in reversed(guided[:-1]):
        out = pyrup(out, border) + band
    return out[..., :height, :width]  # kornia reflect-pads sides that are not powers of two at the end


@register("fdg",
          "CFG per Laplacian-pyramid level: one scale for high, one for low frequencies (Sadat et al. 2025)")
@dataclass
class FDG(Guidance):
    scale: float = param(10.0, "the scale of the high-frequency pyramid levels", lo=0.0, hi=100.0, step=0.05)
    scale_low: float = param(5.0, "the scale of the lowest-frequency level", lo=0.0, hi=100.0, step=0.05,
                             label="always")
    parallel_weight: float = param(1.0, "the weight of each level's delta part parallel to c (1: CFG per level)")

    def combine(self, pred_uncond, pred_cond, ctx, state):
        f = pred_cond.shape[2]
        u, c = (rearrange(x, "b c f h w -> (b f) c h w") for x in (pred_uncond, pred_cond))
        out = frequency_guided(u, c, (self.scale, self.scale_low), self.parallel_weight)
        return round_to(rearrange(out, "(b f) c h w -> b c f h w", f=f), ctx.dtype), state
