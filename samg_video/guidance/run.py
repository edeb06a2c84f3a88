"""One guidance run, driven the same way by every host (diffusers' hook, its guider slot, the
saveable guiders, ComfyUI's node): the clock, each clip's state, the skip protocol, the scale
fields of the run and the count of denoiser work. Hosts hand it the noise level and the
predictions and take the guided prediction back; they keep no clock, plan or method state.

Clock (k-diffusion's: the noise level is the only clock). A run has a schedule, the levels
l_0 > l_1 > ... > l_n at which a first-order sampler evaluates the model (ComfyUI's
`sample_sigmas`, a diffusers scheduler's timesteps at its order's stride, or the steps left
n - i of a host that knows only the step index). An evaluation at level l belongs to step

    i(l) = max { i < n : l_i >= l }        (l_i compared with a relative tolerance of 1e-4)

so an evaluation on the schedule is that step; one between two levels (the midpoint of
dpm_2, dpmpp_2s_ancestral, dpmpp_sde, a step of dpm_adaptive) belongs to the step it falls
in; the second evaluation of Heun at l_{i+1} belongs to step i + 1, like the first
evaluation of step i + 1 that follows it. Progress is i / n.

State, one rule for every sampler. What a step carries to the next (SAMG's step EMA, APG's
momentum, the skip policy's kept deltas) moves on once per step: every evaluation of step i
starts from the state the last evaluation of the step before left, and step i's last
evaluation is what the next step starts from. A step evaluated twice gives both evaluations
the same starting state, and the state that moves on is the last one (the one on the
sampler's path). A step's skip plan is decided at its first evaluation and holds for the
rest, so a policy never sees two deltas of one step (its step difference is never zero).
An evaluation at an earlier step than the one in flight (a rejected adaptive step, a restart)
drops what was computed from that step on and starts again from the state before it (the
last two steps' states are kept; further back, the run starts afresh); one at step 0 after a
later step is a new run.

Clips. Each sample of a batch is its own clip: its skip plan, kept deltas and signal are its
own (`skip.SkipPolicy` sees a batch of one), and every method's statistics are per sample, so
a clip's plan and pixels never depend on its batch companions. A host computes the
unconditional prediction for the clips whose plan is "compute" (`uncond_rows`) and the run
stands in for the others (`fill_uncond`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..lazy import lazy

from .base import Guidance
from .layout import field_layout, from_canonical, guide
from .skip import SkipPolicy, SkipState, from_canonical_any, to_canonical_any

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch

KEEP = 2  # committed steps kept for a roll-back (adaptive samplers step back by one at most)
TOLERANCE = 1e-4


def step_index(schedule: torch.Tensor, level: float) -> int:
    """i(l) of the module docstring: the last step i < n whose level l_i is at least `level` (up to the
    relative tolerance); 0 above l_0. `schedule`: float64 (n + 1,), descending."""
    n = len(schedule) - 1
    if math.isinf(level) or level >= float(schedule[0]):
        return 0
    slack = TOLERANCE * torch.maximum(schedule.abs(), torch.ones_like(schedule))
    above = int((schedule[:n] + slack[:n] >= level).sum())
    return min(max(above - 1, 0), n - 1)


def stride_schedule(levels: Sequence[float], order: int = 1) -> list[float]:
    """The first-order schedule of a table that repeats or interleaves levels for a solver of
    `order` (diffusers' Heun and KDPM2 tables: one entry per model evaluation): every `order`-th
    entry, a level repeated in a row once (PNDM's warm-up evaluates its second level twice, as
    Heun does), then an end level beyond the last."""
    strided = [float(v) for v in levels][::max(order, 1)]
    values = [v for i, v in enumerate(strided) if i == 0 or v != strided[i - 1]]  # PNDM repeats its second level
    if not values:
        return values
    span = values[0] - values[-1] or 1.0
    return values + [values[-1] - span]  # the end: beyond the last level, in the table's direction


@dataclass
class Step:
    """What a step carries and what it did: its index, the method's state, each clip's skip state and
    held extra deltas, each clip's plan, the field of its last evaluation."""

    index: int
    method_state: Any
    skip: list[SkipState]
    extras: list[list[torch.Tensor]]
    plans: list[str] = field(default_factory=list)
    signals: list[float | None] = field(default_factory=list)
    field: torch.Tensor | None = None


def check_unscheduled(method, policy) -> None:
    """Refuse, in one sentence, settings that count in fractions of the run (`progress_settings`) for a
    host that gives no schedule: their steps could not be placed, and would silently act elsewhere."""
    names = [*method.progress_settings(), *(policy.progress_settings() if policy is not None else ())]
    if names:
        many = len(names) > 1
        raise ValueError(f"{', '.join(names)} {'are' if many else 'is'} set as a fraction of the run, but this "
                         f"sampler gives no schedule, so the run's length is unknown; set {'them' if many else 'it'} "
                         "to the whole run (0-1), or use a sampler that gives its schedule.")


class GuidanceRun:
    """One method (and optional skip policy) over the runs of one host (module docstring).

    `start(schedule)` announces a run's levels; `begin(level, batch)` opens an evaluation and
    returns each clip's plan; `uncond_rows` / `fill_uncond` make the unconditional batch;
    `guide(...)` returns the guided prediction and closes the evaluation. `fields` (with
    `record_fields`), `plans`, `calls` and `rows` tell what the run did.
    """

    def __init__(self, method: Guidance, skip: SkipPolicy | None = None, record_fields: bool = False):
        self.method, self.policy, self.record_fields = method, skip, record_fields
        self.calls = 0  # denoiser calls (cumulative over runs)
        self.rows = 0  # batch rows those calls computed
        self.extra_calls = 0  # perturbed calls (perturbation guidance)
        self.schedule: torch.Tensor | None = None
        self.entries = torch.zeros(0, dtype=torch.float64)
        self._first = 0
        self._sign = 1.0
        self.counting = False  # the host's levels are not on the schedule: the k-th evaluation is step k
        self._evaluations = 0
        self.reset()

    def __deepcopy__(self, memo):  # hosts copy what holds the run (ComfyUI clones model_options): one run
        return self

    # --- the clock -------------------------------------------------------------------------------
    def start(self, schedule: Sequence[float] | torch.Tensor, entries: Sequence[float] | None = None) -> None:
        """A new run on `schedule` (descending levels l_0..l_n; module docstring). `entries`: the levels
        the host's evaluations take, one per evaluation where they repeat or interleave (a diffusers
        scheduler's table; default: the schedule's own)."""
        levels = torch.as_tensor(schedule, dtype=torch.float64).detach().cpu().reshape(-1)
        if len(levels) < 2:
            levels = torch.tensor([1.0, 0.0], dtype=torch.float64)
        table = levels if entries is None else torch.as_tensor(entries, dtype=torch.float64).detach().cpu().reshape(-1)
        self._sign = 1.0 if levels[0] >= levels[-1] else -1.0  # a table that rises (Mochi's) is read negated
        self.schedule, self.entries = levels * self._sign, table * self._sign
        self.counting, self._evaluations = False, 0
        self.reset()

    def follow(self, level: float) -> None:
        """A host that knows no schedule (a ComfyUI sampler outside `comfy.samplers`, which sets no
        `sample_sigmas`): the levels as they come are the schedule. A level below every level so far
        (by more than the tolerance) is the next step; one above the first, or at the first after later
        steps, opens a new run; any other belongs to the step `step_index` gives it (Heun's second
        evaluation, a midpoint). The run's length is unknown, so a method or skip policy that reads the
        run's progress (an interval short of the whole run, a skip plan's start and stop, a schedule
        over t / T) is refused (`check_unscheduled`)."""
        level = float(level)
        first = None if self.schedule is None else float(self.schedule[0])
        again = first is not None and level >= first * (1 - TOLERANCE) and self.now is not None and self.now.index > 0
        if first is None or self._sign < 0 or level > first * (1 + TOLERANCE) or again:
            check_unscheduled(self.method, self.policy)
            self.start([level, 0.0])
            return
        last = float(self.schedule[-2])
        if level < last - TOLERANCE * max(1.0, abs(last)) and level > 0:
            self.schedule = torch.cat([self.schedule[:-1], torch.tensor([level, 0.0], dtype=torch.float64)])
            self.entries = self.schedule.clone()

    @property
    def num_steps(self) -> int:
        return 1 if self.schedule is None else len(self.schedule) - 1

    def entry_of(self, level: float) -> int | None:
        """The first entry of the table equal to `level` (up to the relative tolerance), or None."""
        if not len(self.entries) or math.isnan(level):
            return None
        gaps = (self.entries - level).abs()
        best = int(gaps.argmin())
        return best if float(gaps[best]) <= TOLERANCE * max(1.0, abs(level)) else None

    def reset(self) -> None:
        """Forget every step: the method's state, each clip's skip state, fields and plans."""
        self.method.reset()
        self.history: list[Step] = []  # committed steps, oldest first (at most KEEP)
        self.now: Step | None = None  # the step in flight
        self.steps: dict[int, Step] = {}  # every step of this run, for fields and plans
        self.evaluations = 0  # guided evaluations of this run
        self.clip_rows: list[int] = []  # per clip: its conditional row and, where computed, its unconditional one
        self.position = 0  # the entry of the table the open evaluation sits at (its noise level's index)
        self._open = False
        self._level: float | None = None
        self._base: Step | None = None

    def step_at(self, level: float | None) -> int:
        """The step an evaluation at `level` belongs to. A host whose first level is no entry of its
        table (None, or a pipeline that hands its denoiser a rescaled timestep) is read in order: its
        k-th evaluation is at the k-th entry (from the first one found, where a truncated run starts)."""
        if self.schedule is None:
            return 0
        level = None if level is None else level * self._sign
        entry = None if level is None else self.entry_of(level)
        if self._evaluations == 0:
            self.counting = entry is None
            self._first = 0 if entry is None else entry
        if self.counting:
            self.position = min(self._first + self._evaluations, len(self.entries) - 1)
            return step_index(self.schedule, float(self.entries[self.position]))
        self.position = entry if entry is not None else self.position
        return step_index(self.schedule, level)

    # --- evaluations -----------------------------------------------------------------------------
    def begin(self, level: float | None, batch: int) -> list[str]:
        """Open an evaluation at `level` for `batch` clips (the same open evaluation when asked again at its
        level) and return each clip's plan: "compute", "reuse" (the unconditional prediction stood in by
        c - d^) or "drop" (unguided: c)."""
        if self._open and level == self._level and len(self.now.plans) == batch:
            return self.now.plans  # the same evaluation, asked again (a host's second hook)
        if self._open:  # abandoned (its host never guided it): the step in flight keeps what it had
            self._open = False
            if len(self.now.plans) != batch and not self.history:  # a first step asked before its batch was known
                self.steps.pop(self.now.index, None)
                self.now = None
        self._level = level
        index = self.step_at(level)
        self._evaluations += 1
        self._open = True
        if self.now is not None and index == self.now.index and len(self.now.plans) == batch:
            self._restore(self._base)  # another evaluation of the step in flight
            return self.now.plans
        if self.now is not None and index > self.now.index:
            self.history = [*self.history, self.now][-KEEP:]
        elif self.now is not None:  # back to an earlier step: a roll-back or a new run
            self.history = [s for s in self.history if s.index < index]
            if not self.history or index == 0:
                self.reset()
                self._open = True
            self.steps = {i: s for i, s in self.steps.items() if i < index}
        base = self.history[-1] if self.history else None
        if base is None or len(base.skip) != batch:
            base = Step(-1, self.method.initial_state(), [SkipState() for _ in range(batch)],
                        [[] for _ in range(batch)])
        self._base = base
        self._restore(base)
        plans = [self._plan(index, state) for state in base.skip]
        signals = [self._signal(index, state) for state in base.skip]
        self.now = Step(index, base.method_state, list(base.skip), list(base.extras), plans, signals)
        self.steps[index] = self.now
        return plans

    def _plan(self, index: int, state: SkipState) -> str:
        if self.policy is None:
            return "compute"
        return self.policy.plan(index, self.num_steps, self.policy.entered(index, self.num_steps, state))

    def _signal(self, index: int, state: SkipState) -> float | None:
        if self.policy is None:
            return None
        return self.policy.signal(index, self.num_steps, self.policy.entered(index, self.num_steps, state))

    def _restore(self, base: Step) -> None:
        self.method.state = base.method_state

    @property
    def step(self) -> int:
        """The index of the step in flight (0 before the first)."""
        return 0 if self.now is None else self.now.index

    def uncond_rows(self) -> list[int]:
        """The clips whose unconditional prediction the host computes at this evaluation."""
        return [b for b, p in enumerate(self.now.plans) if p == "compute"]

    def all_drop(self) -> bool:
        return all(p == "drop" for p in self.now.plans)

    def fill_uncond(self, computed: torch.Tensor | None, pred_cond: torch.Tensor, layout: str,
                    grid: tuple[int, int, int] | None = None) -> torch.Tensor:
        """The unconditional batch of this evaluation in `pred_cond`'s layout and dtype: `computed`
        (the rows of `uncond_rows()`, in order; None for none) and, for the other clips, c - d^
        ("reuse") or c ("drop")."""
        out = pred_cond.clone()
        rows = self.uncond_rows()
        if computed is not None and rows:
            out[rows] = computed.to(out.dtype)
        for b, plan in enumerate(self.now.plans):
            if plan == "reuse":
                c = to_canonical_any(pred_cond[b:b + 1], layout, grid).float()
                estimate = self.policy.estimate(self._entered(b), self.now.index)
                out[b:b + 1] = from_canonical_any(c - estimate, layout).to(out.dtype)
        return out

    def fill_extras(self, computed: list[torch.Tensor], conds: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each extra output's unconditional batch (LTX-2's audio): the computed rows, c_i - its held
        delta for a reused clip, c_i otherwise."""
        rows = self.uncond_rows()
        filled = []
        for i, c in enumerate(conds):
            out = c.clone()
            if rows and i < len(computed):
                out[rows] = computed[i].to(out.dtype)
            for b, plan in enumerate(self.now.plans):
                held = self._base.extras[b] if b < len(self._base.extras) else []
                if plan == "reuse" and i < len(held):
                    out[b:b + 1] = (c[b:b + 1].float() - held[i]).to(out.dtype)
            filled.append(out)
        return filled

    def _entered(self, b: int) -> SkipState:
        return self.policy.entered(self.now.index, self.num_steps, self._base.skip[b])

    def guide(self, pred_uncond: torch.Tensor, pred_cond: torch.Tensor, *, layout: str,
              grid: tuple[int, int, int] | None = None, sigma: float | None = None, dtype: torch.dtype | None = None,
              pred_perturbed: torch.Tensor | None = None, generated: torch.Tensor | None = None,
              extras: tuple[list, list] = ([], [])) -> torch.Tensor:
        """The guided prediction of the open evaluation (any layout, packed tokens on `grid`); closes
        it. `pred_uncond` holds every clip (`fill_uncond` made it where some were skipped); a clip
        whose plan is "drop" gets `pred_cond`. Each clip's skip state observes its own delta."""
        if not self._open:
            self.begin(None, pred_cond.shape[0])
        now, base = self.now, self._base
        self._restore(base)
        if self.all_drop():
            guided = pred_cond.clone()
        else:
            with torch.no_grad():  # a sampler that leaves autograd on (ComfyUI's ipndm) does not differentiate it
                guided = guide(self.method, pred_uncond, pred_cond, layout, grid, step=now.index,
                               num_steps=self.num_steps, sigma=sigma, dtype=dtype or pred_uncond.dtype,
                               pred_perturbed=pred_perturbed, generated=generated)
            drops = [b for b, p in enumerate(now.plans) if p == "drop"]
            if drops:
                guided[drops] = pred_cond[drops]
        now.method_state = self.method.state
        self.evaluations += 1
        if len(self.clip_rows) != len(now.plans):
            self.clip_rows = [0] * len(now.plans)
        for b, plan in enumerate(now.plans):
            self.clip_rows[b] += 1 + (plan == "compute")
        if self.policy is not None:
            now.skip, now.extras = self._observed(pred_uncond, pred_cond, layout, grid, extras)
        if self.record_fields and not self.all_drop():
            field = self.method.last_field()
            now.field = None if field is None else field.detach().float().cpu()
        self._open = False
        return guided

    def _observed(self, pred_uncond, pred_cond, layout, grid, extras) -> tuple[list[SkipState], list[list]]:
        """Each clip's skip state after this evaluation (a computed delta kept with its c's size)."""
        states, held = [], []
        u_extra, c_extra = extras
        for b, plan in enumerate(self.now.plans):
            state = self._entered(b)
            delta = None
            kept = self._base.extras[b] if b < len(self._base.extras) else []
            cond = None
            if plan == "compute" or self.policy.follows_cond:  # a canonical copy only where a policy reads it
                cond = to_canonical_any(pred_cond[b:b + 1], layout, grid).float()
            if plan == "compute":
                delta = cond - to_canonical_any(pred_uncond[b:b + 1], layout, grid).float()
                kept = [c[b:b + 1].float() - u[b:b + 1].float() for u, c in zip(u_extra, c_extra)]
            states.append(self.policy.observe(state, self.now.index, delta, plan, cond))
            held.append(kept)
        return states, held

    def field_in(self, layout: str) -> torch.Tensor | None:
        """The scale field of the last evaluation in the field layout of `layout`, or None (no field,
        or every clip dropped)."""
        field = None if self.now is None or self.all_drop() else self.method.last_field()
        return None if field is None else from_canonical(field, field_layout(layout))

    def count(self, calls: int = 1, rows: int = 0) -> None:
        """Denoiser work the host did: `calls` calls of `rows` batch rows in all."""
        self.calls += calls
        self.rows += rows

    # --- what the run did ------------------------------------------------------------------------
    @property
    def fields(self) -> list[torch.Tensor]:
        """The recorded field of each step of the current run, in step order (CPU, (B, 1, F, H, W))."""
        return [s.field for _, s in sorted(self.steps.items()) if s.field is not None]

    @property
    def plans(self) -> list[list[str]]:
        """Each step's plan per clip, in step order."""
        return [s.plans for _, s in sorted(self.steps.items())]

    def clip_plans(self, b: int) -> list[str]:
        """Clip b's plan at each step of the current run."""
        return [p[b] for p in self.plans if b < len(p)]

    def clip_work(self, b: int) -> tuple[int, int]:
        """(unconditional passes computed, guided evaluations) of clip b in the current run: its share of
        CFG's work is (evaluations + computed) / (2 evaluations)."""
        if b >= len(self.clip_rows):
            return 0, self.evaluations
        return self.clip_rows[b] - self.evaluations, self.evaluations

    def clip_signals(self, b: int) -> list[float | None]:
        """Clip b's skip signal at each step of the current run (`skip.SkipPolicy.signal`; None where the
        policy has none)."""
        return [s.signals[b] if b < len(s.signals) else None for _, s in sorted(self.steps.items())]

    def with_method(self, method: Guidance) -> "GuidanceRun":
        """This run guiding with another method object (ComfyUI's: made when the sampler's cfg is known);
        its steps are kept, the method's state starts afresh."""
        if method is not self.method:
            self.method = method
            method.reset()
            for step in [*self.history, *self.steps.values(), *([self._base] if self._base else [])]:
                step.method_state = method.initial_state()
        return self
