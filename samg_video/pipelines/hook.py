"""Guidance enters a pipeline by wrapping its denoiser, never by editing its loop.

Batched CFG (one call on `[uncond, cond]`, most pipelines): a forward hook on the
denoiser splits the output into `(pred_uncond, pred_cond)`, computes the guided
prediction `g` with the method and returns `[g, g]`. The pipeline's own line
`u + w (c - u)` then yields `g + w (g - g) = g` exactly, whatever its `w`.

Two calls per step (cond, then uncond: Wan, HunyuanVideo's true CFG): the cond call
returns its output unchanged and the hook keeps a reference to it; on the uncond call
the hook computes `g`, writes it into the cond tensor the pipeline already holds, and
returns `g` as the uncond output, so again `g + w (g - g) = g`.

Either way the loop, the number of denoiser calls and everything else stay the
pipeline's own, except for perturbation guidance (STG, SLG, PAG, samg+stg): on the steps
where the method asks for it (`method.perturbation`), the hook makes one extra denoiser
call on the conditional input with the chosen blocks perturbed (pipelines.perturb) and
passes its prediction to the method; `extra_calls` counts them.

The guided prediction is computed with the pipeline's own arithmetic: in float32 where
the pipeline upcasts the denoiser output before its CFG line (CogVideoX, LTX-Video;
`Adapter.upcast`), else in the model's dtype, one rounded operation at a time
(`guidance.cfg.guided_line`). So SAMG with `w_min == w_max == w` gives the pipeline's
own CFG at `w` bit for bit, in float32, bfloat16 and float16. The run starts (and the
method's state is reset) when the pipeline calls `scheduler.set_timesteps`; the step
index counts guided steps since. Whether the pipeline really runs CFG is checked from
the inputs themselves: the two halves (or the two calls) of one step must see the same
latents.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..guidance import Guidance
from ..guidance.cfg import guided_line
from ..guidance.layout import field_layout, from_canonical, to_canonical
from ..guidance.run import GuidanceRun, stride_schedule
from ..guidance.skip import SkipPolicy
from .perturb import perturbed


@dataclass
class StepInfo:
    """What a step callback receives (tensors in the pipeline's own layout)."""

    step: int
    num_steps: int
    timestep: float
    sigma: float | None
    latents: torch.Tensor  # the denoiser's input for one half of the batch
    guided: torch.Tensor  # the guided prediction
    scale_field: torch.Tensor | None  # the method's field (SAMG), else None
    method: str
    layout: str = "BCFHW"  # layout of scale_field (packed-token pipelines report BCFHW)
    extra_calls: int = 0  # perturbed denoiser calls made for this step (0 or 1)
    expert: str = "transformer"  # the denoiser that ran this step (Wan 2.2 A14B: transformer or transformer_2)
    uncond: str = "compute"  # how the step got its unconditional prediction: compute, reuse or drop (guidance.skip);
    # "mixed" where the clips of a batch differ
    plans: tuple[str, ...] = ()  # each clip's plan


@dataclass(frozen=True)
class Adapter:
    """How one pipeline family runs CFG.

    denoisers: attributes holding denoiser modules (missing or None ones are skipped);
    layout: BCFHW, BFCHW, BFHWC, BCHW, or "tokens" (LTX: (B, F*H*W, C), sizes from the call's
    num_frames / height / width); calls: "batched" or "two" (cond first, then uncond);
    upcast: the pipeline casts the denoiser output to float32 before its CFG line; combine:
    "line" (its CFG is u + w (c - u): the hook returns [g, g]) or "delta" (it adds
    (w - 1)(c - u) to c beside terms of its own: the hook returns [u', c] with
    u' = c - (g - c) / (w - 1), so its CFG term becomes g - c and its other terms keep c);
    kept: frames the loop keeps as given (an image's), which then take no part in the field's
    statistics: "mask" where the denoiser's input ends in a channel that is 1 on them (Kandinsky
    5's `visual_cond_mask`, channels last), "first_frame" where the first latent frame is the
    image's (HunyuanVideo I2V's `token_replace`), None where every frame is generated;
    own_passes: the denoiser's keyword arguments that, when set, mark a call the pipeline makes for
    guidance terms of its own (left as it is); token_coords: the keyword argument that carries each
    packed token's (frame, row, column) where a call gives no grid sizes (layout "tokens").
    """

    denoisers: tuple[str, ...] = ("unet",)
    layout: str = "BCFHW"
    calls: str = "batched"
    upcast: bool = False
    combine: str = "line"
    kept: str | None = None
    own_passes: tuple[str, ...] = ()
    token_coords: str | None = None


def model_output_tensor(output: Any) -> torch.Tensor:
    """The prediction inside a denoiser's output (tuple, BaseOutput with .sample, or tensor)."""
    if torch.is_tensor(output):
        return output
    if isinstance(output, tuple):
        return output[0]
    return output.sample


def replace_output(output: Any, new: torch.Tensor) -> Any:
    if torch.is_tensor(output):
        return new
    if isinstance(output, tuple):
        return (new,) + tuple(output[1:])
    output.sample = new
    if isinstance(output, dict):
        output["sample"] = new
    return output


def noise_level(scheduler, step: int, timestep: float) -> float | None:
    """sigma of this step, or None where the scheduler does not define one.

    Schedulers with a `sigmas` table (Euler, flow matching with or without dynamic
    shifting, UniPC with flow sigmas, DPM-Solver): `sigmas[step]`; for flow matching
    that is the flow time t in [0, 1] (1 - the entry where the scheduler inverts its table,
    `invert_sigmas`, as Mochi's does: the level runs from noise to clip either way). Schedulers
    without one (DDIM, PNDM, CogVideoX's DDIM and DPM): the VP noise level sqrt((1 - abar_t) / abar_t) at this timestep,
    which is `inf` at a zero-terminal-SNR start (abar_T = 0, CogVideoX): a valid answer,
    "pure noise", not an error.
    """
    sigmas = getattr(scheduler, "sigmas", None)
    if torch.is_tensor(sigmas) and sigmas.ndim == 1 and len(sigmas) > step:
        if getattr(getattr(scheduler, "config", None), "invert_sigmas", False):  # Mochi: its table runs 0 -> 1
            return 1.0 - float(sigmas[step])
        return float(sigmas[step])
    abar = getattr(scheduler, "alphas_cumprod", None)
    if abar is None or math.isnan(timestep):
        return None
    a = float(abar[min(max(int(round(timestep)), 0), len(abar) - 1)])
    return math.inf if a <= 0 else math.sqrt((1 - a) / a)


def call_input(args, kwargs, names=("sample", "hidden_states")) -> torch.Tensor:
    for name in names:
        if name in kwargs:
            return kwargs[name]
    return args[0]


def call_timestep(args, kwargs) -> float:
    """The step's timestep: the largest of a per-sample or per-token timestep tensor (conditioning
    tokens carry smaller ones)."""
    t = kwargs.get("timestep", args[1] if len(args) > 1 else None)
    if t is None:
        return float("nan")
    return float(torch.as_tensor(t).max())


POSITIONAL = ("rotary", "freqs", "position")  # argument names of position tables, shared by every sample


def take_rows(value: Any, batch: int, index: list[int], frames: int = 1) -> Any:
    """A batched call argument's rows `index` (of `batch`): a tensor whose leading dim is the batch, or
    the batch times the call's `frames` with each sample's row repeated per frame ([uncond frames, cond
    frames], as AnimateDiff's U-Net takes its text states); inside dicts, lists and tuples too (SDXL's
    `added_cond_kwargs`); anything else as it is."""
    if torch.is_tensor(value) and value.ndim > 0:
        if value.shape[0] == batch:
            return value[index]
        if frames > 1 and value.shape[0] == batch * frames and torch.equal(value[0], value[1]):
            return value.reshape(batch, frames, *value.shape[1:])[index].reshape(-1, *value.shape[1:])
        return value
    if isinstance(value, dict):
        return type(value)((k, take_rows(v, batch, index, frames)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(take_rows(v, batch, index, frames) for v in value)
    return value


def rows_call(args, kwargs, batch: int, index: list[int], frames: int) -> tuple[tuple, dict]:
    """A call's arguments for its rows `index` (`take_rows` on each), position tables (arguments named
    after `POSITIONAL`) kept whole."""
    kept = {k: v if any(p in k for p in POSITIONAL) else take_rows(v, batch, index, frames) for k, v in kwargs.items()}
    return tuple(take_rows(a, batch, index, frames) for a in args), kept


def cond_call(args, kwargs, batch: int, frames: int) -> tuple[tuple, dict]:
    """A batched call's arguments for its conditional half."""
    return rows_call(args, kwargs, batch, list(range(batch // 2, batch)), frames)


def call_frames(sample: torch.Tensor, layout: str) -> int:
    """The frame count of a denoiser input in `layout` (1 for packed tokens and images)."""
    if layout == "tokens" or sample.ndim != len(layout) or "F" not in layout:
        return 1
    return sample.shape[layout.index("F")]


def generated_tokens(kwargs, pred: torch.Tensor) -> torch.Tensor | None:
    """Where a packed-token pipeline generates, from per-token timesteps (B, N): the tokens at the
    step's timestep, as opposed to conditioning tokens the loop keeps, whose timestep is scaled
    down (LTX-Video image-to-video: t (1 - mask), 0 on the first frame). None when every token is
    generated (one timestep per sample)."""
    t = kwargs.get("timestep")
    if not torch.is_tensor(t) or t.ndim != 2 or t.shape[1] != pred.shape[1]:
        return None
    t = t[-pred.shape[0]:]  # the conditional half of a batched call (both halves carry the same timesteps)
    generated = t >= t.amax(dim=1, keepdim=True)
    return None if bool(generated.all()) else generated


def generated_frames(kept: str, sample: torch.Tensor, pred: torch.Tensor, layout: str) -> torch.Tensor | None:
    """Where the pipeline generates (bool, the field's shape in `layout`), or None when it generates
    every frame. kept="mask": the mask channel that ends a channels-last denoiser input (B, F, H, W,
    C_in; 1 on frames the loop keeps); "first_frame": every frame but the first."""
    if kept == "mask":
        generated = sample[-pred.shape[0]:, ..., -1:] < 0.5
        return None if bool(generated.all()) else generated
    canonical = to_canonical(pred, layout)
    generated = torch.ones((canonical.shape[0], 1, *canonical.shape[2:]), dtype=torch.bool, device=pred.device)
    generated[:, :, 0] = False
    return from_canonical(generated, layout)


def tensor_version(x: torch.Tensor) -> int | None:
    """The tensor's in-place version counter; None for an inference-mode tensor, which keeps none
    (the timestep then tells a new step from this one's second call)."""
    try:
        return x._version
    except RuntimeError:
        return None


def call_grid(kwargs, tokens: int, coords_key: str | None = None) -> tuple[int, int, int]:
    """The latent (frames, height, width) of a packed-token call's `tokens` tokens: the call's
    num_frames / height / width, or, where the pipeline passes each token's coordinates instead
    (the argument `coords_key`, (B, 3, N); `Adapter.token_coords`), the distinct frame, row and column
    coordinates. A keyframe that pipeline appends after the grid (a condition away from frame 0)
    has coordinates of its own and so reads as one more frame at the end; tokens the loop keeps
    (a per-token timestep below the step's) take no part in the field's statistics
    (`generated_tokens`)."""
    if all(k in kwargs for k in ("num_frames", "height", "width")):
        return tuple(int(kwargs[k]) for k in ("num_frames", "height", "width"))
    coords = kwargs.get(coords_key) if coords_key else None
    if not torch.is_tensor(coords):
        raise ValueError("The transformer call gives neither num_frames / height / width nor token coordinates, so "
                         "the packed tokens have no latent grid for samg_video.")
    grid = tuple(int(torch.unique(coords[0, axis]).numel()) for axis in range(3))
    if math.prod(grid) != tokens:
        raise ValueError(f"The call's {tokens} tokens do not form a latent grid: their coordinates give {grid} "
                         "(conditions whose coordinates repeat the grid's); samg_video cannot place its field on "
                         "them, so use the pipeline's own CFG for this call.")
    return grid


def output_extras(output: Any) -> list:
    """The tensors a denoiser returns beside its prediction (LTX-2's audio prediction), else []."""
    if isinstance(output, tuple):
        return [x for x in output[1:] if torch.is_tensor(x)]
    return []


def with_tensors(output: Any, main: torch.Tensor, extras: list) -> Any:
    """A new output of `output`'s kind holding `main` as the prediction and `extras` in place of
    its other tensors (in order); `output` itself is left as it is."""
    if torch.is_tensor(output):
        return main
    if isinstance(output, tuple):
        rest = iter(extras)
        return (main,) + tuple(next(rest) if torch.is_tensor(x) else x for x in output[1:])
    return replace_output(copy.copy(output), main)


class RunStart:
    """A scheduler's `set_timesteps` that also tells the handle a run starts. It keeps the original's
    signature (pipelines inspect it for `timesteps` / `sigmas`), and a deep copy of the scheduler
    (LTX-2 copies its scheduler for the audio latents) gets the copy's own `set_timesteps` back,
    not a second announcer bound to this scheduler."""

    def __init__(self, announce, scheduler, original):
        functools.update_wrapper(self, original)
        self.announce, self.scheduler = announce, scheduler

    def __call__(self, *args, **kwargs):
        return self.announce(*args, **kwargs)

    def __deepcopy__(self, memo):
        copy = memo.get(id(self.scheduler))
        return type(copy).set_timesteps.__get__(copy) if copy is not None else self.__wrapped__


def total(name: str, doc: str) -> property:
    """A handle's count: the sum of `name` over its runs."""
    return property(lambda self: sum(getattr(r, name) for r in self.runs), doc=doc)


class Handle:
    """What every handle shares: it claims its pipeline, `.remove()` (or leaving the `with` block)
    undoes `_restore()` once and releases the claim; its counts are its runs' (`runs`)."""

    pipe = None
    active = False
    _hooks: tuple = ()
    calls = total("calls", "Denoiser calls the pipeline made (a skipped unconditional call is not made).")
    rows = total("rows", "Batch rows those calls computed (fewer where some clips' unconditional rows are left out).")
    extra_calls = total("extra_calls", "Perturbed calls made for perturbation guidance.")
    step = total("evaluations", "Guided evaluations in the current run.")

    @staticmethod
    def check_free(pipe) -> None:
        """Refuse a pipeline that a handle already guides."""
        held = getattr(pipe, "_samg_video_handle", None)
        if held is not None and held.active:
            raise ValueError(f"{type(pipe).__name__} is already guided by {held.method.name!r} (samg_video.apply); "
                             "remove that handle (or leave its `with` block) before applying another method.")

    def _claim(self, pipe) -> None:
        self.pipe, self.active = pipe, True
        pipe._samg_video_handle = self

    def _restore(self) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        """Restore the pipeline exactly (hooks dropped, anything replaced put back)."""
        if not self.active:
            return
        for hook in self._hooks:
            hook.remove()
        self._restore()
        self.active = False
        if getattr(self.pipe, "_samg_video_handle", None) is self:
            del self.pipe._samg_video_handle

    @staticmethod
    def _field(method: Guidance, layout: str) -> torch.Tensor | None:
        """The scale field of `method`'s last step in `layout`, or None (a method without one)."""
        field = method.last_field()
        return None if field is None else from_canonical(field, layout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class GuidanceHandle(Handle):
    """A method applied to a pipeline; `.remove()` (or leaving the `with` block) restores it.

    The clock, each clip's state and plan, the fields and the counts live in a `GuidanceRun` per
    method (experts that share a method share it); the hook hands it each call's timestep (its
    level on the scheduler's table) and predictions."""

    def __init__(self, pipe, method: Guidance, adapter: Adapter, callback: Callable[[StepInfo], None] | None,
                 experts: dict[str, Guidance] | None = None, skip: SkipPolicy | None = None):
        self.check_free(pipe)
        self.pipe, self.method, self.adapter, self.callback = pipe, method, adapter, callback
        self.skip = skip
        self._rows_now: int | None = None  # rows of the call in flight, where the skip wrapper changed them
        self._pending: tuple | None = None  # two-call mode: (cond output, its input, module, args, kwargs)
        self._perturbing = False
        self._scheduler = pipe.scheduler
        self._had_set_timesteps = "set_timesteps" in vars(self._scheduler)
        self._orig_set_timesteps = self._scheduler.set_timesteps
        # keep the signature visible: pipelines inspect it for `timesteps` / `sigmas` support
        self._scheduler.set_timesteps = RunStart(self._set_timesteps, self._scheduler, self._orig_set_timesteps)
        modules = {name: getattr(pipe, name, None) for name in adapter.denoisers}
        unknown = sorted(set(experts or {}) - {n for n, m in modules.items() if m is not None})
        if unknown:
            raise ValueError(f"{type(pipe).__name__} has no denoiser {unknown[0]!r}; its experts are "
                             f"{', '.join(n for n, m in modules.items() if m is not None)}.")
        # each expert (denoiser) guides with its own method and run; by default all share `method`
        by_method: dict[int, GuidanceRun] = {}
        self._runs: dict[int, GuidanceRun] = {}
        for name, m in modules.items():
            if m is not None:
                chosen = (experts or {}).get(name, method)
                self._runs[id(m)] = by_method.setdefault(id(chosen), GuidanceRun(chosen, skip))
        self._names = {id(m): name for name, m in modules.items() if m is not None}
        self._hooks = [m.register_forward_hook(self._after_forward, with_kwargs=True)
                       for m in modules.values() if m is not None]
        self._forwards = {}  # module id -> (module, its own forward attribute or None): the skip wrapper's undo
        if skip is not None:
            for m in modules.values():
                if m is not None:
                    own = vars(m).get("forward")
                    self._forwards[id(m)] = (m, own)
                    m.forward = functools.partial(self._skipping_forward, m, m.forward)
        self._claim(pipe)

    @property
    def runs(self) -> list[GuidanceRun]:
        """The distinct runs (one per method)."""
        return list({id(r): r for r in self._runs.values()}.values())

    @property
    def run(self) -> GuidanceRun:
        """The run of the pipeline's first denoiser."""
        return next(iter(self._runs.values()))

    def _set_timesteps(self, *args, **kwargs):
        self._orig_set_timesteps(*args, **kwargs)
        self._start()

    def _start(self) -> None:
        """A new run on the scheduler's table, at its order's stride (Heun and KDPM2 list each level of a
        step's second evaluation: `guidance.run.stride_schedule`)."""
        table = self._scheduler.timesteps
        table = table.float().cpu() if torch.is_tensor(table) else torch.as_tensor(table, dtype=torch.float64)
        order = int(getattr(self._scheduler, "order", 1) or 1)
        for run in self.runs:
            run.start(stride_schedule(table.tolist(), order), entries=table)
        self._pending = None

    def _begin(self, module, args, kwargs, batch: int) -> list[str]:
        """Open the evaluation of this call's timestep for `batch` clips in its run; each clip's plan."""
        run = self._runs[id(module)]
        if run.schedule is None:
            self._start()
        return run.begin(call_timestep(args, kwargs), batch)

    def _no_cfg_error(self) -> ValueError:
        return ValueError(
            f"{type(self.pipe).__name__} is not running classifier-free guidance (guidance_scale <= 1, or no "
            f"negative prompt for true CFG), so there is no unconditional prediction for {self.method.name!r}; "
            "call it with guidance_scale > 1 (true_cfg_scale > 1 and a negative_prompt for HunyuanVideo); "
            "the applied method sets the actual strength.")

    def _cfg_off(self) -> bool:
        """The pipeline says it is not running CFG (its own do_classifier_free_guidance flag, where it has one)."""
        flag = getattr(type(self.pipe), "do_classifier_free_guidance", None)
        return isinstance(flag, property) and not self.pipe.do_classifier_free_guidance

    def _pipelines_own(self, kwargs) -> bool:
        """A call the pipeline makes for guidance terms of its own (`Adapter.own_passes`)."""
        return any(bool(kwargs.get(k)) for k in self.adapter.own_passes)

    def _own_call(self, kwargs) -> bool:
        """A call that is not one of the step's CFG calls: our perturbed call, or the pipeline's own."""
        return self._perturbing or self._pipelines_own(kwargs)

    def _skipping_forward(self, module, forward, *args, **kwargs):
        """The denoiser's forward under a skip policy: a batched call runs on the unconditional rows of
        the clips whose plan computes them and every conditional row, and hands back [u, c] with the
        run's stand-ins for the other clips; a two-call pipeline's unconditional call runs on the
        computing clips' rows (or is not made). The forward hook then guides as on any step."""
        if self._own_call(kwargs) or self._cfg_off():
            return forward(*args, **kwargs)
        sample = call_input(args, kwargs)
        run = self._runs[id(module)]
        frames = call_frames(sample, self.adapter.layout)
        if self.adapter.calls == "two":
            if self._pending is None:  # the step's conditional call
                self._begin(module, args, kwargs, sample.shape[0])
                return forward(*args, **kwargs)
            rows = run.uncond_rows()
            if len(rows) == sample.shape[0]:
                return forward(*args, **kwargs)
            pred_cond, output = self._pending[0], self._pending[-1]
            computed = None
            if rows:
                rows_args, rows_kwargs = rows_call(args, kwargs, sample.shape[0], rows, frames)
                computed = forward(*rows_args, **rows_kwargs)
            self._rows_now = len(rows)
            grid = self._grid(kwargs, pred_cond)
            uncond = run.fill_uncond(None if computed is None else model_output_tensor(computed), pred_cond,
                                     self.adapter.layout, grid)
            extras = run.fill_extras([] if computed is None else output_extras(computed), output_extras(output))
            return with_tensors(output, uncond, extras)
        batch = sample.shape[0]
        if batch % 2 or not torch.equal(sample[:batch // 2], sample[batch // 2:]):
            return forward(*args, **kwargs)  # not CFG: the forward hook says so
        half = batch // 2
        self._begin(module, args, kwargs, half)
        rows = run.uncond_rows()
        if len(rows) == half:
            return forward(*args, **kwargs)
        index = [*rows, *range(half, batch)]
        rows_args, rows_kwargs = rows_call(args, kwargs, batch, index, frames)
        output = forward(*rows_args, **rows_kwargs)
        self._rows_now = len(index)
        pred = model_output_tensor(output)
        k = len(rows)
        pred_cond = pred[k:]
        uncond = run.fill_uncond(pred[:k] if k else None, pred_cond, self.adapter.layout, self._grid(kwargs, pred_cond))
        conds = [x[k:] for x in output_extras(output)]
        filled = run.fill_extras([x[:k] for x in output_extras(output)] if k else [], conds)
        return with_tensors(output, torch.cat([uncond, pred_cond]), [torch.cat([u, c]) for u, c in zip(filled, conds)])

    def _grid(self, kwargs, pred: torch.Tensor) -> tuple[int, int, int] | None:
        return call_grid(kwargs, pred.shape[1], self.adapter.token_coords) if self.adapter.layout == "tokens" else None

    def _after_forward(self, module, args, kwargs, output):
        if self._perturbing:  # our own extra call
            return output
        rows, self._rows_now = self._rows_now, None
        self._runs[id(module)].count(int(rows != 0), call_input(args, kwargs).shape[0] if rows is None else rows)
        if self._pipelines_own(kwargs):
            return output
        if self._cfg_off():  # before the latents check, which two equal prompts without CFG would pass
            raise self._no_cfg_error()
        if self.adapter.calls == "two":
            return self._two_call(module, args, kwargs, output)
        sample = call_input(args, kwargs)
        half = sample.shape[0] // 2
        if sample.shape[0] % 2 or not torch.equal(sample[:half], sample[half:]):
            raise self._no_cfg_error()
        pred = model_output_tensor(output)
        pred_uncond, pred_cond = pred.chunk(2)
        self._begin(module, args, kwargs, half)
        perturbed_pred = self._perturbed_prediction(module, args, kwargs, batch=sample.shape[0])
        extras = tuple(zip(*(x.chunk(2) for x in output_extras(output)))) or ((), ())
        guided = self._guide(module, pred_uncond, pred_cond, args, kwargs, sample[:half], perturbed_pred, extras)
        if self.adapter.combine == "delta":
            return replace_output(output, torch.cat([self._delta_uncond(pred_uncond, pred_cond, guided), pred_cond]))
        return replace_output(output, torch.cat([guided, guided]))

    def _delta_uncond(self, pred_uncond, pred_cond, guided):
        """The unconditional half that makes a delta pipeline's CFG term c + (w - 1)(c - u') equal
        `guided`: u' = c - (g - c) / (w - 1), w the pipeline's guidance_scale; its own u where g is its
        own CFG line (SAMG at w_min == w_max == w), so it stays the pipeline's output bit for bit."""
        w = float(self.pipe.guidance_scale)
        u, c = pred_uncond.to(guided.dtype), pred_cond.to(guided.dtype)  # float32 where the pipeline upcasts
        if torch.equal(guided, guided_line(u, c - u, w, guided.dtype)):
            return pred_uncond
        c = pred_cond.float()
        return (c - (guided.float() - c) / (w - 1)).to(pred_uncond.dtype)

    def _two_call(self, module, args, kwargs, output):
        sample = call_input(args, kwargs)
        if self._pending is None:  # the cond call: remember it, change nothing yet
            self._pending = (model_output_tensor(output), sample, tensor_version(sample), module, args, kwargs, output)
            return output
        pred_cond, cond_input, version, cond_module, cond_args, cond_kwargs, cond_output = self._pending
        self._pending = None
        # a cond call of the next step, not this one's uncond call: other latents, or the same tensor
        # stepped in place (Kandinsky 5's loop): a new version, or (an inference-mode tensor keeps no
        # version counter) another timestep
        if sample is not cond_input:
            stepped = not torch.equal(sample, cond_input)
        elif version is not None:
            stepped = tensor_version(sample) != version
        else:
            stepped = call_timestep(args, kwargs) != call_timestep(cond_args, cond_kwargs)
        if stepped:
            raise self._no_cfg_error()
        self._begin(module, args, kwargs, sample.shape[0])
        perturbed_pred = self._perturbed_prediction(cond_module, cond_args, cond_kwargs)
        extras = (output_extras(output), output_extras(cond_output))
        guided = self._guide(module, model_output_tensor(output), pred_cond, args, kwargs, sample, perturbed_pred,
                             extras)
        pred_cond.copy_(guided)  # the pipeline holds this tensor as its cond prediction
        return replace_output(output, guided)

    def _perturbed_prediction(self, module, args, kwargs, batch: int | None = None) -> torch.Tensor | None:
        """The conditional prediction with this step's perturbation (one extra call on the call's
        inputs, or on their conditional half of a batched call of `batch` rows), or None where the
        method needs none."""
        run = self._runs[id(module)]
        perturbation = run.method.perturbation(run.step, run.num_steps)
        if perturbation is None or run.all_drop():
            return None
        if batch is not None:
            args, kwargs = cond_call(args, kwargs, batch, call_frames(call_input(args, kwargs), self.adapter.layout))
        self._perturbing = True
        try:
            with perturbed(module, perturbation):
                output = module(*args, **kwargs)
        finally:
            self._perturbing = False
        run.extra_calls += 1
        return model_output_tensor(output)

    def _guide(self, module, pred_uncond, pred_cond, args, kwargs, latents, pred_perturbed=None, extras=((), ())):
        run = self._runs[id(module)]
        t = call_timestep(args, kwargs)
        step, num_steps = run.step, run.num_steps
        sigma = noise_level(self._scheduler, run.position, t)
        grid = self._grid(kwargs, pred_cond)
        dtype = torch.float32 if self.adapter.upcast else pred_uncond.dtype
        plans = tuple(run.now.plans)
        generated = None
        if self.adapter.layout == "tokens":
            generated = generated_tokens(kwargs, pred_cond)
        elif self.adapter.kept:
            generated = generated_frames(self.adapter.kept, call_input(args, kwargs), pred_cond, self.adapter.layout)
        guided = run.guide(pred_uncond, pred_cond, layout=self.adapter.layout, grid=grid, sigma=sigma, dtype=dtype,
                           pred_perturbed=pred_perturbed, generated=generated, extras=extras)
        if self.callback is not None:
            layout = field_layout(self.adapter.layout)
            uncond = plans[0] if len(set(plans)) == 1 else "mixed"
            self.callback(StepInfo(step, num_steps, t, sigma, latents, guided, run.field_in(self.adapter.layout),
                                   run.method.name, layout, int(pred_perturbed is not None), self._names[id(module)],
                                   uncond, plans))
        return guided

    def _restore(self) -> None:
        """The scheduler's own set_timesteps back, and each denoiser's own forward (the hooks are
        dropped by `remove`)."""
        for module, own in self._forwards.values():
            if own is None:
                vars(module).pop("forward", None)
            else:
                module.forward = own
        if self._had_set_timesteps:
            self._scheduler.set_timesteps = self._orig_set_timesteps
        else:
            del self._scheduler.set_timesteps


class GuiderHandle(Handle):
    """A method in a pipeline's `guider` slot (HunyuanVideo 1.5, which combines its predictions
    in its guider component rather than in its loop); `.remove()` puts the pipeline's own guider
    back. The denoiser is not wrapped: a pre-hook only counts its calls and keeps each call's
    input for `StepInfo.latents`."""

    def __init__(self, pipe, method: Guidance, layout: str, callback: Callable[[StepInfo], None] | None,
                 skip: SkipPolicy | None = None):
        from .guider import MethodGuider

        self.check_free(pipe)
        name = type(pipe).__name__
        original = pipe.guider
        if getattr(original, "num_conditions", 2) < 2:
            raise ValueError(f"{name} is not running classifier-free guidance: its guider ({type(original).__name__}) "
                             "makes no unconditional prediction (guidance scale 1, as guidance-distilled checkpoints "
                             f"ship), so there is none for {method.name!r}; use a checkpoint whose guider runs CFG.")
        if type(method).perturbation is not Guidance.perturbation:
            raise ValueError(f"{method.name!r} needs an extra perturbed denoiser call, which samg_video makes in a "
                             f"pipeline's loop, not in a guider slot; with {name} use diffusers' own "
                             "SkipLayerGuidance / PerturbedAttentionGuidance guiders, or a method without one.")
        self.pipe, self.method, self.layout, self.callback = pipe, method, layout, callback
        self.run = GuidanceRun(method, skip)
        self._latents: torch.Tensor | None = None
        self._original = original
        denoiser = pipe.transformer
        self._hooks = [denoiser.register_forward_pre_hook(self._before_forward, with_kwargs=True)]
        pipe.guider = MethodGuider(self.run, layout, self._on_step)
        self._claim(pipe)

    runs = property(lambda self: [self.run])

    def _before_forward(self, module, args, kwargs):
        self._latents = call_input(args, kwargs)
        self.run.count(1, self._latents.shape[0])

    def _on_step(self, step: int, num_steps: int, t: float, guided: torch.Tensor) -> None:
        if self.callback is not None:
            sigma = noise_level(self.pipe.scheduler, step, t)
            plans = tuple(self.run.now.plans)
            self.callback(StepInfo(step, num_steps, t, sigma, self._latents, guided, self.run.field_in(self.layout),
                                   self.method.name, field_layout(self.layout),
                                   uncond=plans[0] if len(set(plans)) == 1 else "mixed", plans=plans))

    def _restore(self) -> None:
        """The pipeline's own guider back (the pre-hook is dropped by `remove`)."""
        self.pipe.guider = self._original
