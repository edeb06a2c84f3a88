"""Spatial Adaptive Multi Guidance (SAMG), extended across frames and steps.

Li et al., "Delta Score Matters! Spatial Adaptive Multi Guidance in Diffusion
Models", arXiv 2604.26503. Per location of the canonical `B C F H W` latent:

    d    = pred_cond - pred_uncond                        (B, C, F, H, W)
    E    = mean_c d^2            (energy="mean_sq")      (B, 1, F, H, W)
         | sqrt(sum_c d^2)       (energy="l2")
    E_n  = clamp((E - q_lo) / (q_hi - q_lo + 1e-8), 0, 1)
           q_lo, q_hi: quantiles of E per sample ("clip": over F, H, W) or per frame
           ("frame": over H, W); quantiles (0, 1) is plain min-max
    E_s  = step-EMA( G_f * G_hw * E_n )     Gaussian along frames / space, EMA across steps
           (temporal_mode="motion": G_f follows the field's own optical flow, so a moving
           field is smoothed along its path instead of blurred across it;
           renormalize=True maps the smoothed field back to [0, 1] as E_n was, so smoothing
           changes the field's shape but not its range)
    W    = w_max - E_s (w_max - w_min)     high energy -> w_min, low energy -> w_max
    out  = pred_uncond + W d

The smoothing acts on E_n, before the affine map to W, so `w_min == w_max == w`
gives `W == w` exactly and SAMG reduces to CFG bit for bit. An all-zero delta has
E_n == 0 everywhere, hence W == w_max (finite) and out == pred_uncond.

Bound (optional, `bound = b >= 0`). The guided output departs from the conditional
prediction by `out - pred_cond = (W - 1) d`, so its RMS over channels at a location
is `(W - 1) rms_c(d)`. Requiring that departure to be at most `b` times the RMS of
pred_cond over the whole sample, `(W - 1) rms_c(d) <= b rms(pred_cond)`, gives the cap

    W <= 1 + b rms(pred_cond) / rms_c(d).

Where it binds, the extrapolation beyond the conditional prediction is shortened to
exactly that radius; elsewhere W is unchanged. Dividing by rms(pred_cond) makes `b`
independent of the prediction space (epsilon, v, flow velocity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..lazy import lazy

from . import fused
from .base import RUN_FRACTION, Guidance, StepContext, check_interval, in_interval, one_thread_on_cpu, param, register
from .cfg import guided_line
from .layout import from_canonical, to_canonical
from .smoothing import TEMPORAL_MODES, smooth_field

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch

EPS = 1e-8
MAX_SIGMA = 1000.0  # latent cells or frames; beyond it the Gaussian is flat over any latent
MAX_SCALE = 100.0  # a guidance scale beyond it leaves every model's range
PRESETS = {"video": {"temporal_sigma": 1.0}}  # named settings over the defaults: "video", the ComfyUI node's


def channel_sq_sum(delta: torch.Tensor) -> torch.Tensor:
    """sum_c d^2: (B, C, F, H, W) -> (B, 1, F, H, W).

    On the CPU, accumulated channel by channel into one field-sized buffer: no latent-sized
    temporary, so the reduction reads the delta once (run it on one thread, as `field_from`
    does: each step is a field-sized operation). Elsewhere (CUDA) one reduction
    (`linalg.vecdot`), where kernel launches cost more than a temporary.
    """
    if delta.device.type != "cpu":
        return torch.linalg.vecdot(delta, delta, dim=1).unsqueeze(1)
    first, *rest = delta.unbind(1)
    out = first.square()
    for channel in rest:
        out.addcmul_(channel, channel)
    return out.unsqueeze(1)


def energy_from_sq_sum(sq_sum: torch.Tensor, channels: int, kind: str) -> tuple[torch.Tensor, float]:
    """Guidance energy as (field, factor) with E = factor * field: mean_c d^2 = sum_c d^2 / C
    ("mean_sq": the sum itself and 1 / C, so the division folds into the normalisation), or
    sqrt(sum_c d^2) ("l2", factor 1)."""
    return (sq_sum, 1.0 / channels) if kind == "mean_sq" else (sq_sum.sqrt(), 1.0)


def energy_range(energy: torch.Tensor, domain: str, quantiles: tuple[float, float],
                 generated: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """(rows, q_lo, q_hi): the energy (B, 1, F, H, W) as rows, one per sample ("clip": over F, H, W)
    or per frame ("frame": over H, W), and each row's quantiles, (rows, 1) each (min and max for
    quantiles (0, 1)). With `generated` (bool, broadcastable to the energy) the quantiles are
    taken over the generated locations only; a row with none (a conditioning frame) gets
    q_lo = q_hi = 0, so its values stay finite and are not used by the pipeline."""
    b, _, f, h, w = energy.shape
    rows = energy.reshape(b, f * h * w) if domain == "clip" else energy.reshape(b * f, h * w)
    if generated is not None:
        return (rows, *masked_range(rows, generated.expand(energy.shape).reshape(rows.shape), quantiles))
    if tuple(quantiles) == (0.0, 1.0):  # (amin and amax: 20x faster than aminmax over a dim in torch 2.14)
        lo, hi = rows.amin(dim=1, keepdim=True), rows.amax(dim=1, keepdim=True)
    else:
        q = torch.tensor(quantiles, dtype=rows.dtype, device=rows.device)
        lo, hi = torch.quantile(rows, q, dim=1, keepdim=True).unbind(0)
    return rows, lo, hi


def masked_range(rows: torch.Tensor, keep: torch.Tensor, quantiles: tuple[float, float]) -> tuple[torch.Tensor, ...]:
    """(q_lo, q_hi), (rows, 1) each, of each row's entries where `keep` (rows x N, bool); 0 for empty rows."""
    q = torch.tensor(quantiles, dtype=rows.dtype, device=rows.device)
    lo, hi = torch.nanquantile(rows.masked_fill(~keep, math.nan), q, dim=1, keepdim=True).unbind(0)
    return lo.nan_to_num_(0.0), hi.nan_to_num_(0.0)


def affine_of_range(lo: torch.Tensor, hi: torch.Tensor, factor: float, low: float, high: float):
    """(offset, slope), (rows, 1) each, of the map E -> low + (high - low) (factor E - factor lo) /
    (factor hi - factor lo + 1e-8): the normalisation, then an affine map of [0, 1] to [low, high]."""
    lo, hi = lo * factor, hi * factor
    inv = (hi - lo + EPS).reciprocal_()
    return low - (high - low) * lo * inv, (high - low) * factor * inv


def map_range(rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, factor: float, low: float,
              high: float) -> torch.Tensor:
    """The rows (rows, N) normalised by their range and mapped to [low, high], clamped to it:
    `affine_of_range`'s map as two vectorised passes (one broadcast operand each: on the CPU
    faster than one `addcmul` with two, which takes torch's scalar loop) and a clamp."""
    offset, slope = affine_of_range(lo, hi, factor, low, high)
    return rows.mul(slope).add_(offset).clamp_(min(low, high), max(low, high))


def normalize_energy(energy: torch.Tensor, domain: str, quantiles: tuple[float, float],
                     factor: float = 1.0) -> torch.Tensor:
    """Map the energy E = factor * energy (B, 1, F, H, W) to [0, 1] per clip or per frame (module
    docstring): clamp((E - q_lo) / (q_hi - q_lo + 1e-8), 0, 1), as one affine pass over the field
    (coefficients from the row statistics) and a clamp."""
    rows, lo, hi = energy_range(energy, domain, quantiles)
    return map_range(rows, lo, hi, factor, 0.0, 1.0).reshape(energy.shape)


def ema_field(current: torch.Tensor, previous: torch.Tensor | None, decay: float) -> torch.Tensor:
    """Exponential moving average across steps: decay * previous + (1 - decay) * current."""
    if previous is None or decay == 0:
        return current
    if previous.shape != current.shape:
        raise ValueError(f"The scale field changed shape from {tuple(previous.shape)} to "
                         f"{tuple(current.shape)} between steps; call reset() before a new run.")
    return torch.lerp(current, previous, decay)


def bound_scale(scale: torch.Tensor, sq_sum: torch.Tensor, pred_cond: torch.Tensor, bound: float) -> torch.Tensor:
    """Cap W at 1 + bound * rms(pred_cond) / rms_c(d) (derivation in the module docstring).

    scale, sq_sum: (B, 1, F, H, W); pred_cond: (B, C, F, H, W). One reduction over the
    prediction, then in-place field ops (no latent-sized temporary).
    """
    b, c = pred_cond.shape[:2]
    cond_rms = (torch.linalg.vector_norm(pred_cond, dim=(1, 2, 3, 4)).view(b, 1, 1, 1, 1)
                / math.sqrt(pred_cond[0].numel()))
    cap = (sq_sum / c).sqrt_().add_(EPS).reciprocal_().mul_(bound * cond_rms).add_(1)
    return torch.minimum(scale, cap)


@dataclass
class SAMGState:
    """Carried between steps: the step-EMA of the normalised energy, and the last field."""

    ema: torch.Tensor | None = None
    scale_field: torch.Tensor | None = None
    spans: torch.Tensor | None = None  # q_hi - q_lo of the step's energy, per row (the finiteness check)


@register("samg",
          "spatial adaptive multi guidance: per-location scale from the delta's energy, high energy -> w_min")
@dataclass
class SAMG(Guidance):
    """Spatial Adaptive Multi Guidance; see the module docstring for the formula."""

    has_field: ClassVar[bool] = True

    w_min: float = param(5.0, "the scale where the guidance energy is highest (at most w_max)", lo=0.0,
                         hi=MAX_SCALE, step=0.05, ui=0)
    w_max: float = param(12.0, "the scale where the guidance energy is lowest", lo=0.0, hi=MAX_SCALE, step=0.05, ui=1)
    energy: str = param("mean_sq", "guidance energy per location: the mean of d^2 over channels, or its L2 norm",
                        choices=("mean_sq", "l2"))
    normalize: str = param("clip", "map the energy to [0, 1] over the whole clip or per frame",
                           choices=("clip", "frame"), ui=2)
    quantiles: tuple[float, float] = param((0.0, 1.0), "energy quantiles mapped to w_max and w_min (0, 1: the "
                                                       "minimum and maximum)", ui=8)
    temporal_sigma: float = param(0.0, "Gaussian smoothing of the field across frames (0: none)", lo=0.0,
                                  hi=MAX_SIGMA, unit="latent frames", step=0.05, ui=3)
    temporal_mode: str = param("fixed", "smooth at fixed positions or along the field's own motion",
                               choices=TEMPORAL_MODES, ui=4)
    renormalize: bool = param(False, "map the smoothed field back to the full [w_min, w_max] range", ui=6)
    spatial_sigma: float = param(0.0, "Gaussian smoothing of the field in space (0: none)", lo=0.0, hi=MAX_SIGMA,
                                 unit="latent cells", step=0.05, ui=5)
    step_ema: float = param(0.0, "weight of the previous step's field (0: none)", lo=0.0, hi=1.0, step=0.01, ui=7)
    bound: float | None = param(None, "cap on the guided update relative to the conditional prediction's size "
                                      "(none: no cap)", lo=0.0, step=0.1, ui=9)
    interval: tuple[float, float] = param((0.0, 1.0), "fraction of the steps where SAMG runs (outside: `outside`)",
                                          unit=RUN_FRACTION, ui=10)
    outside: str = param("cfg", "outside the interval: CFG at w_max, or no guidance", choices=("cfg", "none"))

    def validate(self) -> None:
        if self.w_min > self.w_max:
            raise ValueError(f"w_min ({self.w_min}) must not exceed w_max ({self.w_max}).")
        self.quantiles = check_interval("quantiles", self.quantiles)
        self.interval = check_interval("interval", self.interval)

    def initial_state(self) -> SAMGState:
        return SAMGState()

    def field_from(self, pred_uncond: torch.Tensor, pred_cond: torch.Tensor, delta: torch.Tensor,
                   previous_ema: torch.Tensor | None, generated: torch.Tensor | None = None,
                   ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(scale field W (B, 1, F, H, W), new EMA of E_s or None, energy spans q_hi - q_lo) for canonical
        float32 inputs. The spans are finite exactly when the energy is (the step's finiteness check).

        Without smoothing or step EMA, W = clamp(w_max - (w_max - w_min) (E - q_lo) / (q_hi - q_lo + eps),
        w_min, w_max) is one affine pass and a clamp over the field; otherwise E_n is formed, smoothed
        and averaged across steps, then mapped. On the CPU these field-sized operations run on one
        thread (`base.one_thread_on_cpu`).
        """
        with one_thread_on_cpu(delta.device):  # field-sized ops: a thread hand-off costs more than each
            sq_sum = channel_sq_sum(delta)
            energy, factor = energy_from_sq_sum(sq_sum, delta.shape[1], self.energy)
            rows, lo, hi = energy_range(energy, self.normalize, self.quantiles, generated)
            if not (self.spatial_sigma or self.temporal_sigma or self.step_ema):
                scale, e_s = map_range(rows, lo, hi, factor, self.w_max, self.w_min).reshape(energy.shape), None
            else:
                e_n = map_range(rows, lo, hi, factor, 0.0, 1.0).reshape(energy.shape)
                smoothed = smooth_field(e_n, self.spatial_sigma, self.temporal_sigma, self.temporal_mode)
                if self.renormalize and (self.spatial_sigma or self.temporal_sigma):
                    smoothed = normalize_energy(smoothed, self.normalize, (0.0, 1.0))
                e_s = ema_field(smoothed, previous_ema, self.step_ema)
                scale = torch.rsub(e_s, self.w_max, alpha=self.w_max - self.w_min)  # w_max - (w_max - w_min) E_s
            if self.bound is not None:
                scale = bound_scale(scale, sq_sum, pred_cond, self.bound)
            return scale, e_s, hi - lo

    def combine(self, pred_uncond, pred_cond, ctx: StepContext, state: SAMGState):
        if not in_interval(ctx.progress, self.interval):
            if self.outside == "none":
                return pred_cond.clone(), state
            return guided_line(pred_uncond, pred_cond - pred_uncond, self.w_max, ctx.dtype, overwrite=True), state
        if self.fusable(ctx):
            step = fused.run(pred_uncond, pred_cond, self.w_min, self.w_max, self.energy, self.normalize, self.bound)
            if step is not None:
                out, scale, spans = step
                return out, SAMGState(scale_field=scale, spans=spans)
        delta = pred_cond - pred_uncond
        scale, ema, spans = self.field_from(pred_uncond, pred_cond, delta, state.ema, ctx.generated)
        # written over d, our own temporary; one fused multiply-add where no pipeline line is matched
        out = guided_line(pred_uncond, delta, scale, ctx.dtype, overwrite=True, fma=self.w_min != self.w_max)
        return out, SAMGState(ema=ema, scale_field=scale, spans=spans)

    def fusable(self, ctx: StepContext) -> bool:
        """Whether this step may take the compiled path (guidance.fused): enabled, unequal scales, no
        smoothing, step EMA or quantiles, no `generated` mask, a float32 guided line."""
        return (fused.enabled() and self.w_min != self.w_max and ctx.dtype == torch.float32
                and ctx.generated is None and tuple(self.quantiles) == (0.0, 1.0)
                and not (self.spatial_sigma or self.temporal_sigma or self.step_ema))

    def values_to_check(self, out: torch.Tensor, state: SAMGState) -> torch.Tensor:
        """The energy spans of this step (one number per sample or frame): any NaN / Inf in either
        prediction reaches d and its energy, whose range is then not finite; d's energy is finite,
        so is every later value (outside the interval: the output itself)."""
        fresh = state.spans is not None and state is not self.state
        return state.spans if fresh else out

    def scale_field(self, pred_uncond: torch.Tensor, pred_cond: torch.Tensor, *,
                    layout: str = "BCFHW") -> torch.Tensor:
        """The field the next call would use (state is read, not changed), in `layout`.

        Shape: (B, 1, F, H, W) for BCFHW, (B, F, 1, H, W) for BFCHW, (B, F, H, W, 1) for BFHWC,
        (B, 1, H, W) for BCHW.
        """
        u = to_canonical(pred_uncond, layout).float()
        c = to_canonical(pred_cond, layout).float()
        scale, _, _ = self.field_from(u, c, c - u, self.state.ema)
        return from_canonical(scale, layout)
