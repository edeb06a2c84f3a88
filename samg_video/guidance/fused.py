"""SAMG's plain step as one compiled function (`torch.compile`), off unless enabled.

    from samg_video import guidance
    guidance.fused.enable()          # process-wide, like torch.backends.cudnn.benchmark

The eager step makes two latent-sized parallel operations (c - u, then u + W d as one
multiply-add) and computes the field between them on one CPU thread (the energy channel by
channel, min and max, the affine map and clamp: about twenty small operations); on a GPU each
of those is a kernel launch. Compiled, the step is two passes over the predictions: one for
the energy and its range, one that forms W and `u + W d`. It computes the same formula as
`samg.SAMG.field_from` followed by the guided line, in float32; the compiler orders the
energy's sums its own way, so values agree with the eager path to float32 rounding, not bit
for bit.

The compiled step covers SAMG without smoothing, step EMA, quantiles other than (0, 1), a
`generated` mask or a guided line rounded to a lower dtype; any other configuration, equal
scales (where SAMG is CFG exactly, through the eager line) and every call while disabled take
the eager path. Compilation happens on the first call for a shape (seconds; it needs a C++
compiler on the CPU, Triton on CUDA); if it fails, a warning says so once and the eager path
is used from then on.
"""

from __future__ import annotations

import math
import warnings

from ..lazy import lazy

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch

EPS = 1e-8

_enabled = False
_compiled: dict = {}
_scalars: dict = {}
_broken: str | None = None


def enable(flag: bool = True) -> None:
    """Use the compiled step where it applies (module docstring); `enable(False)` turns it off."""
    global _enabled
    _enabled = bool(flag)


def enabled() -> bool:
    """Whether the compiled step is on and has not failed to compile."""
    return _enabled and _broken is None


def samg_step(u: torch.Tensor, c: torch.Tensor, w_min: torch.Tensor, w_max: torch.Tensor, energy: str, domain: str,
              bound: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(out, W, spans) for float32 canonical predictions u, c (B, C, F, H, W):

        d = c - u;  S = sum_c d^2;  E = S / C ("mean_sq") or sqrt(S) ("l2")
        q_lo, q_hi = min, max of E per sample ("clip") or per frame ("frame")
        W = clamp(w_max - (w_max - w_min) (E - q_lo) / (q_hi - q_lo + 1e-8), w_min, w_max)
        W = min(W, 1 + bound rms(c) / (sqrt(S / C) + 1e-8))      (with a bound)
        out = u + W d

    w_min, w_max, bound: 0-d float32 tensors on the predictions' device (as tensors, a new value
    is an input of the compiled graph, not a reason to compile again).
    W: (B, 1, F, H, W); spans = q_hi - q_lo, one per row (the step's finiteness check).
    """
    b, ch, f, h, w = u.shape
    d = c - u
    sq = (d * d).sum(dim=1, keepdim=True)
    e = sq * (1.0 / ch) if energy == "mean_sq" else sq.sqrt()
    rows = e.reshape(b, f * h * w) if domain == "clip" else e.reshape(b * f, h * w)
    lo, hi = rows.amin(dim=1, keepdim=True), rows.amax(dim=1, keepdim=True)
    scale = torch.minimum(torch.maximum(w_max - (w_max - w_min) * (rows - lo) / (hi - lo + EPS), w_min), w_max)
    scale = scale.reshape(e.shape)
    if bound is not None:
        cond_rms = c.square().sum(dim=(1, 2, 3, 4), keepdim=True).sqrt() / math.sqrt(ch * f * h * w)
        scale = torch.minimum(scale, 1 + bound * cond_rms / ((sq / ch).sqrt() + EPS))
    return u + scale * d, scale, hi - lo


def run(u: torch.Tensor, c: torch.Tensor, w_min: float, w_max: float, energy: str, domain: str,
        bound: float | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The compiled `samg_step`, or None when it is disabled or could not be compiled."""
    global _broken
    if not enabled():
        return None
    key = (energy, domain, bound is None)  # one compiled function per variant: its own recompile budget
    if key not in _compiled:
        _compiled[key] = torch.compile(samg_step, dynamic=None)

    def scalar(x: float) -> torch.Tensor:  # cached: a fresh CUDA scalar per step would be a host sync
        if (x, u.device) not in _scalars:
            _scalars[(x, u.device)] = torch.tensor(x, dtype=torch.float32, device=u.device)
        return _scalars[(x, u.device)]
    try:
        return _compiled[key](u, c, scalar(w_min), scalar(w_max), energy, domain,
                              None if bound is None else scalar(bound))
    except Exception as err:  # no C++ compiler, no Triton, an unsupported backend: fall back for good
        _broken = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        warnings.warn(f"The compiled SAMG step is unavailable ({_broken}); using the eager step.", stacklevel=3)
        return None
