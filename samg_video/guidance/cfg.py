"""Classifier-free guidance (Ho & Salimans 2022): out = u + w (c - u).

`guided_line` is the one place where a scale (scalar or field) meets the delta. It
does the arithmetic the way the diffusers pipelines write their CFG line,
`u + w * (c - u)`: three separate operations (no fused multiply-add), each rounded to
`dtype`. Inputs are float32 (exact upcasts of the model's output); with `dtype` the
model's dtype (bfloat16, float16) every step is rounded as the native operation in
that dtype rounds it, so a constant field `w` gives the pipeline's own CFG bit for bit.
Where no pipeline line is to be matched (SAMG's field at unequal scales, float32) `fma=True`
makes it one multiply-add, rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lazy import lazy

from .base import SCALE_HELP, Guidance, param, register

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch


def round_to(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x rounded to `dtype` and held in x's dtype (identity when they agree)."""
    return x if dtype == x.dtype else x.to(dtype).to(x.dtype)


def guided_line(pred_uncond: torch.Tensor, delta: torch.Tensor, scale: float | torch.Tensor,
                dtype: torch.dtype | None = None, overwrite: bool = False, fma: bool = False) -> torch.Tensor:
    """u + w d with d = c - u given, each operation rounded to `dtype` (see module docstring).

    pred_uncond, delta: float32 (B, C, F, H, W); scale: a number or a field broadcastable to them.
    Returns float32 values representable in `dtype`. With `overwrite` the result is written
    over `delta` (the caller's own temporary): no latent-sized allocation, same values. With
    `fma` (float32 only) it is one `addcmul`, a single rounding of u + w d: one pass over the
    latents instead of two, for scale fields, where there is no pipeline line to match. `dtype`
    None: float32.
    """
    dtype = torch.float32 if dtype is None else dtype
    out = delta if overwrite else torch.empty_like(delta)
    if fma and dtype == out.dtype:
        return torch.addcmul(pred_uncond, delta, scale, out=out)
    torch.mul(round_to(delta, dtype), scale, out=out)
    if dtype != out.dtype:
        out.copy_(round_to(out, dtype))
    torch.add(pred_uncond, out, out=out)
    if dtype != out.dtype:
        out.copy_(round_to(out, dtype))
    return out


def cfg_combine(pred_uncond: torch.Tensor, pred_cond: torch.Tensor, scale: float | torch.Tensor,
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """u + w (c - u); `scale` is a scalar or a field broadcastable to the predictions (`dtype` None:
    float32)."""
    return guided_line(pred_uncond, pred_cond - pred_uncond, scale, dtype, overwrite=True)


@register("cfg", "classifier-free guidance, one scale everywhere (Ho & Salimans 2022)")
@dataclass
class CFG(Guidance):
    """Plain classifier-free guidance with one scalar scale."""

    scale: float = param(7.5, SCALE_HELP, lo=0.0, hi=100.0, step=0.05)

    def combine(self, pred_uncond, pred_cond, ctx, state):
        return cfg_combine(pred_uncond, pred_cond, self.scale, ctx.dtype), state
