"""samg-video methods as diffusers guiders (`BaseGuidance`), for modular pipelines and pipelines
with a `guider` component (HunyuanVideo 1.5).

`samg_video.apply(pipe, method)` on a pipeline with a `guider` puts a `MethodGuider` (any
method, not saved with the pipeline) in that slot and reports every step to its callback;
`SAMGGuider` below is the saveable, config-registered guider for SAMG alone.

The guider is a thin config shell around `samg_video.guidance.SAMG`: the math, the
checks and the state live there. The diffusers guider API announces every step with
`set_state(step, num_inference_steps, timestep)`; step 0 is the start of a run, where
the SAMG state (the step EMA) is reset.

    from samg_video.pipelines import SAMGGuider
    guider = SAMGGuider(w_min=5, w_max=12, temporal_sigma=1.0, layout="BCFHW")
    pipe.update_components(guider=guider)          # modular pipelines
    guider.save_pretrained("my_guider"); SAMGGuider.from_pretrained("my_guider")

Packed-token pipelines (modular LTX-Video) hand the guider predictions of shape
(B, N, C), tokens in (frame, row, column) order. With `layout="tokens"` the field is
computed per token (channel energy, normalised over all N tokens of a sample), which
needs no grid; smoothing and per-frame normalisation need the latent grid, given as
`token_grid=(F, H, W)` (LTX-Video: ((num_frames - 1) // 8 + 1, height // 32, width // 32)).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import MISSING, fields
from pathlib import Path

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.guiders.guider_utils import BaseGuidance, GuiderOutput

from ..guidance import SAMG
from ..guidance.base import field_types
from ..guidance.layout import LAYOUTS as TENSOR_LAYOUTS
from ..guidance.run import GuidanceRun
from ..guidance.skip import parse_policy
from ..modelconfig import read_config

# SAMG's parameters, from its dataclass (its own interval is the guider's start / stop) ...
SAMG_PARAMETERS = {f.name: f.default for f in fields(SAMG) if f.name not in ("interval", "outside")}
# ... then the guider's own
GUIDER_PARAMETERS = {"layout": "BCFHW", "token_grid": None, "start": 0.0, "stop": 1.0, "enabled": True, "skip": None}
LAYOUTS = (*TENSOR_LAYOUTS, "tokens")


def _signature() -> inspect.Signature:
    """`SAMGGuider.__init__`'s signature, derived from the SAMG dataclass (what diffusers' config reads)."""
    hints = field_types(SAMG)
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                                 annotation=hints[name]) for name, default in SAMG_PARAMETERS.items()]
    params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
               for name, default in GUIDER_PARAMETERS.items()]
    return inspect.Signature(params)


MAX_GRID = 1 << 16  # latent frames, rows or columns of a token grid


def guider_fields(layout, token_grid, start, stop, enabled) -> tuple[str, tuple[int, int, int] | None]:
    """The guider's own fields checked one by one (a config edited by hand or loaded with
    `from_pretrained` too): (layout, token_grid as a tuple or None); one sentence naming the field."""
    from ..guidance.base import check_field, check_interval

    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(f"layout must be {', '.join(LAYOUTS[:-1])} or {LAYOUTS[-1]}, got {layout!r}.")
    check_interval("start / stop", (check_field("start", start, float), check_field("stop", stop, float)))
    check_field("enabled", enabled, bool)
    if token_grid is None:
        return layout, None
    if not isinstance(token_grid, (list, tuple)) or len(token_grid) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_GRID for v in token_grid):
        raise ValueError(f"token_grid must be three integers (F, H, W), each 1 to {MAX_GRID}, got {token_grid!r}.")
    return layout, tuple(token_grid)


_WARNED = []  # diffusers' "Guiders are experimental" notice, once per process rather than once per guider


def base_init(guider: BaseGuidance, start: float, stop: float, enabled: bool) -> None:
    """BaseGuidance.__init__, its experimental-API notice shown by the first guider of the process only."""
    from diffusers.guiders import guider_utils

    logger = guider_utils.logger
    level = logger.level
    if _WARNED:
        logger.setLevel(logging.ERROR)
    try:
        BaseGuidance.__init__(guider, start, stop, enabled)
    finally:
        logger.setLevel(level)
        if not _WARNED:
            _WARNED.append(True)


def _init(self, *args, **kwargs):
    """SAMG's parameters (see `samg_video.guidance.SAMG`), then layout, token_grid, start, stop, enabled, skip."""
    bound = _signature().bind(self, *args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    values.pop("self")
    guider = {k: values.pop(k) for k in GUIDER_PARAMETERS}
    layout, token_grid = guider_fields(guider["layout"], guider["token_grid"], guider["start"], guider["stop"],
                                       guider["enabled"])
    base_init(self, guider["start"], guider["stop"], guider["enabled"])
    needs_grid = values["spatial_sigma"] > 0 or values["temporal_sigma"] > 0 or values["normalize"] == "frame"
    if layout == "tokens" and token_grid is None and needs_grid:
        raise ValueError("layout='tokens' with smoothing or normalize='frame' needs token_grid=(F, H, W), the "
                         "latent frames, height and width (LTX-Video: ((num_frames - 1) // 8 + 1, height // 32, "
                         "width // 32)).")
    self.layout, self.token_grid = layout, token_grid
    self.run = GuidanceRun(SAMG(**values), parse_policy(guider["skip"]))


_init.__signature__ = _signature()
assert all(default is not MISSING for default in SAMG_PARAMETERS.values())


def in_start_stop(guider: BaseGuidance) -> bool:
    """Whether the guider's current step lies in [int(start n), int(stop n)) of its n steps (every step
    before it is told the run's length), as diffusers' guiders read start / stop."""
    n = guider._num_inference_steps
    return n is None or int(guider._start * n) <= (guider._step or 0) < int(guider._stop * n)


class TwoPredictionGuider(BaseGuidance):
    """A guider that asks the pipeline for the conditional and the unconditional prediction
    (while it guides and some clip's plan computes the unconditional one) and combines them with
    its `GuidanceRun` (`samg_video.guidance.run`: the clock, each clip's state and skip plan). A
    guider knows the step index i of n only: its run's levels are the steps left, n - i."""

    _input_predictions = ["pred_cond", "pred_uncond"]
    run: GuidanceRun
    layout: str = "BCFHW"
    token_grid: tuple[int, int, int] | None = None
    _batch = 1

    @classmethod
    def load_config(cls, pretrained_model_name_or_path, *args, **kwargs):
        """diffusers' config reading, after a local guider_config.json is read as data (`modelconfig`:
        at most 1 MiB, valid JSON of sane numbers) and found to be a mapping: an edited file is one
        sentence naming it, never a 50 MB echo or a raw parser error."""
        folder = Path(str(pretrained_model_name_or_path))
        file = folder / (kwargs.get("subfolder") or "") / cls.config_name if folder.is_dir() else folder
        if file.is_file() and not isinstance(read_config(file), dict):
            raise ValueError(f"{file} does not hold a guider's settings (a JSON object of its parameters).")
        return super().load_config(pretrained_model_name_or_path, *args, **kwargs)

    @property
    def method(self):
        """The guidance method the run guides with."""
        return self.run.method

    def prepare_inputs(self, data):
        indices = [0] if self.num_conditions == 1 else [0, 1]
        return [self._prepare_batch(data, i, name) for i, name in zip(indices, self._input_predictions)]

    def prepare_inputs_from_block_state(self, data, input_fields):
        indices = [0] if self.num_conditions == 1 else [0, 1]
        return [self._prepare_batch_from_block_state(input_fields, data, i, name)
                for i, name in zip(indices, self._input_predictions)]

    @property
    def is_conditional(self) -> bool:
        return self._count_prepared == 1

    @property
    def num_conditions(self) -> int:
        return 2 if self._is_enabled_now() else 1

    def _guiding(self) -> bool:
        return self._enabled

    def _level(self) -> float:
        """The step's level on the run's schedule: the steps left, n - i."""
        n = self._num_inference_steps or 1
        return float(n - min(self._step or 0, n - 1))

    def set_state(self, step: int, num_inference_steps: int, timestep) -> None:
        super().set_state(step, num_inference_steps, timestep)
        n = num_inference_steps or 1
        if step == 0 or self.run.schedule is None or self.run.num_steps != n:
            self.run.start(list(range(n, -1, -1)))
        if self._guiding():
            self.run.begin(self._level(), self._batch)  # the plans, with the batch of the last step

    def _is_enabled_now(self) -> bool:
        if not self._guiding():
            return False
        return self.run.now is None or "compute" in self.run.now.plans  # set_state opened this step's plans

    def _grid(self, pred: torch.Tensor) -> tuple[int, int, int] | None:
        if self.layout != "tokens":
            return None
        if pred.ndim != 3:
            raise ValueError(f"layout='tokens' expects predictions (B, N, C), got shape {tuple(pred.shape)}.")
        return self.token_grid or (1, 1, pred.shape[1])

    def guided(self, pred_cond: torch.Tensor, pred_uncond: torch.Tensor | None, sigma: float | None = None):
        """The run's guided prediction of this step: the unconditional rows the pipeline computed (all
        clips' or none), the run's stand-in for each clip whose plan skips them."""
        self._batch = pred_cond.shape[0]
        self.run.begin(self._level(), self._batch)  # the same evaluation; again where the batch was new
        grid = self._grid(pred_cond)
        rows = self.run.uncond_rows()
        if pred_uncond is None or len(rows) < self._batch:
            pred_uncond = self.run.fill_uncond(None if pred_uncond is None or not rows else pred_uncond[rows],
                                               pred_cond, self.layout, grid)
        return self.run.guide(pred_uncond, pred_cond, layout=self.layout, grid=grid, sigma=sigma,
                              dtype=pred_uncond.dtype)

    def forward(self, pred_cond: torch.Tensor, pred_uncond: torch.Tensor | None = None) -> GuiderOutput:
        if not self._guiding():
            return GuiderOutput(pred=pred_cond, pred_cond=pred_cond, pred_uncond=pred_uncond)
        return GuiderOutput(pred=self.guided(pred_cond, pred_uncond), pred_cond=pred_cond, pred_uncond=pred_uncond)


class SAMGGuider(TwoPredictionGuider):
    """Spatial Adaptive Multi Guidance for diffusers' guider API (start / stop: fractions of the run).

    Its parameters are SAMG's (`samg_video.guidance.SAMG`, minus `interval` / `outside`, which
    start / stop replace), then `layout`, `token_grid`, `start`, `stop`, `enabled`, `skip` (a skip
    policy, as `GuidanceGuider` takes).
    """

    __init__ = register_to_config(_init)

    def _guiding(self) -> bool:
        return self._enabled and in_start_stop(self)


class GuidanceGuider(TwoPredictionGuider):
    """Any samg-video method as a config-registered diffusers guider: `save_pretrained` /
    `from_pretrained` round trip, `pipe.guider = ...` or `update_components(guider=...)` on a
    modular pipeline.

    method: a registered name (`samg_video.guidance.available()`); params: its parameters;
    guidance_scale: diffusers' name for a method's single `scale` (CFG-type methods; a SAMG
    range is `params={"w_min": ..., "w_max": ...}`); skip: a skip policy ('every:3',
    'adaptive:0.01', 'interval:0-0.6', or its dict): on a step where no clip computes the
    unconditional pass the guider asks the pipeline for the conditional prediction only and stands
    in `c - d` for the unconditional one (`samg_video.guidance.skip`); layout / token_grid as
    `SAMGGuider`; start / stop / enabled as diffusers' guiders.

        GuidanceGuider(method="apg", guidance_scale=7.5, params={"eta": 0.5}).save_pretrained("g")
        GuidanceGuider(method="samg", params={"w_min": 3, "w_max": 9}, skip="every:3")
    """

    @register_to_config
    def __init__(self, method: str = "samg", params: dict | None = None, guidance_scale: float | None = None,
                 skip=None, layout: str = "BCFHW", token_grid=None, start: float = 0.0, stop: float = 1.0,
                 enabled: bool = True):
        from ..guidance import available, create
        from ..guidance.base import Guidance
        from ..guidance.spec import head_keys

        layout, token_grid = guider_fields(layout, token_grid, start, stop, enabled)
        base_init(self, start, stop, enabled)
        if not isinstance(method, str):
            raise ValueError(f"method must be a method's name (one of {', '.join(available())}), got {method!r}.")
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"params must map the method's parameters to values, got {params!r}.")
        values = dict(params or {})
        if guidance_scale is not None:
            if method in available() and head_keys(method) != ("scale",):
                raise ValueError(f"guidance_scale is the single scale of a CFG-type method; {method!r} takes "
                                 f"{' / '.join(head_keys(method)) or 'no scale'} in params.")
            values["scale"] = guidance_scale
        made = create(method, **values)
        if type(made).perturbation is not Guidance.perturbation:
            raise ValueError(f"{method!r} needs an extra perturbed denoiser call, which a guider cannot make; use "
                             "diffusers' SkipLayerGuidance / PerturbedAttentionGuidance guiders, or samg_video.apply.")
        self.layout, self.token_grid = layout, token_grid
        self.run = GuidanceRun(made, parse_policy(skip))

    def _guiding(self) -> bool:
        return self._enabled and in_start_stop(self)


class MethodGuider(TwoPredictionGuider):
    """Any samg-video method in a pipeline's `guider` slot, put there by `samg_video.apply`:
    each step, the run's guided prediction in the predictions' own dtype (diffusers'
    ClassifierFreeGuidance computes `u + w (c - u)` the same way, so SAMG at w_min == w_max == w
    is the pipeline's own CFG at w bit for bit); `on_step(step, num_steps, timestep, guided)`
    runs after each. Not saved with the pipeline."""

    def __init__(self, run: GuidanceRun, layout: str, on_step):
        base_init(self, 0.0, 1.0, True)
        self.run, self.layout, self.on_step = run, layout, on_step

    def forward(self, pred_cond: torch.Tensor, pred_uncond: torch.Tensor | None = None) -> GuiderOutput:
        steps = self._num_inference_steps or 1
        step = min(self._step or 0, steps - 1)
        t = float(torch.as_tensor(self._timestep).max()) if self._timestep is not None else float("nan")
        pred = self.guided(pred_cond, pred_uncond)
        self.on_step(step, steps, t, pred)
        return GuiderOutput(pred=pred, pred_cond=pred_cond, pred_uncond=pred_uncond)
