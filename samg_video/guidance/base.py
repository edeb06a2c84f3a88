"""The guidance-method interface, its registry and input checks.

A method is a small dataclass of config fields plus an explicit `state` (reset with
`reset()`). Its math lives in `combine(pred_uncond, pred_cond, ctx, state) ->
(guided, state)`, which sees float32 tensors in the canonical `B C F H W` layout;
`__call__` does the checks, layout and dtype conversion around it.

Precision: scale fields and statistics are computed in float32; the final line
`u + W (c - u)` is rounded step by step to `ctx.dtype`, the dtype in which the
pipeline would do its own CFG (`cfg.guided_line`). That is the predictions' dtype
unless the caller says otherwise (CogVideoX and LTX upcast to float32 first). SAMG at
unequal scales in float32 forms it as one multiply-add (rounded once).
"""

from __future__ import annotations

import contextlib
import functools
import math
import types
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

from ..lazy import lazy

from .layout import check_layout, from_canonical, to_canonical

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch

REGISTRY: dict[str, type["Guidance"]] = {}


def register(name: str, summary: str):
    """Class decorator: make a method available as `create(name, ...)`; `summary` is its line
    in `samg-video methods`."""

    def deco(cls):
        cls.name = name
        cls.summary = summary
        REGISTRY[name] = cls
        return cls

    return deco


@dataclass(frozen=True)
class StepContext:
    """Where in the run a call happens: step index (0-based), run length, noise level (may be
    inf at a zero-SNR start), the dtype whose rounding the guided line follows, and, for
    methods with a perturbation (`Guidance.perturbation`), the perturbed conditional
    prediction (canonical float32, else None), and where the pipeline generates (`generated`, bool
    (B, 1, F, H, W), None for everywhere): the latents it keeps as given (an image-to-video
    model's conditioning frame) take no part in a field's statistics."""

    step: int
    num_steps: int
    sigma: float | None = None
    dtype: torch.dtype = field(default_factory=lambda: torch.float32)
    perturbed: torch.Tensor | None = None
    generated: torch.Tensor | None = None

    @property
    def progress(self) -> float:
        """Fraction of the run done before this step, in [0, 1)."""
        return self.step / self.num_steps


@dataclass(frozen=True)
class Perturbation:
    """What one extra denoiser call per step changes (perturbation guidance, guidance.perturbed).

    layers: indices into the denoiser's stack of blocks (a transformer's `transformer_blocks` /
    `blocks`, found by name unless `fqn` names it; the bundled U-Net's `skippable_blocks`), or
    None for the middle block; mode: "block" skips each block whole (its output is its input),
    "attention" makes each block's self-attention the identity map (every token keeps its value).
    """

    layers: tuple[int, ...] | None
    mode: str = "block"
    fqn: str = "auto"


PER = ("frame", "clip")  # what a per-frame or per-clip statistic reduces over (`reduce_dims`)
PER_HELP = "what its norms and inner products reduce over: each frame (C, H, W) or the whole clip (C, F, H, W)"
SCALE_HELP = "the guidance scale w of u + w (c - u) (1: the conditional prediction)"
INTERVAL_HELP = "(start, end): the fraction of the run's steps [start, end) where it acts"
RUN_FRACTION = "fraction of the run"  # the unit of a setting read against the run's progress (step / num_steps)
WHOLE_RUN = (0.0, 1.0)


def reduce_dims(per: str) -> tuple[int, ...]:
    """Canonical dims reduced for a per-frame ("frame": C, H, W) or per-clip ("clip": C, F, H, W) statistic."""
    if per not in ("frame", "clip"):
        raise ValueError(f"Unknown reduction {per!r}; use 'frame' or 'clip'.")
    return (1, 3, 4) if per == "frame" else (1, 2, 3, 4)


def check_pair(pred_uncond: torch.Tensor, pred_cond: torch.Tensor, layout: str) -> None:
    """Shape, dtype and device agreement of the two predictions, and the layout's rank."""
    check_layout(layout)
    if pred_uncond.shape != pred_cond.shape:
        raise ValueError(f"pred_uncond has shape {tuple(pred_uncond.shape)} but pred_cond has "
                         f"{tuple(pred_cond.shape)}; pass the two halves of the same batch.")
    if pred_uncond.dtype != pred_cond.dtype:
        raise ValueError(f"pred_uncond is {pred_uncond.dtype} but pred_cond is {pred_cond.dtype}; "
                         "cast both to one dtype.")
    if pred_uncond.device != pred_cond.device:
        raise ValueError(f"pred_uncond is on {pred_uncond.device} but pred_cond on {pred_cond.device}; "
                         "move both to one device.")
    if not pred_uncond.is_floating_point():
        raise ValueError(f"Predictions must be floating point, got {pred_uncond.dtype}.")
    if pred_uncond.shape[0] == 0:
        raise ValueError("The predictions hold no samples (batch size 0); pass at least one.")


def check_step(step: int, num_steps: int) -> None:
    if num_steps < 1 or not 0 <= step < num_steps:
        raise ValueError(f"step={step} is outside the run of num_steps={num_steps}; "
                         "pass 0 <= step < num_steps.")


def check_finite(out: torch.Tensor, pred_uncond: torch.Tensor, pred_cond: torch.Tensor, step: int,
                 pred_perturbed: torch.Tensor | None = None) -> None:
    """Raise if the guided output is not finite, naming the prediction at fault.

    One reduction over `out` (a non-finite input always makes the output non-finite);
    the per-input checks run only on the error path.
    """
    if torch.isfinite(out.sum()):
        return
    for name, x in (("pred_uncond", pred_uncond), ("pred_cond", pred_cond), ("pred_perturbed", pred_perturbed)):
        if x is not None and not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or Inf at step {step}; the model diverged there "
                             "(try float32 or a lower guidance scale).")
    raise ValueError(f"Guidance overflowed to NaN or Inf at step {step}; lower the guidance scale.")


@contextlib.contextmanager
def one_thread_on_cpu(device: torch.device):
    """Run the enclosed torch ops on one intra-op thread when `device` is the CPU.

    For a scale field's ops: each touches a field of 1 / C of a latent, and an OpenMP parallel
    region costs a thread hand-off (every thread joins each region, and one that the OS has
    descheduled holds the rest at its barrier), which on a machine whose other cores are busy
    costs more than the op itself. The latent-sized ops around them (the delta, the guided line)
    keep every thread. The setting is the calling thread's own (OpenMP's and MKL's per-thread
    thread counts), restored on exit, also on an exception. Elementwise ops give the same bits
    on any number of threads, and float sums (the bound's RMS) do not depend on the
    machine's thread count. No-op on other devices, under torch.compile, or on one thread.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1 or torch.compiler.is_compiling():
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_range(name: str, value: float, lo: float = 0.0, hi: float = math.inf) -> None:
    if not lo <= value <= hi:
        bounds = f">= {lo}" if hi == math.inf else f"<= {hi}" if lo == -math.inf else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {bounds}, got {value}.")


def check_interval(name: str, interval) -> tuple[float, float]:
    lo, hi = (float(v) for v in interval)
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"{name} must be (start, end) with 0 <= start < end <= 1, got {tuple(interval)}.")
    return lo, hi


def in_interval(progress: float, interval: tuple[float, float]) -> bool:
    """Whether the run fraction `progress` lies in [start, end) (end == 1 includes the last step)."""
    lo, hi = interval
    return lo <= progress < hi or (hi >= 1 and progress >= lo)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _optional(hint) -> tuple[Any, bool]:
    """(the type inside `X | None`, True) or (hint, False)."""
    args = get_args(hint)
    if get_origin(hint) in (Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return hint, False


def check_field(name: str, value: Any, hint: Any) -> Any:
    """`value` checked against a config field's type hint (float, int, bool, str, tuple[float, float],
    tuple[int, ...], each optionally `| None`); numbers must be finite (a pair may hold inf, never
    NaN). Returns the value in the field's type; raises ValueError naming the field."""
    hint, optional = _optional(hint)
    if value is None and optional:
        return None
    if hint in (float, int):
        if not _is_number(value) or (hint is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{name} must be a{'n integer' if hint is int else ' number'}, "
                             f"got {value!r} ({type(value).__name__}).")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}.")
        return hint(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}.")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be text, got {value!r}.")
        return value
    if get_origin(hint) is tuple and get_args(hint)[-1] is Ellipsis:
        if not isinstance(value, (list, tuple)) or not value or not all(_is_number(v) and float(v).is_integer()
                                                                          and v >= 0 for v in value):
            raise ValueError(f"{name} must be a list of block indices (integers >= 0), got {value!r}.")
        return tuple(int(v) for v in value)
    if get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_number(v) for v in value) \
                or any(math.isnan(v) for v in value):
            raise ValueError(f"{name} must be a pair of numbers [start, end], got {value!r}.")
        return tuple(float(v) for v in value)
    return value


def param(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
          choices: tuple | None = None, unit: str = "", step: float | None = None, ui: int | None = None,
          **metadata) -> Any:
    """A method parameter, declared once: its default, range [lo, hi], choices, unit, help, the step a
    UI moves it by and its place among a UI's widgets (`ui`; None: not shown). The method's checks,
    the command line's flags and help, ComfyUI's inputs and their queue-time check, the guiders'
    configs and `samg-video methods` read it (`parameters`)."""
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "choices": choices, "unit": unit,
                                            "step": step, "ui": ui, **metadata})


@dataclass(frozen=True)
class Param:
    """One declared parameter of a method (`param`): name, type hint, default and the rest."""

    name: str
    hint: Any
    default: Any
    help: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    unit: str = ""
    step: float | None = None
    ui: int | None = None

    @property
    def kind(self) -> Any:
        """The type inside `X | None`."""
        return _optional(self.hint)[0]

    def describe(self) -> str:
        """'w_min = 5 (>= 0): the scale where ...': what `samg-video methods` and the help show."""
        if self.choices:
            bounds = " | ".join(map(str, self.choices))
        elif self.lo is not None or self.hi is not None:
            bounds = (f"{self.lo:g}..{self.hi:g}" if self.lo is not None and self.hi is not None
                      else f">= {self.lo:g}" if self.lo is not None else f"<= {self.hi:g}")
        else:
            bounds = ""
        inside = " ".join(part for part in (bounds, self.unit) if part)
        shown = f"{self.name} = {_plain(self.default)}" + (f" ({inside})" if inside else "")
        return f"{shown}: {self.help}" if self.help else shown


@functools.lru_cache(maxsize=None)
def parameters(cls: type) -> tuple[Param, ...]:
    """The declared parameters of a method (or skip policy) class, in field order."""
    hints = field_types(cls)
    out = []
    for f in fields(cls):
        meta = {k: f.metadata[k] for k in ("help", "lo", "hi", "choices", "unit", "step", "ui") if k in f.metadata}
        default = f.default if f.default is not MISSING else None
        out.append(Param(f.name, hints[f.name], default, **meta))
    return tuple(out)


def widgets(cls: type) -> tuple[str, ...]:
    """The parameters a UI shows, in their order (`param(..., ui=position)`; saved workflows keep widget
    values by position, so a parameter's place never changes)."""
    return tuple(p.name for p in sorted((p for p in parameters(cls) if p.ui is not None), key=lambda p: p.ui))


def check_declared(owner: str, value: Any, p: Param) -> None:
    """`value` against its declaration's range and choices (after `check_field`): one sentence naming it."""
    if value is None:
        return
    if p.choices and value not in p.choices:
        raise ValueError(f"{owner}{p.name} must be one of {', '.join(map(repr, p.choices))}, got {value!r}.")
    if _is_number(value):
        check_range(f"{owner}{p.name}", value, -math.inf if p.lo is None else p.lo, math.inf if p.hi is None else p.hi)


@functools.lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """{field name: type hint} of a method dataclass (annotations evaluated once per class)."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class Guidance:
    """Base class; subclasses are dataclasses whose fields are the full config."""

    name: ClassVar[str] = "base"
    summary: ClassVar[str] = ""
    has_field: ClassVar[bool] = False  # whether the method makes a per-location scale field (StepInfo.scale_field)

    def __post_init__(self) -> None:
        for p in parameters(type(self)):
            setattr(self, p.name, check_field(p.name, getattr(self, p.name), p.hint))
            check_declared("", getattr(self, p.name), p)
        self.validate()
        self.reset()

    def validate(self) -> None:
        """Raise ValueError on a bad config (one sentence, naming the field)."""

    def initial_state(self) -> Any:
        return None

    def reset(self) -> None:
        """Start a new run: forget all state carried between steps."""
        self.state = self.initial_state()

    @classmethod
    def denoiser_calls(cls) -> int:
        """Denoiser calls per guided step at most: 2 (cond, uncond), 3 with a perturbed call."""
        return 3 if cls.perturbation is not Guidance.perturbation else 2

    def progress_settings(self) -> tuple[str, ...]:
        """The settings this config reads against the run's progress (step / num_steps): its parameters
        declared in RUN_FRACTION, where they do not span the whole run. A host that cannot say how long
        the run is (no schedule) refuses a method with any (`GuidanceRun.follow`)."""
        return tuple(p.name for p in parameters(type(self))
                     if p.unit == RUN_FRACTION and tuple(getattr(self, p.name)) != WHOLE_RUN)

    def perturbation(self, step: int, num_steps: int) -> "Perturbation | None":
        """What the extra denoiser call of this step must perturb, or None when the step needs
        no perturbed prediction (every method without one; see guidance.perturbed)."""
        return None

    def combine(self, pred_uncond: torch.Tensor, pred_cond: torch.Tensor, ctx: StepContext,
                state: Any) -> tuple[torch.Tensor, Any]:
        """Guided prediction on float32 `B C F H W` tensors; returns (guided, new state)."""
        raise NotImplementedError

    def __call__(self, pred_uncond: torch.Tensor, pred_cond: torch.Tensor, *, step: int, num_steps: int,
                 layout: str = "BCFHW", sigma: float | None = None, dtype: torch.dtype | None = None,
                 pred_perturbed: torch.Tensor | None = None, generated: torch.Tensor | None = None) -> torch.Tensor:
        """Guided prediction, same shape and device as the inputs, in `dtype` (default: theirs).

        `dtype` is also the precision of the guided line (module docstring): pass float32 to
        combine bfloat16 predictions the way an upcasting pipeline does. `pred_perturbed`: the
        conditional prediction with the blocks of `self.perturbation(step, num_steps)` perturbed
        (methods that need one; `samg_video.apply` makes the extra call itself). `generated`: a
        bool mask broadcastable to the predictions' single-channel field in `layout`, True where
        the pipeline generates (None: everywhere); SAMG normalises its energy there only.
        """
        check_pair(pred_uncond, pred_cond, layout)
        check_step(step, num_steps)
        perturbed = None
        if self.perturbation(step, num_steps) is not None:
            if pred_perturbed is None:
                raise ValueError(f"{self.name!r} needs the perturbed conditional prediction at step {step}: pass "
                                 "pred_perturbed=..., or let samg_video.apply make the extra denoiser call.")
            check_pair(pred_perturbed, pred_cond, layout)
            perturbed = to_canonical(pred_perturbed, layout).float()
        dtype = dtype or pred_uncond.dtype
        u = to_canonical(pred_uncond, layout).float()
        c = to_canonical(pred_cond, layout).float()
        mask = None if generated is None else to_canonical(generated, layout).bool()
        out, state = self.combine(u, c, StepContext(step, num_steps, sigma, dtype, perturbed, mask), self.state)
        check_finite(self.values_to_check(out, state), pred_uncond, pred_cond, step,
                     pred_perturbed if perturbed is not None else None)
        if dtype == torch.float16 and out.abs().amax() > torch.finfo(dtype).max:  # bf16 shares float32's range
            raise ValueError(f"The guided prediction at step {step} exceeds the range of {dtype} "
                             f"(max {torch.finfo(dtype).max:g}) and would overflow to Inf; lower the guidance scale "
                             "or run in float32 / bfloat16.")
        self.state = state
        return from_canonical(out, layout).to(dtype)

    def last_field(self) -> torch.Tensor | None:
        """The scale field of the last step (canonical (B, 1, F, H, W)), or None: a method without a
        field, or no step yet."""
        return getattr(self.state, "scale_field", None) if self.has_field else None

    def values_to_check(self, out: torch.Tensor, state: Any) -> torch.Tensor:
        """The tensor checked for NaN / Inf after a step: non-finite whenever an input was
        (default: the output itself; SAMG checks its smaller scale field)."""
        return out

    def to_dict(self) -> dict:
        """The full config, with `method` naming the class; `from_dict` inverts it."""
        return {"method": self.name, **{f.name: _plain(getattr(self, f.name)) for f in fields(self)}}
