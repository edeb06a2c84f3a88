"""Steps without the unconditional pass: a policy, given to any method, that decides per step
whether the unconditional prediction is computed and what stands in for it when it is not.

Each step gets one of three plans, decided before the step's denoiser calls from the step
index and what earlier steps measured:

    "compute"  the unconditional prediction u is computed; its delta d = c - u is kept;
    "reuse"    it is not: u^ = c - d^, with d^ estimated from the kept deltas, and the method
               guides (u^, c) as usual (SAMG's field and smoothing act on d^);
    "drop"     it is not, and the step is not guided: the output is c.

Policies (the run's progress p = step / num_steps, as `in_interval` reads [start, stop)):

- `interval` (Kynkaenniemi et al. 2024): compute inside [start, stop), drop outside.
- `every` (FasterCache's CFG-Cache, Lv et al. 2024): inside [start, stop), compute every
  `n`-th step counted from the first step in range, reuse in between; outside, compute. The
  kept delta is reweighted per spatial frequency band,
      d^ = F^-1[ alpha_low L(F d) + alpha_high H(F d) ],
  F the 2-D FFT over (H, W) (centred), L / H the disc of radius min(H, W) // 5 around the
  centre and its complement (FasterCache's split); alpha_low = alpha_high = 1 is d^ = d.
- `adaptive`: compute while the guidance changes, reuse once it is predictable. After two
  computed steps j < k the delta's change per step, relative to the conditional prediction,
      r = ||d_k - d_j|| / (||c_k|| (k - j))       (norms over the clip: each clip keeps its own state),
  is the size of the error a reused delta makes per step before the scale multiplies it (a
  small delta or a steady one both keep it small; a late step whose delta turns over does
  not). The next step reuses when r <= threshold, at most `max_reuse` steps in a row (then it
  computes again and re-measures). `estimate="hold"`: d^ = d_k; `"linear"`: the affine
  extrapolation d^ = d_k + (s - k) (d_k - d_j) / (k - j) (an online LinearAG). It looks only
  back: between computed steps it learns nothing, so in practice it computes the first steps,
  then every (max_reuse + 1)-th.
- `error`: keep the predicted error of the held delta within `tolerance`, deciding at every step
  from what every step computes (the conditional prediction c always runs). With k the last
  computed step, r its delta's change per step (as above) and
      g_t = ||c_t - c_{t-1}|| / ||c_{t-1}||      (the conditional prediction's drift at step t),
  the error of holding d_k at step s is predicted as
      e_s = sum_{t = k+1..s} r max(1, g_{t-1} / g_k)
  (the delta's measured rate, raised where the conditional prediction starts to move faster than
  it did at step k: the guidance turning over late in a run). Step s reuses while e_s <= tolerance
  and computes otherwise (then e starts again from 0); the first two steps (a rate needs two
  deltas) and the last step (whose delta turns over: on the bundled model's traces it changes by
  0.27-0.41 of ||c|| in that one step, against 0.004-0.01 mid-run, and goes straight into the
  output) always compute. One knob: `tolerance`, the allowed error of the held delta relative
  to ||c|| (the guided output's error is about (scale - 1) times it).

`signal(step, num_steps, state)` is the number a policy decides on at a step (adaptive: r;
error: e_s; None for the fixed policies); the run records it per clip with the plan.

Policies compute in the canonical `B C F H W` layout, float32. State is explicit (`SkipState`,
one per clip: a policy sees a batch of one); `plan` is pure, `observe` returns the new state.
`guidance.run.GuidanceRun` runs a policy over a run in any prediction layout (packed tokens too):
the one piece the diffusers hook, the guider slots and the ComfyUI nodes share.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, fields
from typing import ClassVar

from ..lazy import lazy

from .base import check_field, check_interval, field_types, in_interval
from .layout import canonical_to_tokens, from_canonical, to_canonical, tokens_to_canonical
from .options import key_values, value

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch

PLANS = ("compute", "reuse", "drop")
NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
INTERVAL = re.compile(rf"^({NUMBER})-({NUMBER})$")  # interval:START-STOP, either bound signed
POLICIES: dict[str, type["SkipPolicy"]] = {}


def register_policy(cls):
    POLICIES[cls.name] = cls
    return cls


@dataclass
class SkipState:
    """What a run has kept: the last two computed deltas (canonical float32) and their steps, how
    many steps in a row reused the last one, and the first step inside the policy's range."""

    last: torch.Tensor | None = None
    last_size: torch.Tensor | None = None  # ||c||_b at the last computed step, (B,)
    last_step: int = -1
    prev: torch.Tensor | None = None
    prev_step: int = -1
    reused: int = 0
    first_in_range: int | None = None
    cond_prev: torch.Tensor | None = None  # c of the step before (policies that follow it: `error`)
    drift: float = 0.0  # g of the step before: ||c_t - c_{t-1}|| / ||c_{t-1}||
    drift_at_last: float = 0.0  # g at the last computed step
    error: float = 0.0  # the predicted error of the held delta so far (`error`)


@dataclass
class SkipPolicy:
    """Base: `start` / `stop` bound (as fractions of the run, [start, stop)) where the policy acts."""

    name: ClassVar[str] = "base"
    head: ClassVar[str | None] = None  # the parameter a spec writes right after the name
    follows_cond: ClassVar[bool] = False  # observes the conditional prediction on every step, not only computed ones
    start: float = 0.0
    stop: float = 1.0

    def __post_init__(self) -> None:
        for name, hint in field_types(type(self)).items():
            setattr(self, name, check_field(f"skip {name}", getattr(self, name), hint))
        self.start, self.stop = check_interval("skip start / stop", (self.start, self.stop))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError on a bad setting (one sentence naming it)."""

    def progress_settings(self) -> tuple[str, ...]:
        """The settings read against the run's progress (Guidance.progress_settings): start / stop where
        they do not span the whole run."""
        return ("skip start / stop",) if (self.start, self.stop) != (0.0, 1.0) else ()

    def in_range(self, step: int, num_steps: int) -> bool:
        return in_interval(step / num_steps, (self.start, self.stop))

    def plan(self, step: int, num_steps: int, state: SkipState) -> str:
        """'compute', 'reuse' or 'drop' for this step (module docstring); never 'reuse' without a
        kept delta."""
        raise NotImplementedError

    def entered(self, step: int, num_steps: int, state: SkipState) -> SkipState:
        """The state with the range's first step recorded (call once per step, before `plan`)."""
        if state.first_in_range is None and self.in_range(step, num_steps):
            return dataclasses.replace(state, first_in_range=step)
        return state

    def observe(self, state: SkipState, step: int, delta: torch.Tensor | None, plan: str,
                cond: torch.Tensor | None = None) -> SkipState:
        """The state after a step: a computed delta (canonical float32, `c - u`) is kept with the
        size of its conditional prediction `cond`; a reuse counts toward `reused`."""
        if plan == "reuse":
            return dataclasses.replace(state, reused=state.reused + 1)
        if plan == "drop" or delta is None:
            return dataclasses.replace(state, reused=0)
        size = None if cond is None else torch.linalg.vector_norm(cond.float(), dim=tuple(range(1, cond.ndim)))
        return dataclasses.replace(state, prev=state.last, prev_step=state.last_step, last=delta.detach(),
                                   last_size=size, last_step=step, reused=0)

    def estimate(self, state: SkipState, step: int) -> torch.Tensor:
        """d^ for a reused step (canonical float32)."""
        return state.last

    def signal(self, step: int, num_steps: int, state: SkipState) -> float | None:
        """The number this step's plan is decided on (module docstring), None for a fixed schedule."""
        return None

    def to_dict(self) -> dict:
        return {"policy": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}

    def label(self) -> str:
        """'every 3', 'adaptive 0.05 max_reuse=3', 'interval 0.2-0.8': the head, then each setting
        that differs from its default."""
        head = f"{self.start:g}-{self.stop:g}" if self.head is None else f"{getattr(self, self.head):g}"
        rest = [f"{f.name}={getattr(self, f.name):g}" if isinstance(getattr(self, f.name), float)
                else f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                if f.name != self.head and (self.head is not None or f.name not in ("start", "stop"))
                and getattr(self, f.name) != f.default]
        return " ".join([self.name, head, *rest])


@register_policy
@dataclass
class IntervalSkip(SkipPolicy):
    """Guidance only inside [start, stop): no unconditional pass outside it."""

    name: ClassVar[str] = "interval"

    def validate(self) -> None:
        if self.start == 0 and self.stop == 1:
            raise ValueError("skip interval 0-1 guides every step and skips nothing; give the guidance "
                             "interval, e.g. interval:0.2-0.8.")

    def progress_settings(self) -> tuple[str, ...]:
        return ("the skip interval",)

    def plan(self, step, num_steps, state):
        return "compute" if self.in_range(step, num_steps) else "drop"


def band_masks(height: int, width: int, device) -> torch.Tensor:
    """FasterCache's low-frequency disc in the centred 2-D spectrum: bool (H, W), radius
    min(H, W) // 5 around (H // 2, W // 2)."""
    y, x = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    radius = min(height, width) // 5
    return (x - width // 2) ** 2 + (y - height // 2) ** 2 <= radius ** 2


def reweight_bands(delta: torch.Tensor, alpha_low: float, alpha_high: float) -> torch.Tensor:
    """F^-1[alpha_low L(F d) + alpha_high H(F d)] over the last two dims; d itself when both are 1."""
    if alpha_low == 1 and alpha_high == 1:
        return delta
    spectrum = torch.fft.fftshift(torch.fft.fft2(delta), dim=(-2, -1))
    low = band_masks(*delta.shape[-2:], delta.device)
    weight = torch.where(low, torch.tensor(alpha_low, device=delta.device),
                         torch.tensor(alpha_high, device=delta.device))
    return torch.fft.ifft2(torch.fft.ifftshift(spectrum * weight, dim=(-2, -1))).real.to(delta.dtype)


@register_policy
@dataclass
class EverySkip(SkipPolicy):
    """Inside [start, stop): the unconditional pass every `n` steps, the kept delta in between."""

    name: ClassVar[str] = "every"
    head: ClassVar[str] = "n"
    n: int = 2
    alpha_low: float = 1.0
    alpha_high: float = 1.0

    def validate(self) -> None:
        if self.n < 2:
            raise ValueError(f"skip every n must be an integer >= 2 (n = 1 computes every step), got {self.n}.")
        for name in ("alpha_low", "alpha_high"):
            if not 0 <= getattr(self, name) <= 10:
                raise ValueError(f"skip {name} must be in [0, 10], got {getattr(self, name)}.")

    def plan(self, step, num_steps, state):
        if not self.in_range(step, num_steps) or state.last is None:
            return "compute"
        return "compute" if (step - state.first_in_range) % self.n == 0 else "reuse"

    def estimate(self, state, step):
        return reweight_bands(state.last, self.alpha_low, self.alpha_high)


def relative_change(last: torch.Tensor, prev: torch.Tensor, steps: int, size: torch.Tensor) -> float:
    """max over samples b of ||last - prev||_b / (size_b steps): the delta's change per step relative
    to `size` (B,), the conditional prediction's norm."""
    change = torch.linalg.vector_norm((last - prev).detach(), dim=tuple(range(1, last.ndim)))
    return float((change / size.detach().clamp_min(1e-12)).max()) / steps


@register_policy
@dataclass
class AdaptiveSkip(SkipPolicy):
    """Reuse the delta once its change per step, relative to the conditional prediction, is at most
    `threshold`."""

    name: ClassVar[str] = "adaptive"
    head: ClassVar[str] = "threshold"
    threshold: float = 0.01
    max_reuse: int = 2
    estimate_by: str = "hold"

    def validate(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"skip adaptive threshold must be in (0, 1] (a change per step relative to the "
                             f"conditional prediction), got {self.threshold}.")
        if self.max_reuse < 1:
            raise ValueError(f"skip max_reuse must be an integer >= 1, got {self.max_reuse}.")
        if self.estimate_by not in ("hold", "linear"):
            raise ValueError(f"skip estimate_by must be 'hold' or 'linear', got {self.estimate_by!r}.")

    def plan(self, step, num_steps, state):
        if not self.in_range(step, num_steps) or state.prev is None or state.reused >= self.max_reuse:
            return "compute"
        change = relative_change(state.last, state.prev, state.last_step - state.prev_step, state.last_size)
        return "reuse" if change <= self.threshold else "compute"

    def signal(self, step, num_steps, state):
        if state.prev is None:
            return None
        return relative_change(state.last, state.prev, state.last_step - state.prev_step, state.last_size)

    def estimate(self, state, step):
        if self.estimate_by == "hold" or state.prev is None:
            return state.last
        slope = (state.last - state.prev) / (state.last_step - state.prev_step)
        return state.last + (step - state.last_step) * slope


def drift(cond: torch.Tensor, before: torch.Tensor | None) -> float:
    """g = ||c - c_before|| / ||c_before||, 0 without a step before (norms over the clip)."""
    if before is None:
        return 0.0
    return float(torch.linalg.vector_norm(cond - before) / torch.linalg.vector_norm(before).clamp_min(1e-12))


@register_policy
@dataclass
class ErrorSkip(SkipPolicy):
    """Reuse the delta while the predicted error of holding it, accumulated since it was computed,
    is at most `tolerance` (module docstring); decided at every step."""

    name: ClassVar[str] = "error"
    head: ClassVar[str] = "tolerance"
    follows_cond: ClassVar[bool] = True
    tolerance: float = 0.1

    def validate(self) -> None:
        if not 0 < self.tolerance <= 10:
            raise ValueError(f"skip error tolerance must be in (0, 10] (an error relative to the conditional "
                             f"prediction), got {self.tolerance}.")

    def increment(self, state: SkipState) -> float:
        """r max(1, g_{s-1} / g_k): the predicted error one more step of holding adds."""
        rate = relative_change(state.last, state.prev, state.last_step - state.prev_step, state.last_size)
        turn = state.drift / state.drift_at_last if state.drift_at_last > 0 else 1.0
        return rate * max(1.0, turn)

    def signal(self, step, num_steps, state):
        return None if state.prev is None else state.error + self.increment(state)

    def plan(self, step, num_steps, state):
        if not self.in_range(step, num_steps) or state.prev is None or step >= num_steps - 1:
            return "compute"
        return "reuse" if self.signal(step, num_steps, state) <= self.tolerance else "compute"

    def observe(self, state, step, delta, plan, cond=None):
        new = super().observe(state, step, delta, plan, cond)
        if cond is None:
            return new
        cond = cond.detach().float()
        g = drift(cond, state.cond_prev)
        if plan == "reuse":
            return dataclasses.replace(new, cond_prev=cond, drift=g, error=state.error + self.increment(state))
        return dataclasses.replace(new, cond_prev=cond, drift=g, drift_at_last=g, error=0.0)


def create_policy(name: str, **params) -> SkipPolicy:
    """A policy by name; unknown names or settings are one sentence listing the valid ones."""
    if name not in POLICIES:
        raise ValueError(f"Unknown skip policy {name!r}; use one of {', '.join(POLICIES)} (or 'off').")
    known = [f.name for f in fields(POLICIES[name])]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"Unknown setting {unknown[0]!r} for skip policy {name!r}; its settings are: "
                         f"{', '.join(known)}.")
    return POLICIES[name](**params)


def parse_policy(spec) -> SkipPolicy | None:
    """A policy from what a user writes: None / 'off' / '' / False (no policy), a policy object, a dict
    ({"policy": name, ...}, as `to_dict` writes), or 'every:3', 'every:3,start=0.3,alpha_low=1.1',
    'adaptive:0.05,max_reuse=3,estimate_by=linear', 'interval:0.2-0.8'."""
    if spec is None or spec is False:  # YAML 1.1 reads a bare `off` as false
        return None
    if isinstance(spec, SkipPolicy):
        return spec
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("policy", None)
        if name is None:
            raise ValueError(f"A skip policy config needs a 'policy' key (one of {', '.join(POLICIES)}); "
                             f"got {sorted(spec)}.")
        return None if name == "off" else create_policy(name, **params)
    if not isinstance(spec, str):
        raise ValueError(f"skip must be a policy such as 'every:3', 'adaptive:0.01' or 'interval:0.2-0.8', or "
                         f"'off'; got {spec!r} ({type(spec).__name__}).")
    text = spec.strip().replace(" ", ":", 1) if ":" not in spec else spec.strip()
    name, _, rest = text.partition(":")
    if name in ("off", ""):
        if rest:
            raise ValueError(f"skip 'off' takes no settings, got {spec!r}.")
        return None
    if name not in POLICIES:
        raise ValueError(f"Unknown skip policy {name!r}; use one of {', '.join(POLICIES)} (or 'off').")
    cls = POLICIES[name]
    parts = [p.strip() for p in rest.replace(" ", ",").split(",") if p.strip()]
    params: dict = {}
    if parts and "=" not in parts[0]:
        head = parts.pop(0)
        if cls.head is None:
            bounds = INTERVAL.match(head)
            if bounds is None:
                raise ValueError(f"Write a skip interval as interval:START-STOP (fractions of the run, e.g. "
                                 f"interval:0.2-0.8), got {spec!r}.")
            params.update(start=value(bounds[1]), stop=value(bounds[2]))
        else:
            params[cls.head] = value(head)
    settings = key_values(parts, f"skip settings after the head in {spec!r}", "every:3,start=0.3")
    again = sorted(set(settings) & set(params))
    if again:
        raise ValueError(f"skip {again[0]} is given twice in {spec!r} (once as the head); write each setting once.")
    params.update(settings)
    return create_policy(name, **params)


def split(config: dict) -> tuple[dict, SkipPolicy | None]:
    """(the method config, its skip policy or None) of a run setting: a method config (`to_dict`) that
    may carry `skip` (a policy's `to_dict`, or a spec), as sweep items and reports hold them."""
    config = dict(config)
    return config, parse_policy(config.pop("skip", None))


def with_skip(config: dict, policy: SkipPolicy | None) -> dict:
    """A method config carrying `policy` (unchanged, without a `skip` key, when there is none)."""
    return dict(config) if policy is None else {**config, "skip": policy.to_dict()}


def work_ratio(plans: list[str]) -> float:
    """Denoiser work of a run relative to CFG's (2 passes a step): (2 computed + 1 otherwise) / 2n."""
    if not plans:
        return math.nan
    return sum(2 if p == "compute" else 1 for p in plans) / (2 * len(plans))


def to_canonical_any(x: torch.Tensor, layout: str, grid: tuple[int, int, int] | None) -> torch.Tensor:
    """`x` viewed in `B C F H W`: packed tokens on their grid, any other layout as `to_canonical`."""
    return tokens_to_canonical(x, grid) if layout == "tokens" else to_canonical(x, layout)


def from_canonical_any(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The inverse of `to_canonical_any`."""
    return canonical_to_tokens(x) if layout == "tokens" else from_canonical(x, layout)
