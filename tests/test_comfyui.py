"""The ComfyUI node pack against a contract that mirrors ComfyUI's own code (comfy/samplers.py
`sampling_function` and `cfg_function`, comfy/model_patcher.py's `set_model_sampler_*_function`,
as of Comfy-Org/ComfyUI a125cd84): the args dicts are built exactly as ComfyUI builds them; then
a tier against ComfyUI itself (COMFYUI_PATH)."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import torch

import comfyui_samg
from comfyui_samg.nodes import (DERIVED, GuidanceMethod, SAMGFieldPreview, SAMGVideo, SettingError, TemporalMetrics,
                                parse_options)
from samg_video import guidance
from samg_video.guidance.run import GuidanceRun
from samg_video.guidance.skip import parse_policy

REPO = Path(__file__).resolve().parents[1]


class ModelPatcher:
    """The ModelPatcher methods the nodes (and RescaleCFG) use, as ComfyUI writes them."""

    def __init__(self):
        self.model_options = {"transformer_options": {}}
        self.wrappers = {}

    def clone(self):
        n = ModelPatcher()
        n.model_options = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.model_options.items()}
        n.wrappers = {t: {k: list(w) for k, w in ws.items()} for t, ws in self.wrappers.items()}
        return n

    def add_wrapper_with_key(self, wrapper_type: str, key: str, wrapper):
        self.wrappers.setdefault(wrapper_type, {}).setdefault(key, []).append(wrapper)

    def set_model_sampler_cfg_function(self, sampler_cfg_function, disable_cfg1_optimization=False):
        if len(inspect.signature(sampler_cfg_function).parameters) == 3:
            self.model_options["sampler_cfg_function"] = lambda args: sampler_cfg_function(
                args["cond"], args["uncond"], args["cond_scale"])  # Old way
        else:
            self.model_options["sampler_cfg_function"] = sampler_cfg_function
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True

    def set_model_sampler_pre_cfg_function(self, pre_cfg_function, disable_cfg1_optimization=False):
        model_options = self.model_options  # set_model_options_pre_cfg_function
        model_options["sampler_pre_cfg_function"] = model_options.get("sampler_pre_cfg_function", []) + [
            pre_cfg_function]
        if disable_cfg1_optimization:
            model_options["disable_cfg1_optimization"] = True


def cfg_function(model, cond_pred, uncond_pred, cond_scale, x, timestep, model_options={}, cond=None, uncond=None):  # noqa: B006
    """comfy/samplers.py's cfg_function."""
    if "sampler_cfg_function" in model_options:
        args = {"cond": x - cond_pred, "uncond": x - uncond_pred, "cond_scale": cond_scale, "timestep": timestep,
                "input": x, "sigma": timestep, "cond_denoised": cond_pred, "uncond_denoised": uncond_pred,
                "model": model, "model_options": model_options, "input_cond": cond, "input_uncond": uncond}
        cfg_result = x - model_options["sampler_cfg_function"](args)
    else:
        cfg_result = uncond_pred + (cond_pred - uncond_pred) * cond_scale

    for fn in model_options.get("sampler_post_cfg_function", []):
        args = {"denoised": cfg_result, "cond": cond, "uncond": uncond, "cond_scale": cond_scale, "model": model,
                "uncond_denoised": uncond_pred, "cond_denoised": cond_pred, "sigma": timestep,
                "model_options": model_options, "input": x}
        cfg_result = fn(args)
    return cfg_result


def sampling_function_tail(model, x, timestep, out, cond_scale, model_options, cond=None, uncond=None):
    """comfy/samplers.py's sampling_function after calc_cond_batch (`out` = [cond, uncond] predictions):
    every pre-CFG function, then cfg_function."""
    conds = [cond, uncond]
    for fn in model_options.get("sampler_pre_cfg_function", []):
        args = {"conds": conds, "conds_out": out, "cond_scale": cond_scale, "timestep": timestep,
                "input": x, "sigma": timestep, "model": model, "model_options": model_options}
        out = fn(args)
    return cfg_function(model, out[0], out[1], cond_scale, x, timestep, model_options=model_options, cond=cond,
                        uncond=uncond)


def calc_cond_batch(patched, conds, x, timestep, model_options, predict):
    """comfy/samplers.py's calc_cond_batch through the model's CALC_COND_BATCH wrappers (patcher_extension's
    WrapperExecutor: each wrapper gets the next as `executor`), with `_calc_cond_batch` reduced to what
    the wrappers see: one prediction per cond (`predict(i)`), zeros for a None cond, as its
    `out_conds` start."""
    wrappers = [w for ws in patched.wrappers.get("calc_cond_batch", {}).values() for w in ws]

    def executor_at(i):
        def call(model, conds, x_in, t, options):
            if i == len(wrappers):
                return [predict(k) if cond is not None else torch.zeros_like(x_in) for k, cond in enumerate(conds)]
            return wrappers[i](executor_at(i + 1), model, conds, x_in, t, options)
        return call
    return executor_at(0)(None, conds, x, timestep, model_options)


def rescale_cfg_function(multiplier):
    """Core RescaleCFG's CFG function (comfy_extras/nodes_model_advanced.py), verbatim."""
    def rescale_cfg(args):
        cond = args["cond"]
        uncond = args["uncond"]
        cond_scale = args["cond_scale"]
        sigma = args["sigma"]
        sigma = sigma.view(sigma.shape[:1] + (1,) * (cond.ndim - 1))
        x_orig = args["input"]
        x = x_orig / (sigma * sigma + 1.0)
        cond = ((x - (x_orig - cond)) * (sigma ** 2 + 1.0) ** 0.5) / (sigma)
        uncond = ((x - (x_orig - uncond)) * (sigma ** 2 + 1.0) ** 0.5) / (sigma)
        x_cfg = uncond + cond_scale * (cond - uncond)
        ro_pos = torch.std(cond, dim=(1, 2, 3), keepdim=True)
        ro_cfg = torch.std(x_cfg, dim=(1, 2, 3), keepdim=True)
        x_rescaled = x_cfg * (ro_pos / ro_cfg)
        x_final = multiplier * x_rescaled + (1.0 - multiplier) * x_cfg
        return x_orig - (x - x_final * sigma / (sigma * sigma + 1.0) ** 0.5)
    return rescale_cfg


def node_inputs(**overrides) -> dict:
    """Every input at its node default, then `overrides`."""
    required = SAMGVideo.INPUT_TYPES()["required"]
    values = {k: (spec[1]["default"] if len(spec) > 1 and "default" in spec[1] else None)
              for k, spec in required.items()}
    return {**values, "model": ModelPatcher(), **overrides}


def run(patched, steps=4, shape=(1, 16, 5, 8, 8), cond_scale=5.0, seed=0, dtype=torch.float32, schedule=True):
    """A sampler's denoised results through the CFG function, one per step of a sigma schedule (handed
    to the model as `sample_sigmas`, as comfy.samplers does, unless `schedule` is False)."""
    g = torch.Generator().manual_seed(seed)
    sigmas = torch.linspace(1.0, 0.0, steps + 1)
    options = patched.model_options
    if schedule:
        options["transformer_options"]["sample_sigmas"] = sigmas
    outs, preds = [], []
    for i in range(steps):
        x = torch.randn(shape, generator=g).to(dtype)
        c, u = (torch.randn(shape, generator=g).to(dtype) for _ in range(2))
        sigma = sigmas[i].expand(shape[0])
        outs.append(sampling_function_tail(None, x, sigma, [c, u], cond_scale, options))
        preds.append((x, c, u, float(sigmas[i])))
    return outs, preds


def test_the_pack_loads_as_comfyui_loads_it():
    assert set(comfyui_samg.NODE_CLASS_MAPPINGS) == {"SAMGVideo", "SAMGGuidanceMethod", "SAMGFieldPreview",
                                                     "SAMGTemporalMetrics", "SAMGCompareClips",
                                                     "SAMGLoadBundledModel", "SAMGEmptyBundledClip"}
    assert set(comfyui_samg.NODE_DISPLAY_NAME_MAPPINGS) == set(comfyui_samg.NODE_CLASS_MAPPINGS)
    # ComfyUI's log and error dialog name an exception by module and class (execution.full_type_name)
    assert f"{SettingError.__module__}.{SettingError.__qualname__}" == "samg-video.SettingError"
    for cls in comfyui_samg.NODE_CLASS_MAPPINGS.values():
        for name, spec in {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}.items():
            assert len(spec) > 1 and spec[1].get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
        assert callable(getattr(cls(), cls.FUNCTION)) and cls.CATEGORY and cls.DESCRIPTION


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_equal_scales_are_comfyuis_cfg_formula(dtype):
    """w_min == w_max == cfg: the sampler's result is ComfyUI's own CFG formula bit for bit (the
    pre-CFG function hands on the conditional prediction unchanged)."""
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=5.0, w_max=5.0, temporal_sigma=1.0, spatial_sigma=1.0))
    assert patched.model_options["disable_cfg1_optimization"] is True
    assert "sampler_cfg_function" not in patched.model_options  # the single cfg slot stays free
    outs, preds = run(patched, dtype=dtype)
    for out, (x, c, u, _) in zip(outs, preds):
        assert torch.equal(out, u + (c - u) * 5.0)


def assert_carried(out, want, c, u, s):
    """ComfyUI's CFG of the handed-on prediction is `want` up to the roundings of c + (g - cfg) / s
    and of ComfyUI's own line (a few ulps of the magnitudes involved)."""
    scale = (u.abs() + s * (c - u).abs() + want.abs()).max()
    assert (out - want).abs().max() <= 8 * torch.finfo(out.dtype).eps * scale


def test_a_range_is_samg_video_on_the_same_predictions_and_a_new_run_resets():
    """The node's guided result equals samg_video.guidance's SAMG on the denoised predictions at the
    step the sampler's sigmas give; step EMA state restarts when the sigma rises (a new run)."""
    params = dict(w_min=2.0, w_max=8.0, temporal_sigma=1.0, step_ema=0.5)
    (patched,) = SAMGVideo().patch(**node_inputs(**params))
    (fn,) = patched.model_options["sampler_pre_cfg_function"]
    reference = guidance.create("samg", **params)
    for seed in (0, 1):  # two runs back to back: the second must not inherit the first's EMA
        reference.reset()
        outs, preds = run(patched, seed=seed)
        for i, (out, (x, c, u, sigma)) in enumerate(zip(outs, preds)):
            want = reference(u, c, step=i, num_steps=4, sigma=sigma)
            assert_carried(out, want, c, u, 5.0)
            assert torch.equal(fn.fields[i], reference.state.scale_field)  # the field itself: bit for bit
    assert len(fn.fields) == 4  # the last run's fields only


def test_the_range_follows_the_samplers_cfg_when_left_at_minus_one():
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=DERIVED, w_max=DERIVED, temporal_sigma=0.0))
    (fn,) = patched.model_options["sampler_pre_cfg_function"]
    run(patched, cond_scale=6.0)
    assert (fn.method.w_min, fn.method.w_max) == pytest.approx((4.0, 9.6))
    field = fn.fields[0]
    assert field.amin().item() == pytest.approx(4.0) and field.amax().item() == pytest.approx(9.6)


def test_guide_frames_take_no_part_in_the_field():
    """Two keyframe latents appended at the end of the frame axis (LTXVAddGuide): the generated
    frames' field spans exactly [w_min, w_max] however large the guides' energy."""
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0, temporal_sigma=0.0, guide_frames=2))
    (fn,) = patched.model_options["sampler_pre_cfg_function"]
    shape = (1, 16, 5, 8, 8)
    x, u = torch.zeros(shape), torch.zeros(shape)
    c = torch.rand(shape)
    c[:, :, -2:] *= 100  # the guides would dominate the energy's range
    sigmas = torch.linspace(1, 0, 5)
    options = {**patched.model_options, "transformer_options": {"sample_sigmas": sigmas}}
    sampling_function_tail(None, x, sigmas[:1], [c, u], 5.0, options)
    generated = fn.fields[0][:, :, :3]
    assert generated.amin().item() == pytest.approx(2.0, abs=1e-4) and generated.amax().item() == pytest.approx(8.0)


def test_a_skip_policy_computes_the_uncond_only_on_its_steps_and_guides_with_the_reused_delta():
    """Under skip every:2 the CALC_COND_BATCH wrapper hands ComfyUI's batch the conditional cond alone on
    odd steps (the predictions computed are counted here, in the mirror of `_calc_cond_batch`), and
    SAMG guides with u^ = c - (the last computed delta); under interval:0.5-1 the first half's steps
    are the conditional prediction, unguided; with skip off no wrapper is installed."""
    steps, shape, s = 4, (1, 16, 5, 8, 8), 5.0
    sigmas = torch.linspace(1.0, 0.0, steps + 1)
    for policy in ("every:2", "interval:0.5-1"):
        (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0, skip=policy))
        (fn,) = patched.model_options["sampler_pre_cfg_function"]
        options = patched.model_options
        options["transformer_options"]["sample_sigmas"] = sigmas
        reference = guidance.create("samg", w_min=2.0, w_max=8.0, temporal_sigma=1.0)
        g = torch.Generator().manual_seed(0)
        computed, delta = [], None
        for i in range(steps):
            x, c, u = (torch.randn(shape, generator=g) for _ in range(3))
            sigma = sigmas[i].expand(1)

            def predict(k, c=c, u=u, i=i):
                computed.append((i, k))
                return (c, u)[k]
            out = calc_cond_batch(patched, [["cond"], ["uncond"]], x, sigma, options, predict)
            result = sampling_function_tail(None, x, sigma, out, s, options)
            if policy == "interval:0.5-1" and i < 2:
                assert torch.equal(result, c)
                continue
            used = u if i % 2 == 0 or policy != "every:2" else c - delta
            assert_carried(result, reference(used, c, step=i, num_steps=steps, sigma=float(sigmas[i])), c, used, s)
            delta = c - u
        uncond_steps = [i for i, k in computed if k == 1]
        assert uncond_steps == ([0, 2] if policy == "every:2" else [2, 3])
        assert fn.rows == len(computed) == steps + len(uncond_steps)
    (off,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0))
    assert "calc_cond_batch" not in off.wrappers


def test_the_node_shows_its_runs_unconditional_passes(monkeypatch):
    """The node made inside ComfyUI's execution context (its node id) sends, after each guided evaluation,
    the run's work to the frontend (`server.PromptServer.instance.send_sync`, here a recorder): under
    every:2 on 4 steps the unconditional prediction is computed on steps 0 and 2, (4 + 2) / 8 of CFG's
    rows; in a batch whose clips plan differently, the range."""
    import sys
    import types
    from collections import namedtuple

    sent = []
    context = namedtuple("ExecutionContext", "prompt_id node_id list_index")("p", "7", None)
    utils = types.SimpleNamespace(get_executing_context=lambda: context)
    server = types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=types.SimpleNamespace(
        client_id="me", send_sync=lambda event, data, sid: sent.append((event, data, sid)))))
    monkeypatch.setitem(sys.modules, "comfy_execution", types.SimpleNamespace(utils=utils))
    monkeypatch.setitem(sys.modules, "comfy_execution.utils", utils)
    monkeypatch.setitem(sys.modules, "server", server)
    steps, sigmas = 4, torch.linspace(1.0, 0.0, 5)
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0, skip="every:2"))
    options = patched.model_options
    options["transformer_options"]["sample_sigmas"] = sigmas
    g = torch.Generator().manual_seed(0)
    for i in range(steps):
        x, c, u = (torch.randn(1, 16, 5, 8, 8, generator=g) for _ in range(3))
        out = calc_cond_batch(patched, [["cond"], ["uncond"]], x, sigmas[i].expand(1), options, lambda k: (c, u)[k])
        sampling_function_tail(None, x, sigmas[i].expand(1), out, 5.0, options)
    assert len(sent) == steps and {(e, d["node"], sid) for e, d, sid in sent} == {("samg-video.work", "7", "me")}
    assert sent[-1][1]["text"] == "unconditional passes: 2 of 4 computed (0.75x CFG's work)"
    assert sent[0][1]["text"] == "unconditional passes: 1 of 1 computed (1.00x CFG's work)"
    from comfyui_samg.nodes import work_text

    run = GuidanceRun(guidance.create("cfg", scale=5.0), parse_policy("error:0.5"))
    run.start([10, 5, 2, 1, 0.5, 0])
    steady = 0.01 * torch.randn(1, 4, 3, 6, 6, generator=g)
    for level in (10, 5, 2, 1, 0.5):  # clip 0's delta is steady, clip 1's changes wholly each step
        run.begin(level, 2)
        c = torch.randn(2, 4, 3, 6, 6, generator=g)
        u = c - torch.cat([steady, torch.randn(1, 4, 3, 6, 6, generator=g)])
        rows = run.uncond_rows()
        run.guide(run.fill_uncond(u[rows] if rows else None, c, "BCFHW"), c, layout="BCFHW")
    low, high = sorted(run.clip_plans(b).count("compute") for b in (0, 1))
    assert low < high == 5
    assert work_text(run) == (f"unconditional passes: {low}-5 of 5 computed per clip "
                              f"({(5 + low) / 10:.2f}-1.00x CFG's work)")


SAMG_WIDGETS = dict(w_min=DERIVED, w_max=DERIVED, quantile_low=0.0, quantile_high=1.0, start=0.0, end=1.0, skip="off")


@pytest.mark.parametrize("widgets,sentence", [
    (dict(w_min=9.0, w_max=3.0), "w_min = 9 exceeds w_max = 3"),
    (dict(w_min=-0.5), "w_min = -0.5 is a negative guidance scale"),
    (dict(w_max=-0.25), "w_max = -0.25 is a negative guidance scale"),
    (dict(w_max=-3.0), "w_max = -3 is a negative guidance scale; give a value >= 0, or -1 to follow"),
    (dict(start=0.8, end=0.2), "start = 0.8 must be below end = 0.2"),
    (dict(quantile_low=0.5, quantile_high=0.5), "quantile_low = 0.5 must be below quantile_high = 0.5"),
    (dict(w_max=300.0), "w_max = 300 is outside its range"),
    (dict(skip="every:1"), "skip: skip every n must be an integer >= 2"),
    (dict(skip="sometimes"), "skip: Unknown skip policy 'sometimes'"),
])
def test_samg_widgets_are_refused_at_queue_time_naming_the_widget(widgets, sentence):
    """ComfyUI's validate step (VALIDATE_INPUTS) answers the bad value with one sentence naming the
    widget, before anything runs; the node refuses the same value if it runs anyway."""
    said = SAMGVideo.VALIDATE_INPUTS(**{**SAMG_WIDGETS, **widgets})
    assert isinstance(said, str) and said.startswith(sentence) and "\n" not in said
    with pytest.raises(SettingError, match=sentence.split(" = ")[0]):
        SAMGVideo().patch(**node_inputs(**widgets))
    assert SAMGVideo.VALIDATE_INPUTS(**{**SAMG_WIDGETS, "w_min": 2.0, "w_max": 8.0}) is True
    assert SAMGVideo.VALIDATE_INPUTS(**{**SAMG_WIDGETS, "w_min": None}) is True  # a linked widget: at run time


def test_what_the_sampler_decides_is_refused_before_its_first_model_call():
    """A derived end that crosses a given one (no clamping), guide frames that leave nothing to
    generate and cfg 0 (where ComfyUI's CFG cannot carry the guidance) are one sentence naming the
    widget, from the OUTER_SAMPLE check (ComfyUI calls it before sampling) and at the first step."""
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=DERIVED, w_max=2.0))  # 2/3 x cfg 6 = 4 > 2
    (fn,) = patched.model_options["sampler_pre_cfg_function"]
    guider = type("CFGGuider", (), {"cfg": 6.0})()
    executor = type("Executor", (), {"class_obj": guider, "__call__": lambda self, *a, **k: "sampled"})()
    with pytest.raises(SettingError, match=r"w_min = 4 \(2/3 of the sampler's cfg 6\) exceeds w_max = 2"):
        fn.outer_sample(executor, torch.zeros(1, 16, 5, 8, 8))
    with pytest.raises(SettingError, match="w_min = 4"):
        run(patched, cond_scale=6.0)
    guider.cfg = 2.0  # 2/3 x 2 <= 2: fine
    assert fn.outer_sample(executor, torch.zeros(1, 16, 5, 8, 8)) == "sampled"
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0, guide_frames=5))
    (fn,) = patched.model_options["sampler_pre_cfg_function"]
    with pytest.raises(SettingError, match="guide_frames = 5 leaves no generated frame in a latent of 5 frames"):
        fn.outer_sample(executor, torch.zeros(1, 16, 5, 8, 8))
    with pytest.raises(SettingError, match="guide_frames = 5"):
        run(patched)
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0))
    with pytest.raises(SettingError, match="cfg is 0"):
        run(patched, cond_scale=0.0)
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=0.0, w_max=0.0))
    outs, preds = run(patched, cond_scale=0.0)  # equal scales at cfg 0: ComfyUI's CFG, the uncond prediction
    assert all(torch.equal(out, u + (c - u) * 0.0) for out, (_, c, u, _) in zip(outs, preds))


def test_samg_stacks_with_rescale_cfg_and_refuses_a_second_samg():
    """SAMG (pre-CFG) then core RescaleCFG (the cfg slot): RescaleCFG's formula applied to SAMG's
    guided prediction, on RescaleCFG's own tensors; a second samg-video node on the same MODEL is
    one sentence."""
    params = dict(w_min=2.0, w_max=8.0, temporal_sigma=1.0)
    (patched,) = SAMGVideo().patch(**node_inputs(**params))
    patched = patched.clone()
    patched.set_model_sampler_cfg_function(rescale_cfg_function(0.7))  # RescaleCFG.patch
    reference = guidance.create("samg", **params)
    outs, preds = run(patched, shape=(2, 16, 8, 8), cond_scale=5.0)  # RescaleCFG reduces over 3 axes: images
    (fn,) = patched.model_options["sampler_pre_cfg_function"]
    for i, (out, (x, c, u, sigma)) in enumerate(zip(outs, preds)):
        g = reference(u, c, step=i, num_steps=4, sigma=sigma, layout="BCHW")
        carried = c + (g - (u + (c - u) * 5.0)) / 5.0  # the prediction SAMG hands on (its CFG at 5 is g)
        sig = torch.full((2,), sigma)
        args = {"cond": x - carried, "uncond": x - u, "cond_scale": 5.0, "sigma": sig, "input": x}
        want = x - rescale_cfg_function(0.7)(args)
        assert torch.allclose(out, want, rtol=1e-5, atol=1e-5)
        assert torch.equal(fn.fields[i], reference.state.scale_field)
    assert not torch.allclose(outs[0], preds[0][2] + (preds[0][1] - preds[0][2]) * 5.0, atol=1e-3)
    with pytest.raises(SettingError, match="already passes through a samg-video guidance node"):
        GuidanceMethod().patch(**method_inputs(model=patched, method="apg"))


def method_inputs(**overrides) -> dict:
    return {"model": ModelPatcher(), "options": "", "space": "auto", "guide_frames": 0, **overrides}


@pytest.mark.parametrize("name,options,space", [
    ("cfg_zero_star", "", "noise"),  # auto: the projection on x - denoised, as the CFG-Zero* paper's velocity
    ("apg", "eta=0 norm_threshold=2 momentum=-0.5", "denoised"),
    ("tcfg", "per=frame", "denoised"),
    ("samg", "w_min=2 w_max=8 temporal_sigma=1 step_ema=0.5", "denoised"),
    ("rescale", "phi=0.7", "denoised"),
])
def test_the_method_node_is_samg_video_on_comfyuis_tensors(name, options, space):
    """Each method through the guidance-method node equals samg_video's method at the sampler's
    cfg (its `scale`) on the denoised predictions, or on ComfyUI's x - denoised tensors where
    the node's space says so; reductions follow the method (per frame / clip of B C T H W);
    state (APG momentum, SAMG's EMA) restarts with a new run."""

    (patched,) = GuidanceMethod().patch(**method_inputs(method=name, options=options))
    (fn,) = patched.model_options["sampler_pre_cfg_function"]
    assert fn.space == space
    params = parse_options(options)
    if "w_min" not in params:
        params["scale"] = 5.0
    reference = guidance.create(name, **params)
    for seed in (0, 1):
        reference.reset()
        outs, preds = run(patched, seed=seed)
        for i, (out, (x, c, u, sigma)) in enumerate(zip(outs, preds)):
            if space == "noise":
                want = x - reference(x - u, x - c, step=i, num_steps=4, sigma=sigma)
            else:
                want = reference(u, c, step=i, num_steps=4, sigma=sigma)
            assert_carried(out, want, c, u, 5.0)


@pytest.mark.parametrize("method,options,sentence", [
    ("apg", "eta 0", "options: write KEY=VALUE"),
    ("apg", "w_min=3", "options: Unknown parameter 'w_min'"),
    ("apg", "per=channel", "options: per must be one of 'frame', 'clip', got 'channel'"),
    ("samg", "w_min=9 w_max=3", r"options: w_min \(9.0\) must not exceed w_max \(3.0\)"),
    ("samg", "w_min=abc", "options: w_min must be a number, got 'abc'"),
    ("samg", "w_min=-0.5", "options: w_min = -0.5 is a negative guidance scale"),
    ("samg+stg", "scale_stg=-1", "options: scale_stg = -1 is a negative guidance scale"),
    ("samg+stg", "mode=attention", "options: mode='attention' cannot run in ComfyUI"),
    ("apg", "scale=-2", "options: scale = -2 is a negative guidance scale"),
])
def test_method_options_are_refused_at_queue_time_naming_the_widget(method, options, sentence):
    said = GuidanceMethod.VALIDATE_INPUTS(method=method, options=options)
    assert isinstance(said, str) and "\n" not in said
    assert __import__("re").match(sentence, said), said
    with pytest.raises(SettingError, match=sentence):
        GuidanceMethod().patch(**method_inputs(method=method, options=options))
    assert GuidanceMethod.VALIDATE_INPUTS(method=method, options="") is True
    assert "pag" not in GuidanceMethod.INPUT_TYPES()["required"]["method"][0]


def test_every_dropdown_is_checked_when_the_prompt_is_queued():
    """ComfyUI checks no V3 node's dropdown values (a125cd84, execution.validate_inputs tests only a
    V1 list), so a value from an API file (normalize="pixel", space="pixel") would pass the queue and
    fail mid-run; each node's own check names every dropdown it has, with the choices."""
    from comfyui_samg.inputs import Input

    for cls in comfyui_samg.NODE_CLASS_MAPPINGS.values():
        combos = [i for i in cls.inputs() if i.kind == "COMBO"]
        named = set(inspect.signature(cls.VALIDATE_INPUTS).parameters) if combos else set()
        assert {i.name for i in combos} <= named, cls.__name__
    said = SAMGVideo.VALIDATE_INPUTS(**{k: v for k, v in node_inputs(normalize="pixel").items()
                                        if k in inspect.signature(SAMGVideo.VALIDATE_INPUTS).parameters})
    assert said == "normalize must be one of 'clip', 'frame', got 'pixel'.", said
    assert GuidanceMethod.VALIDATE_INPUTS("samg", "", "off", "pixel") == ("space must be one of 'auto', 'denoised', "
                                                                          "'noise', got 'pixel'.")
    with pytest.raises(SettingError, match="space must be one of"):
        GuidanceMethod().patch(**method_inputs(method="samg", options="", space="pixel"))
    with pytest.raises(ValueError, match="default 'x' is not one of its options"):
        Input("mode", "COMBO", "a dropdown", "x", options=("a", "b"))


def test_layers_past_the_models_blocks_are_refused_when_the_node_runs():
    """The block count is the model's: known when the node runs, before sampling."""
    model = ModelPatcher()
    model.model = type("BaseModel", (), {"diffusion_model": ToyDiT(2)})()
    with pytest.raises(SettingError, match=r"options: layers=\[99\] names block 99, but this model has 2 blocks"):
        GuidanceMethod().patch(**method_inputs(model=model, method="samg+stg", options="layers=[99]"))
    (patched,) = GuidanceMethod().patch(**method_inputs(model=model, method="samg+stg", options="layers=[1]"))
    assert patched.model_options["sampler_pre_cfg_function"]


class ToyDiT(torch.nn.Module):
    """A model whose blocks read ComfyUI's 'dit' / 'double_block' replace patches the way Wan's
    forward does (comfy/ldm/wan/model.py): block i adds i + 1 times a tanh of the input."""

    def __init__(self, count=4):
        super().__init__()
        self.blocks = torch.nn.ModuleList(torch.nn.Identity() for _ in range(count))

    def forward(self, x, transformer_options):
        replace = transformer_options.get("patches_replace", {}).get("dit", {})
        for i, _ in enumerate(self.blocks):
            def block_wrap(args, i=i):
                return {"img": args["img"] + (i + 1) * torch.tanh(args["img"])}
            if ("double_block", i) in replace:
                x = replace[("double_block", i)]({"img": x, "transformer_options": transformer_options},
                                                 {"original_block": block_wrap})["img"]
            else:
                x = block_wrap({"img": x})["img"]
        return x


def comfy_modules(monkeypatch):
    """comfy.model_patcher.set_model_options_patch_replace (verbatim) and a calc_cond_batch that
    runs ToyDiT on the cond's tensor, as sys.modules entries."""
    import sys
    import types

    def set_model_options_patch_replace(model_options, patch, name, block_name, number, transformer_index=None):
        to = model_options["transformer_options"].copy()
        if "patches_replace" not in to:
            to["patches_replace"] = {}
        else:
            to["patches_replace"] = to["patches_replace"].copy()
        if name not in to["patches_replace"]:
            to["patches_replace"][name] = {}
        else:
            to["patches_replace"][name] = to["patches_replace"][name].copy()
        if transformer_index is not None:
            block = (block_name, number, transformer_index)
        else:
            block = (block_name, number)
        to["patches_replace"][name][block] = patch
        model_options["transformer_options"] = to
        return model_options

    calls = []

    def calc_cond_batch(model, conds, x, timestep, model_options):
        calls.append(sorted(model_options["transformer_options"].get("patches_replace", {}).get("dit", {})))
        return [model.diffusion_model(conds[0], model_options["transformer_options"]) for _ in conds]

    comfy = types.ModuleType("comfy")
    comfy.model_patcher = types.SimpleNamespace(set_model_options_patch_replace=set_model_options_patch_replace)
    comfy.samplers = types.SimpleNamespace(calc_cond_batch=calc_cond_batch)
    for name, module in (("comfy", comfy), ("comfy.model_patcher", comfy.model_patcher),
                         ("comfy.samplers", comfy.samplers)):
        monkeypatch.setitem(sys.modules, name, module)
    return calls


@pytest.mark.parametrize("layers", [None, (0, 3)])
def test_samg_stg_skips_blocks_through_comfyuis_patches(monkeypatch, layers):
    """samg+stg: one extra model call per step with the chosen blocks (default: the middle one)
    replaced by ComfyUI's 'dit' patches; the result is samg_video's samg+stg with that prediction
    as the perturbed one; the sampler's own model options are left as they were."""
    calls = comfy_modules(monkeypatch)
    types_model = type("BaseModel", (), {"diffusion_model": ToyDiT()})()
    options = "w_min=2 w_max=8 scale_stg=1.5" + (f" layers=[{','.join(map(str, layers))}]" if layers else "")
    (patched,) = GuidanceMethod().patch(**method_inputs(method="samg+stg", options=options))
    (fn,) = patched.model_options["sampler_pre_cfg_function"]
    reference = guidance.create("samg+stg", **parse_options(options))
    sigmas = torch.linspace(1, 0, 4)
    model_options = {**patched.model_options, "transformer_options": {"sample_sigmas": sigmas}}
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        x, c, u, cond_input = (torch.randn(1, 16, 3, 4, 4, generator=g) for _ in range(4))
        out = sampling_function_tail(types_model, x, sigmas[i:i + 1], [c, u], 5.0, model_options, cond=cond_input)
        skipped = [j for j in range(4) if j not in (layers or (2,))]
        perturbed = cond_input
        for j in skipped:
            perturbed = perturbed + (j + 1) * torch.tanh(perturbed)
        want = reference(u, c, step=i, num_steps=3, sigma=float(sigmas[i]), pred_perturbed=perturbed)
        assert_carried(out, want, c, u, 5.0)
    assert calls == [[("double_block", j) for j in (layers or (2,))]] * 3
    assert "patches_replace" not in model_options["transformer_options"]


def test_field_preview_and_metrics_nodes():
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0))
    with pytest.raises(ValueError, match="has not sampled yet"):
        SAMGFieldPreview().preview(patched, {"samples": None}, -1, 4)
    run(patched)
    (images,) = SAMGFieldPreview().preview(patched, {"samples": None}, -1, 4)
    assert images.shape[:3] == (5, 32, images.shape[2]) and images.shape[2] > 32 and images.shape[3] == 3
    assert 0 <= images.min() and images.max() <= 1
    with pytest.raises(SettingError, match="not patched by a SAMG node"):
        SAMGFieldPreview().preview(ModelPatcher(), {}, -1, 4)
    # the node's numbers are samg_video.metrics' on the same frames; a moving square moves, a still one not
    from samg_video import metrics

    frames = torch.zeros(6, 32, 32, 3)
    for t in range(6):
        frames[t, 10:18, 4 + 2 * t:12 + 2 * t] = 1.0
    shown = TemporalMetrics().measure(frames, False)
    text, flicker, compensated, warp, lpips, motion = shown["result"]
    assert shown["ui"]["text"] == [text] and TemporalMetrics.OUTPUT_NODE
    want = metrics.compute(frames.numpy(), metrics=["flicker", "warp_error", "motion", "saturation"])
    assert json.loads(text) == pytest.approx(want)
    assert (flicker, compensated, warp, motion) == (want["flicker"], want["flicker_compensated"], want["warp_error"],
                                                    want["motion"]) and math.isnan(lpips)
    still = TemporalMetrics().measure(frames[:1].expand(6, -1, -1, -1).contiguous(), False)["result"]
    assert motion > 0.2 and still[5] < 0.01 and still[1] == pytest.approx(1.0)
    with_lpips = TemporalMetrics().measure(frames, True)["result"]
    assert with_lpips[4] == pytest.approx(metrics.compute(frames.numpy(), metrics=["lpips_temporal"])["lpips_temporal"])
    lines = shown["ui"]["shown"][0].splitlines()  # what the node shows: one line per measured value, with its meaning
    assert lines[0] == "frames: 6" and len(lines) == len(json.loads(text))
    assert f"flicker: {flicker:#.4g}  (0-1, 1 = perfectly steady; higher is better)" in lines


def test_compare_clips_joins_labelled_clips_and_measures_each():
    """Compare clips: the clips side by side under their labels (each clip's pixels kept, enlarged by
    `upscale`), the frames of the shortest clip, and each clip's metrics equal to what Temporal
    metrics measures of it alone; a label not given is "clip N"."""
    from comfyui_samg.nodes import CompareClips

    g = torch.Generator().manual_seed(0)
    a, b, c = torch.rand(6, 16, 16, 3, generator=g), torch.rand(6, 16, 16, 3, generator=g), torch.rand(5, 16, 16, 3)
    shown = CompareClips().compare(a, b, "CFG, SAMG", 2, False, c=c)
    images, text = shown["result"]
    results = json.loads(text)
    assert list(results) == ["CFG", "SAMG", "clip 3"]
    assert results["SAMG"] == pytest.approx(json.loads(TemporalMetrics().measure(b, False)["result"][0]))
    assert images.shape[0] == 5 and images.shape[3] == 3 and images.shape[2] == 3 * 32 + 2 * 4
    strip = images.shape[1] - 32  # the label strip above the frames
    crisp = (a[:5] * 255).round() / 255
    assert torch.allclose(images[:, strip:, :32:2], crisp[:, :, :].repeat_interleave(2, 1), atol=1e-6)
    assert "flicker: CFG = " in shown["ui"]["shown"][0] and " | clip 3 = " in shown["ui"]["shown"][0]
    assert CompareClips.OUTPUT_NODE and "c" in CompareClips.INPUT_TYPES()["optional"]


def test_the_bundled_model_nodes_check_before_they_load(tmp_path):
    """Empty bundled clip makes the pixel-space latent the bundled model samples; Load bundled model
    refuses a folder without the model's files at queue time, in one sentence naming the widget."""
    from comfyui_samg.nodes import EmptyBundledClip, LoadBundledModel

    (latent,) = EmptyBundledClip().empty(32, 24, 8, 2)
    assert latent["samples"].shape == (2, 3, 8, 24, 32) and not latent["samples"].any()
    assert LoadBundledModel.VALIDATE_INPUTS("") is True
    said = LoadBundledModel.VALIDATE_INPUTS(str(tmp_path))
    assert said.startswith("folder: ") and "unet/diffusion_pytorch_model.safetensors" in said
    from samg_video.demo.pipeline import DEFAULT_MODEL_DIR

    assert LoadBundledModel.VALIDATE_INPUTS(str(DEFAULT_MODEL_DIR)) is True


# --- the real ComfyUI tier: COMFYUI_PATH=/path/to/ComfyUI (its requirements importable) --------------

class Loaded:
    """A pack node as ComfyUI registered it (a V3 `io.ComfyNode` where ComfyUI has the V3 API, else
    the V1 class), called like the V1 function it wraps: `Loaded(nodes, "SAMGVideo").patch(...)`."""

    def __init__(self, nodes, node_id: str):
        from comfyui_samg.nodes import NODE_CLASS_MAPPINGS as declared

        self.cls, self.declared = nodes.NODE_CLASS_MAPPINGS[node_id], declared[node_id]

    def __getattr__(self, function: str):
        names = list(inspect.signature(getattr(self.declared, function)).parameters)[1:]

        def call(*args, **kwargs):
            kwargs.update(zip(names, args))
            if hasattr(self.cls, "define_schema"):  # V3: the class's execute, its NodeOutput's values
                return tuple(self.cls.execute(**kwargs).args)
            return getattr(self.cls(), function)(**kwargs)
        return call


def comfyui():
    """ComfyUI's modules from COMFYUI_PATH on the CPU, or a skip."""
    import os
    import sys

    path = os.environ.get("COMFYUI_PATH")
    if not path:
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout to run the real-ComfyUI tier")
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        import comfy.cli_args

        comfy.cli_args.args.cpu = True
        import comfy.model_management  # noqa: F401
        import comfy.ops
        import comfy.sample
        import comfy.sd
        import app.custom_node_manager  # noqa: F401  (as main.py: ComfyUI's utils/ before nodes.py puts comfy/ first)
        import nodes
    except ImportError as err:
        pytest.skip(f"ComfyUI at {path} does not import here ({err}); install its requirements.txt")
    return comfy, nodes


def tiny_wan(comfy, weights_only=False):
    """A random Wan 2.1 T2V model at tiny width (2 blocks), loaded by ComfyUI's own model detection
    (or its fp16 state dict, as a diffusion-model file holds it)."""
    from comfy.ldm.wan.model import WanModel

    torch.manual_seed(0)
    net = WanModel(model_type="t2v", dim=128, ffn_dim=256, freq_dim=256, text_dim=4096, num_heads=1, num_layers=2,
                   operations=comfy.ops.disable_weight_init)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.02)
    if weights_only:
        return {k: v.half().contiguous() for k, v in net.state_dict().items()}
    return comfy.sd.load_diffusion_model_state_dict(net.state_dict())


def sample(comfy, model, cfg=5.0, steps=4, custom=False):
    """Latents from KSampler's path (`comfy.sample.sample`) or, with `custom`, from
    SamplerCustomAdvanced's (a `comfy.samplers.CFGGuider` with the scheduler's sigmas)."""
    g = torch.Generator().manual_seed(0)
    latent = torch.zeros(1, 16, 3, 8, 8)
    noise = torch.randn(latent.shape, generator=g)
    positive, negative = [[torch.randn(1, 8, 4096, generator=g), {}]], [[torch.randn(1, 8, 4096, generator=g), {}]]
    if not custom:
        return comfy.sample.sample(model, noise, steps, cfg, "euler", "simple", positive, negative, latent, seed=0,
                                   disable_pbar=True)
    import comfy.samplers

    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", steps)
    return guider.sample(noise, latent, comfy.samplers.sampler_object("euler"), sigmas, seed=0, disable_pbar=True)


def test_real_comfyui_loads_the_pack_and_samples_with_it():
    """Against ComfyUI itself: the pack loads through ComfyUI's custom-node loader; a tiny random Wan
    2.1 model samples through KSampler's path with SAMG; at equal scales the result is ComfyUI's
    built-in CFG bit for bit; a real range changes it; the field preview shows the run's frames."""
    import asyncio
    from pathlib import Path

    comfy, nodes = comfyui()
    root = Path(__file__).resolve().parents[1]
    assert asyncio.run(nodes.load_custom_node(str(root / "comfyui_samg")))  # as from custom_nodes/ (a link)
    assert set(comfyui_samg.NODE_CLASS_MAPPINGS) <= set(nodes.NODE_CLASS_MAPPINGS)
    from comfy_api.latest import io

    for node_id in comfyui_samg.NODE_CLASS_MAPPINGS:  # the V3 API where ComfyUI has it, with every tooltip
        assert issubclass(nodes.NODE_CLASS_MAPPINGS[node_id], io.ComfyNode), node_id
        info = nodes.NODE_CLASS_MAPPINGS[node_id].GET_NODE_INFO_V1()
        assert all(spec[1].get("tooltip") for spec in info["input"]["required"].values()), node_id
        assert info["display_name"] == comfyui_samg.NODE_DISPLAY_NAME_MAPPINGS[node_id]
    model = tiny_wan(comfy)
    builtin = sample(comfy, model)
    samg = Loaded(nodes, "SAMGVideo")
    (equal,) = samg.patch(**node_inputs(model=model, w_min=5.0, w_max=5.0))
    same = sample(comfy, equal)
    assert torch.equal(same, builtin)
    (ranged,) = samg.patch(**node_inputs(model=model, w_min=2.0, w_max=8.0))
    varied = sample(comfy, ranged)
    assert (varied - builtin).abs().max() > 1e-3
    (images,) = Loaded(nodes, "SAMGFieldPreview").preview(ranged, {"samples": varied}, -1, 4)
    assert images.shape[0] == 3 and images.shape[-1] == 3
    # SamplerCustomAdvanced's path: core CFGGuider with the patched MODEL gives KSampler's latents
    assert torch.equal(sample(comfy, ranged, custom=True), varied)
    assert torch.equal(sample(comfy, equal, custom=True), same)


def test_real_comfyui_v3_nodes_are_the_declared_inputs():
    """Each V3 node's inputs, as ComfyUI reads them (`INPUT_TYPES` of the io.ComfyNode), are the pack's
    declarations: the V1 tuples' types, defaults, ranges, steps, options and tooltips, in the same
    order (saved workflows keep widget values by position); the V3 check names the V1 check's values."""
    import asyncio
    from pathlib import Path

    _, nodes = comfyui()
    root = Path(__file__).resolve().parents[1]
    assert asyncio.run(nodes.load_custom_node(str(root / "comfyui_samg")))
    for node_id, declared in comfyui_samg.NODE_CLASS_MAPPINGS.items():
        v3 = nodes.NODE_CLASS_MAPPINGS[node_id]
        assert "define_schema" in vars(v3) and "execute" in vars(v3), node_id  # written as a V3 node
        real, v1 = v3.INPUT_TYPES(include_hidden=False), declared.INPUT_TYPES()
        assert {g: list(real.get(g, {})) for g in v1} == {g: list(v1[g]) for g in v1}, node_id
        for group in v1:
            for name, (kind, spec) in v1[group].items():
                real_kind, real_spec = real[group][name]
                if isinstance(kind, list):
                    assert real_kind == "COMBO" and real_spec["options"] == kind, (node_id, name)
                else:
                    assert real_kind == kind, (node_id, name)
                assert {k: real_spec.get(k) for k in spec} == spec, (node_id, name)
        if hasattr(declared, "VALIDATE_INPUTS"):
            assert (list(inspect.signature(v3.validate_inputs).parameters)
                    == list(inspect.signature(declared.VALIDATE_INPUTS).parameters)), node_id


def test_real_comfyui_skip_policy_leaves_out_unconditional_rows():
    """Against ComfyUI itself: with skip every:2 a tiny Wan 2.1 samples through KSampler's path with the
    unconditional cond computed on steps 0 and 2 only (counted by a model function wrapper, which sees
    ComfyUI's `cond_or_uncond` of every batch it runs); interval:0-0.5 computes it in the first half
    only; off computes it on every step."""
    comfy, nodes = comfyui()
    import asyncio

    root = Path(__file__).resolve().parents[1]
    assert asyncio.run(nodes.load_custom_node(str(root / "comfyui_samg")))
    model = tiny_wan(comfy)
    samg = Loaded(nodes, "SAMGVideo")
    for policy, uncond_steps in (("every:2", 2), ("interval:0-0.5", 2), ("off", 4)):
        (patched,) = samg.patch(**node_inputs(model=model, w_min=2.0, w_max=8.0, skip=policy))
        seen = []

        def count(apply_model, args, seen=seen):
            seen.append(list(args["cond_or_uncond"]))
            return apply_model(args["input"], args["timestep"], **args["c"])
        patched.set_model_unet_function_wrapper(count)
        latents = sample(comfy, patched)
        assert torch.isfinite(latents).all()
        assert len(seen) == 4 and sum(batch.count(1) for batch in seen) == uncond_steps, (policy, seen)
        assert all(batch.count(0) == 1 for batch in seen)
        fn = [f for f in patched.model_options["sampler_pre_cfg_function"] if hasattr(f, "rows")][0]
        assert fn.rows == (0 if policy == "off" else 6)  # off: no wrapper, nothing counted by the pack


def test_real_comfyui_samg_stg_at_equal_scales_is_cfg_with_core_skip_layer_guidance():
    """samg+stg through the guidance-method node at w_min == w_max == cfg equals ComfyUI's built-in
    CFG followed by core's SkipLayerGuidanceDiT (same block, same scale, every step): both skip the
    block through ComfyUI's 'dit' patches and add s (c - p). Other methods run and differ from CFG."""
    comfy, nodes = comfyui()
    import asyncio
    from pathlib import Path

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    assert asyncio.run(nodes.load_custom_node(str(Path(__file__).resolve().parents[1] / "comfyui_samg")))
    model = tiny_wan(comfy)
    slg = nodes.NODE_CLASS_MAPPINGS["SkipLayerGuidanceDiT"]
    (core,) = slg.execute(model, scale=1.5, start_percent=0.0, end_percent=1.0, double_layers="1", single_layers="")
    builtin = sample(comfy, core)
    method = Loaded(nodes, "SAMGGuidanceMethod")
    (ours,) = method.patch(model, "samg+stg", "w_min=5 w_max=5 scale_stg=1.5 layers=[1]", "auto", 0)
    same = sample(comfy, ours)
    assert (same - builtin).abs().max() <= 1e-5 * builtin.abs().max()  # SAMG's STG term vs SLG's post-CFG one
    (samg_then_slg,) = slg.execute(Loaded(nodes, "SAMGVideo").patch(
        **node_inputs(model=model, w_min=5.0, w_max=5.0))[0], scale=1.5, start_percent=0.0, end_percent=1.0,
        double_layers="1", single_layers="")
    assert torch.equal(sample(comfy, samg_then_slg), builtin)  # SAMG at cfg stacks with core SLG: the same latents
    assert (builtin - sample(comfy, model)).abs().max() > 1e-3  # the skipped block matters
    (ranged,) = method.patch(model, "samg+stg", "w_min=2 w_max=8 scale_stg=1.5", "auto", 0)  # middle block
    assert (sample(comfy, ranged) - builtin).abs().max() > 1e-3
    plain = sample(comfy, model)
    for name in ("cfg_zero_star", "apg", "tcfg"):
        (patched,) = method.patch(model, name, "", "auto", 0)
        out = sample(comfy, patched)
        assert torch.isfinite(out).all() and (out - plain).abs().max() > 1e-4, name


def test_real_comfyui_validates_the_example_workflows(tmp_path):
    """Each example workflow (API format, comfyui_samg/api_workflows/) passes ComfyUI's own graph
    validation with the core nodes and the pack loaded; model files are empty stand-ins under the
    names the workflows use (validation checks that they exist, not what they hold)."""
    import asyncio
    from pathlib import Path

    comfy, nodes = comfyui()
    import execution
    import folder_paths

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    root = Path(__file__).resolve().parents[1]
    assert asyncio.run(nodes.load_custom_node(str(root / "comfyui_samg")))
    workflows = sorted((root / "comfyui_samg" / "api_workflows").glob("*.json"))
    assert len(workflows) == 5
    kinds = {"UNETLoader": ("diffusion_models", "unet_name"), "CLIPLoader": ("text_encoders", "clip_name"),
             "VAELoader": ("vae", "vae_name"), "CheckpointLoaderSimple": ("checkpoints", "ckpt_name"),
             "DualCLIPLoader": ("text_encoders", "clip_name1", "clip_name2"), "LoadImage": ("input", "image")}
    (tmp_path / "input").mkdir()
    folder_paths.set_input_directory(str(tmp_path / "input"))
    for path in workflows:
        graph = json.loads(path.read_text())
        for entry in graph.values():
            kind, *keys = kinds.get(entry["class_type"], (None,))
            for key in keys:
                folder = tmp_path / kind
                folder.mkdir(exist_ok=True)
                (folder / entry["inputs"][key]).write_bytes(b"")
                if kind != "input":
                    folder_paths.add_model_folder_path(kind, str(folder))
        valid, error, _, node_errors = asyncio.run(execution.validate_prompt("check", graph, None))
        assert valid, (path.name, error, node_errors)
        assert {e["class_type"] for e in graph.values()} >= {"SAMGVideo", "SAMGCompareClips"}
        seeds = [e["inputs"]["seed" if "seed" in e["inputs"] else "noise_seed"] for e in graph.values()
                 if e["class_type"].startswith("KSampler")]
        assert len(set(seeds)) == 1, path.name  # the branches share one seed


def tiny_wan_files(comfy, folder, names: dict) -> None:
    """Model files for the Wan 2.1 workflow under the names it loads, written as a user's are
    (safetensors in models/<kind>/), with random weights: the diffusion model at tiny width; the
    Wan 2.1 VAE at its real size (ComfyUI builds it from a fixed config); UMT5 with its real
    width (4096, Wan's text_dim) and 24 blocks but 1 head, a 64-wide feed-forward and a 40-piece
    SentencePiece vocabulary stored in the file, as ComfyUI's text-encoder files store theirs."""
    import json as json_

    import comfy.text_encoders.t5
    import comfy.text_encoders.wan
    import sentencepiece
    from comfy.ldm.wan.vae import WanVAE
    from safetensors.torch import save_file

    def randomise(module):
        for name, p in module.named_parameters():
            if p.ndim > 1:
                torch.nn.init.normal_(p, std=0.02)
            else:
                torch.nn.init.ones_(p) if "gamma" in name or "weight" in name else torch.nn.init.zeros_(p)
        return {k: v.half().contiguous() for k, v in module.state_dict().items()}

    torch.manual_seed(0)
    (folder / "corpus.txt").write_text("a red fox running through fresh snow, morning light\n"
                                       "blurry, static, low quality, distorted\n" * 20)
    sentencepiece.SentencePieceTrainer.train(input=str(folder / "corpus.txt"), model_prefix=str(folder / "sp"),
                                             vocab_size=40, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                             hard_vocab_limit=False, minloglevel=2)
    config = json_.loads((folder.parent / "umt5.json").read_text())
    text = comfy.text_encoders.t5.T5(config, torch.float32, "cpu", comfy.ops.disable_weight_init)
    weights = randomise(text)
    weights["spiece_model"] = torch.frombuffer(bytearray((folder / "sp.model").read_bytes()), dtype=torch.uint8)
    vae = WanVAE(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                 temperal_downsample=[False, True, True], dropout=0.0)
    for kind, name, sd in (("text_encoders", names["clip"], weights), ("vae", names["vae"], randomise(vae)),
                           ("diffusion_models", names["unet"], tiny_wan(comfy, weights_only=True))):
        (folder / kind).mkdir(exist_ok=True)
        save_file(sd, str(folder / kind / name))


def test_real_comfyui_runs_the_wan_workflow_through_its_executor(tmp_path, monkeypatch):
    """The shipped Wan 2.1 workflow (CFG, SAMG and SAMG+STG branches) runs headless through
    ComfyUI's PromptExecutor on tiny random model files: the three clips written side by side and
    decodable, and each branch's metrics shown on the Compare clips node. The graph is the shipped one with the size,
    length and steps made small; UMT5's fixed 5.7 B-parameter config file is swapped for one of
    the same width and depth with 1 head and a 64-wide feed-forward (ComfyUI builds the encoder
    from that file, whatever the weights hold)."""
    import asyncio
    from pathlib import Path

    _, nodes = comfyui()
    import av  # ComfyUI's requirement
    import comfy.sd1_clip
    import comfy.text_encoders.t5
    import comfy.text_encoders.wan
    import execution
    import folder_paths

    config = json.loads((Path(comfy.text_encoders.wan.__file__).parent / "umt5_config_xxl.json").read_text())
    config.update(num_heads=1, d_ff=64, vocab_size=64)
    (tmp_path / "umt5.json").write_text(json.dumps(config))

    def small_umt5(self, device="cpu", layer="last", layer_idx=None, dtype=None, model_options={}):  # noqa: B006
        comfy.sd1_clip.SDClipModel.__init__(self, device=device, layer=layer, layer_idx=layer_idx,
                                            textmodel_json_config=str(tmp_path / "umt5.json"), dtype=dtype,
                                            special_tokens={"end": 1, "pad": 0}, model_class=comfy.text_encoders.t5.T5,
                                            enable_attention_masks=True, zero_out_masked=True,
                                            model_options=model_options)

    monkeypatch.setattr(comfy.text_encoders.wan.UMT5XXlModel, "__init__", small_umt5)
    root = Path(__file__).resolve().parents[1]
    graph = json.loads((root / "comfyui_samg" / "api_workflows" / "wan21_t2v_cfg_vs_samg.json").read_text())
    models = tmp_path / "models"
    models.mkdir()
    tiny_wan_files(comfy, models, {"unet": graph["unet"]["inputs"]["unet_name"],
                                   "clip": graph["clip"]["inputs"]["clip_name"],
                                   "vae": graph["vae"]["inputs"]["vae_name"]})
    for kind in ("text_encoders", "vae", "diffusion_models"):
        folder_paths.add_model_folder_path(kind, str(models / kind), is_default=True)
    folder_paths.set_output_directory(str(tmp_path / "output"))
    folder_paths.set_temp_directory(str(tmp_path / "temp"))
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    assert asyncio.run(nodes.load_custom_node(str(root / "comfyui_samg")))
    graph["latent"]["inputs"].update(width=64, height=64, length=9)  # 3 latent frames -> 9 decoded
    for key in ("sample_cfg", "sample_samg", "sample_samg_stg"):
        graph[key]["inputs"]["steps"] = 4
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("wan21", graph, None))
    assert valid, (error, node_errors)

    class Server:  # what PromptExecutor asks of ComfyUI's server when no client listens
        client_id = last_node_id = last_prompt_id = None

        def send_sync(self, *args, **kwargs):
            pass

    executor = execution.PromptExecutor(Server(), cache_type=execution.CacheType.CLASSIC)
    executor.execute(graph, "wan21", {}, outputs)
    errors = [m for kind, m in executor.status_messages if kind == "execution_error"]
    assert executor.success, errors and errors[0]["traceback"]
    shown = executor.history_result["outputs"]
    (clip,) = shown["save"]["images"]  # the three clips side by side, each under its label
    with av.open(str(tmp_path / "output" / clip["subfolder"] / clip["filename"])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 9 and frames[0].shape[1] == 3 * 64 + 2 * 4 and frames[0].shape[0] > 64
    measured = json.loads(shown["compare"]["text"][0])
    assert list(measured) == ["CFG", "SAMG", "SAMG+STG"]
    for result in measured.values():
        assert result["frames"] == 9 and result["resolution"] == "64x64" and result["flicker"] >= 0
    assert shown["compare"]["shown"][0].startswith("frames: CFG = 9 | SAMG = 9 | SAMG+STG = 9")


def test_real_comfyui_canvas_workflows_carry_the_api_graphs():
    """example_workflows/ (the canvas format the frontend loads, ComfyUI's template folder) is what
    `python -m comfyui_samg.workflow_ui` makes from the API files with ComfyUI's own node
    definitions, and reads back to the same API graphs; every link is listed at both of its ends;
    titles are display names, seeds fixed."""
    import asyncio
    from pathlib import Path

    _, nodes = comfyui()
    from comfyui_samg import workflow_ui

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    asyncio.run(nodes.load_custom_node(str(Path(workflow_ui.__file__).parent)))
    infos = {name: workflow_ui.node_info(cls) for name, cls in nodes.NODE_CLASS_MAPPINGS.items()}
    folder = workflow_ui.FOLDER
    apis = sorted(folder.glob("*.json"))
    assert sorted(workflow_ui.template_path(workflow_ui.TEMPLATES, p.name) for p in apis) == sorted(
        workflow_ui.TEMPLATES.glob("*.json"))
    assert all(not set("-_") & set(title) for title in workflow_ui.TITLES.values())  # the dialog's description
    names = {**nodes.NODE_DISPLAY_NAME_MAPPINGS}
    for path in apis:
        api = json.loads(path.read_text())
        ui = json.loads(workflow_ui.template_path(workflow_ui.TEMPLATES, path.name).read_text())
        assert workflow_ui.to_ui(api, infos) == ui, f"{path.name}: run python -m comfyui_samg.workflow_ui"
        assert workflow_ui.to_api(ui, infos) == workflow_ui.renumbered(api)
        for node in ui["nodes"]:
            assert node["title"].startswith(names.get(node["type"], node["type"])), node["title"]
            if node["type"].startswith("KSampler"):
                assert "fixed" in node["widgets_values"] and "randomize" not in node["widgets_values"]
        by_id = {n["id"]: n for n in ui["nodes"]}
        for link, source, slot, target, target_slot, kind in ui["links"]:
            assert link in by_id[source]["outputs"][slot]["links"] and by_id[source]["outputs"][slot]["type"] == kind
            assert by_id[target]["inputs"][target_slot]["link"] == link


# --- installs: a clone of the repository in custom_nodes/, and requirements.txt ---------------------

CLONE_PROBE = r"""
import importlib.metadata, importlib.util, json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path[:] = [p for p in sys.path if p not in ("", ".", ROOT)]
for name in [m for m in sys.modules if m.split(".")[0] in ("samg_video", "comfyui_samg")]:
    del sys.modules[name]
assert importlib.util.find_spec("samg_video") is None, "samg_video is importable before the pack loads"
before = set(sys.modules)
spec = importlib.util.spec_from_file_location(PACK.replace(".", "_x_"), PACK + "/__init__.py")  # nodes.py's loader
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
import torch
import samg_video.guidance
nodes = module.NODE_CLASS_MAPPINGS
model = type("Patcher", (), {"model_options": {}, "clone": lambda self: self,
                             "set_model_sampler_pre_cfg_function": lambda self, fn, disable_cfg1_optimization: None})()
nodes["SAMGGuidanceMethod"]().patch(model, "fdg", "", "auto", 0)  # fdg: kornia's pyramids
samg_video.guidance.create("fdg")(torch.zeros(1, 4, 3, 16, 16), torch.ones(1, 4, 3, 16, 16), step=0, num_steps=1)
frames = torch.rand(4, 32, 32, 3)
nodes["SAMGTemporalMetrics"]().measure(frames, False)
from samg_video import viz
viz.scale_map(torch.rand(2, 4, 4).numpy(), 1.0, 2.0, 2)
top = {m.split(".")[0] for m in set(sys.modules) - before}
loaded = set(sys.modules)
from samg_video.demo.pipeline import load_pipeline  # what Load bundled model reads its weights with
load_pipeline()
bundled = {m.split(".")[0] for m in set(sys.modules) - loaded}
print(json.dumps({"nodes": sorted(nodes), "samg_video": samg_video.__file__, "modules": sorted(top),
                  "bundled": sorted(bundled)}))
"""


def pack_copy(folder):
    """The repository's tracked files (what a `git clone` checks out) copied to `folder`."""
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, target = root / name, folder / name
        if source.is_file() or source.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    return folder


def distribution_closure(names) -> set[str]:
    """The distributions `names` need, with their requirements' requirements (environment markers
    without extras applied)."""
    import importlib.metadata
    import re

    from packaging.requirements import Requirement

    seen, todo = set(), [re.sub(r"[-_.]+", "-", n).lower() for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(re.sub(r"[-_.]+", "-", req.name).lower())
    return seen


COMFYUI_OWN = ("torch", "torchsde", "torchvision", "numpy", "einops", "transformers", "tokenizers", "sentencepiece",
               "safetensors", "pyyaml", "pillow", "scipy", "tqdm", "psutil", "kornia")  # ComfyUI's requirements.txt
# (a125cd84) that a pack's import may use


def optional_of(name: str) -> set[str]:
    """The distributions `name` lists under an extra (what it imports when they are there)."""
    import importlib.metadata
    import re

    from packaging.requirements import Requirement

    found = set()
    for line in importlib.metadata.requires(name) or []:
        req = Requirement(line)
        if req.marker is not None and "extra" in str(req.marker):
            found.add(re.sub(r"[-_.]+", "-", req.name).lower())
    return found


def test_a_clone_in_custom_nodes_loads_and_requirements_are_what_the_nodes_import(tmp_path):
    """A copy of the repository's tracked files as ComfyUI-Manager's `git clone` leaves them, under a
    folder name with a hyphen, loaded as ComfyUI's loader loads a pack folder, in a Python where
    samg-video is not installed: the nodes load, `samg_video` comes from the clone, and every
    package the nodes import (guidance, fdg's kornia, the metrics, the field preview, the bundled
    model's loading) is in requirements.txt or what those (or ComfyUI's own torch, transformers,
    tokenizers and safetensors) need; requirements.txt names no torch and no version."""
    import importlib.metadata
    import re
    import subprocess
    import sys

    pack = pack_copy(tmp_path / "custom_nodes" / "samg-video")
    code = f"ROOT = {str(pack_copy.__globals__['__file__'])!r}.rsplit('/tests/', 1)[0]\nPACK = {str(pack)!r}\n"
    done = subprocess.run([sys.executable, "-c", code + CLONE_PROBE], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["nodes"] == sorted(comfyui_samg.NODE_CLASS_MAPPINGS)
    assert seen["samg_video"].startswith(str(pack))
    lines = [line.split("#")[0].strip() for line in (pack / "requirements.txt").read_text().splitlines()]
    required = [line for line in lines if line]
    assert required and all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", r) for r in required), required  # no pins
    assert not {"torch", "torchvision", "torchaudio"} & {r.lower() for r in required}
    owners = importlib.metadata.packages_distributions()
    allowed = distribution_closure([*required, "torch"])
    norm = lambda d: re.sub(r"[-_.]+", "-", d).lower()  # noqa: E731
    imported = {m: {norm(d) for d in owners.get(m, [])} for m in seen["modules"] if m not in sys.stdlib_module_names}
    imported = {m: dists for m, dists in imported.items() if dists and "samg-video" not in dists}
    unexplained = sorted(m for m, dists in imported.items() if not dists & allowed)  # a namespace: any owner will do
    assert not unexplained, f"imported but not required: {unexplained}"
    imported = set().union(*imported.values())
    bundled = {norm(d) for m in seen["bundled"] if m not in sys.stdlib_module_names for d in owners.get(m, [])}
    bundled_allowed = distribution_closure([*required, *COMFYUI_OWN]) | optional_of("diffusers") | optional_of(
        "transformers")
    assert "diffusers" in bundled and not bundled - bundled_allowed - {"samg-video"}, bundled - bundled_allowed
    direct = {re.sub(r"[-_.]+", "-", r).lower() for r in required}
    assert direct <= imported | bundled, f"required but never imported: {sorted(direct - imported - bundled)}"


def test_the_suite_runs_from_a_checkout_folder_of_any_name(tmp_path):
    """The repository root is a ComfyUI pack (it has an __init__.py); pytest still collects the
    tests from a checkout whose folder name is no Python identifier."""
    import subprocess
    import sys

    pack = pack_copy(tmp_path / "samg-video.main")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_atomic.py"],
                          cwd=pack, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "3 passed" in done.stdout + done.stderr, done.stdout[-2000:] + done.stderr[-2000:]


# --- the real ComfyUI tier, continued: the pack as users install and queue it ------------------------

def clone_in_custom_nodes(tmp_path):
    """The repository's tracked files in tmp_path/custom_nodes/samg-video, registered with ComfyUI as
    its custom_nodes folder and loaded by its own loader (what the Manager's git install leaves)."""
    import asyncio

    _, nodes = comfyui()
    import folder_paths

    pack = pack_copy(tmp_path / "custom_nodes" / "samg-video")
    folder_paths.folder_names_and_paths["custom_nodes"] = ([str(tmp_path / "custom_nodes")], set())
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    assert asyncio.run(nodes.load_custom_node(str(pack)))
    return pack, nodes


def test_real_comfyui_loads_a_clone_and_serves_its_templates(tmp_path):
    """ComfyUI's loader takes the clone's root; its /workflow_templates route lists the five
    canvas templates under the pack's folder name, and each is served with its thumbnail; every
    node a template names is a loaded node (core or the pack's)."""
    import asyncio
    import urllib.parse

    pack, nodes = clone_in_custom_nodes(tmp_path)  # skips without ComfyUI (and its aiohttp)
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    assert set(comfyui_samg.NODE_CLASS_MAPPINGS) <= set(nodes.NODE_CLASS_MAPPINGS)
    from app.custom_node_manager import CustomNodeManager

    names = sorted(p.stem for p in (pack / "example_workflows").glob("*.json"))
    assert len(names) == 5

    async def served():
        routes, app = web.RouteTableDef(), web.Application()
        CustomNodeManager().add_routes(routes, app, [("samg-video", str(pack))])
        app.add_routes(routes)
        async with TestClient(TestServer(app)) as client:
            listed = await (await client.get("/workflow_templates")).json()
            files = {}
            for name in names:
                quoted = urllib.parse.quote(name)  # as the browser asks for a name with spaces
                canvas = await client.get(f"/api/workflow_templates/samg-video/{quoted}.json")
                thumb = await client.get(f"/api/workflow_templates/samg-video/{quoted}.jpg")
                files[name] = (canvas.status, await canvas.json(), thumb.status, (await thumb.read())[:3])
            return listed, files

    listed, files = asyncio.run(served())
    assert sorted(listed["samg-video"]) == names
    for name, (status, canvas, thumb_status, magic) in files.items():
        assert status == 200 and thumb_status == 200 and magic == b"\xff\xd8\xff", name  # a JPEG
        assert canvas["version"] and canvas["nodes"] and canvas["links"], name
        missing = {n["type"] for n in canvas["nodes"]} - set(nodes.NODE_CLASS_MAPPINGS)
        assert not missing, (name, missing)


def queue_check(nodes, graph):
    """ComfyUI's queue-time validation of an API graph (what POST /prompt runs before queueing):
    (the outputs it would run, {node id: [error details]}, which POST /prompt answers with)."""
    import asyncio

    import execution

    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("check", graph, None))
    return (outputs if valid else []), {k: [e["details"] for e in v["errors"]] for k, v in node_errors.items()}


TEMPLATE_SAMG_NODES = [(path.name, key) for path in sorted((REPO / "comfyui_samg" / "api_workflows").glob("*.json"))
                       for key, entry in json.loads(path.read_text()).items() if entry["class_type"] == "SAMGVideo"]


@pytest.mark.parametrize("name,node", TEMPLATE_SAMG_NODES)
def test_real_comfyui_refuses_a_template_whole_on_a_bad_samg_widget(tmp_path, name, node):
    """Every shipped template, with a bad value in any of its SAMG nodes, fails ComfyUI's own
    validate_prompt as a whole: no output is queued (every output, the CFG branch's included, runs
    through the Compare clips node that joins the branches), so POST /prompt answers 400 with the
    sentence under the node (node_errors); the template as shipped queues every output."""
    _, nodes = clone_in_custom_nodes(tmp_path)
    graph = json.loads((REPO / "comfyui_samg" / "api_workflows" / name).read_text())
    outputs, errors = queue_check(nodes, graph)
    assert errors == {} and "save" in outputs and "compare" in outputs
    graph[node]["inputs"].update(w_min=9.0, w_max=3.0)
    outputs, errors = queue_check(nodes, graph)
    assert outputs == [] and node in errors, errors
    assert all("w_min = 9 exceeds w_max = 3" in detail for detail in errors[node]), errors


@pytest.mark.parametrize("node,inputs,sentence", [
    ("samg", dict(w_min=9.0, w_max=3.0), "w_min = 9 exceeds w_max = 3"),
    ("samg", dict(w_min=-0.5), "w_min = -0.5 is a negative guidance scale"),
    ("samg", dict(start=0.8, end=0.2), "start = 0.8 must be below end = 0.2"),
    ("samg_stg", dict(options="w_min=9 w_max=3"), "options: w_min (9.0) must not exceed w_max (3.0)"),
    ("samg_stg", dict(options="w_min=abc"), "options: w_min must be a number, got 'abc'"),
    ("samg_stg", dict(options="scale_stg=-1"), "options: scale_stg = -1 is a negative guidance scale"),
])
def test_real_comfyui_refuses_bad_widgets_when_the_prompt_is_queued(tmp_path, node, inputs, sentence):
    """The shipped Wan workflow with one bad widget value fails ComfyUI's own validate_prompt at the
    pack's node, with the sentence that names the widget, and nothing is queued: the sentence is what
    POST /prompt answers with (node_errors, 400)."""
    _, nodes = clone_in_custom_nodes(tmp_path)
    graph = json.loads((REPO / "comfyui_samg" / "api_workflows" / "wan21_t2v_cfg_vs_samg.json").read_text())
    graph[node]["inputs"].update(inputs)
    outputs, errors = queue_check(nodes, graph)
    assert node in errors and all(sentence in detail for detail in errors[node]), errors
    assert outputs == []


def test_real_comfyui_model_and_sampler_facts_fail_before_the_first_model_call(tmp_path):
    """Layers past the tiny Wan's 2 blocks fail at the pack's node; a derived w_min above a given
    w_max and guide frames that fill the latent fail in ComfyUI's sampler before the model runs
    (the OUTER_SAMPLE check), each in one sentence naming the widget."""
    comfy, nodes = comfyui()
    _, nodes = clone_in_custom_nodes(tmp_path)
    model = tiny_wan(comfy)
    method = Loaded(nodes, "SAMGGuidanceMethod")
    with pytest.raises(ValueError, match=r"options: layers=\[99\] names block 99, but this model has 2 blocks"):
        method.patch(model, "samg+stg", "layers=[99]", "auto", 0)
    calls = []
    net = model.model.diffusion_model
    original = net.forward
    net.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    samg = Loaded(nodes, "SAMGVideo")
    (crossed,) = samg.patch(**node_inputs(model=model, w_min=DERIVED, w_max=2.0))
    with pytest.raises(ValueError, match=r"w_min = 3.33333 \(2/3 of the sampler's cfg 5\) exceeds w_max = 2"):
        sample(comfy, crossed)
    (filled,) = samg.patch(**node_inputs(model=model, w_min=2.0, w_max=8.0, guide_frames=3))
    with pytest.raises(ValueError, match="guide_frames = 3 leaves no generated frame in a latent of 3 frames"):
        sample(comfy, filled)
    assert calls == []
    net.forward = original


def test_real_comfyui_samg_stacks_with_rescale_cfg():
    """SAMG then core RescaleCFG, sampled by ComfyUI: at w_min = w_max = cfg the latents are
    RescaleCFG's alone, bit for bit; with a range they differ from both RescaleCFG alone and
    SAMG alone (each step's composition is checked against RescaleCFG's formula in the contract
    tier). SAMG then core CFGNorm at equal scales is CFGNorm alone, bit for bit."""
    import asyncio

    comfy, nodes = comfyui()
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    assert asyncio.run(nodes.load_custom_node(str(REPO / "comfyui_samg")))
    model = tiny_wan(comfy)
    rescale = nodes.NODE_CLASS_MAPPINGS["RescaleCFG"]()
    samg = Loaded(nodes, "SAMGVideo")
    (alone,) = rescale.patch(model, 0.7)
    reference = sample(comfy, alone)
    (equal,) = samg.patch(**node_inputs(model=model, w_min=5.0, w_max=5.0))
    assert torch.equal(sample(comfy, rescale.patch(equal, 0.7)[0]), reference)
    (ranged,) = samg.patch(**node_inputs(model=model, w_min=2.0, w_max=8.0))
    both = sample(comfy, rescale.patch(ranged, 0.7)[0])
    assert torch.isfinite(both).all()
    assert (both - reference).abs().max() > 1e-3 and (both - sample(comfy, ranged)).abs().max() > 1e-3
    norm = nodes.NODE_CLASS_MAPPINGS["CFGNorm"]  # core's post-CFG node: the same at equal scales
    assert torch.equal(sample(comfy, norm.execute(equal, 0.5)[0]), sample(comfy, norm.execute(model, 0.5)[0]))


def test_workflow_ui_checks_everything_before_it_writes(tmp_path):
    """`python -m comfyui_samg.workflow_ui`: --help writes nothing; malformed JSON, a graph nested
    10,000 deep, a link to a missing node, a cycle, an output folder equal to the input folder, a
    missing COMFYUI_PATH and one that is no ComfyUI checkout are each one line on stderr with exit code 2,
    and the folders are as they were."""
    import os
    import subprocess
    import sys

    def run_ui(*args, env=None):
        return subprocess.run([sys.executable, "-m", "comfyui_samg.workflow_ui", *args], capture_output=True,
                              text=True, timeout=120, cwd=REPO,
                              env={k: v for k, v in {**os.environ, **(env or {})}.items() if k != "COMFYUI_PATH"})

    templates = {p: p.read_bytes() for p in (REPO / "example_workflows").iterdir()}
    shown = run_ui("--help")
    assert shown.returncode == 0 and "--out" in shown.stdout
    cases = {"bad.json": "{not json", "deep.json": "[" * 10000 + "]" * 10000,
             "dangling.json": json.dumps({"a": {"class_type": "KSampler", "inputs": {"model": ["b", 0]}}}),
             "cycle.json": json.dumps({"a": {"class_type": "X", "inputs": {"i": ["b", 0]}},
                                       "b": {"class_type": "X", "inputs": {"i": ["a", 0]}}})}
    wants = {"bad.json": "is not a JSON workflow", "deep.json": "is not a JSON workflow",
             "dangling.json": "links from node 'b', which the graph does not have",
             "cycle.json": "the graph has a cycle"}
    for name, text in cases.items():
        folder, out = tmp_path / name.split(".")[0], tmp_path / (name.split(".")[0] + "_out")
        folder.mkdir()
        (folder / name).write_text(text)
        done = run_ui("--api", str(folder), "--out", str(out))
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and wants[name] in done.stderr, done.stderr
        assert not out.exists() and (folder / name).read_text() == text
    api = REPO / "comfyui_samg" / "api_workflows"
    same = run_ui("--api", str(api), "--out", str(api))
    assert same.returncode == 2 and "is the --api folder" in same.stderr and same.stderr.count("\n") == 1
    unset = run_ui("--out", str(tmp_path / "out"))
    assert unset.returncode == 2 and "COMFYUI_PATH" in unset.stderr and not (tmp_path / "out").exists()
    nowhere = subprocess.run([sys.executable, "-m", "comfyui_samg.workflow_ui", "--out", str(tmp_path / "out")],
                             capture_output=True, text=True, timeout=120, cwd=REPO,
                             env={**os.environ, "COMFYUI_PATH": str(tmp_path / "nonexistent")})
    assert nowhere.returncode == 2 and nowhere.stderr.count("\n") == 1, nowhere.stderr
    assert "is not a ComfyUI checkout" in nowhere.stderr and not (tmp_path / "out").exists()
    assert {p: p.read_bytes() for p in (REPO / "example_workflows").iterdir()} == templates


def sample_with(comfy, model, sampler: str, cfg=5.0, steps=4, custom=False, batch=1):
    """Latents of a tiny Wan run with `sampler` through KSampler's path or SamplerCustomAdvanced's."""
    g = torch.Generator().manual_seed(0)
    latent = torch.zeros(batch, 16, 3, 8, 8)
    noise = torch.randn(latent.shape, generator=g)
    positive, negative = [[torch.randn(1, 8, 4096, generator=g), {}]], [[torch.randn(1, 8, 4096, generator=g), {}]]
    if not custom:
        return comfy.sample.sample(model, noise, steps, cfg, sampler, "simple", positive, negative, latent, seed=0,
                                   disable_pbar=True)
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", steps)
    return guider.sample(noise, latent, comfy.samplers.sampler_object(sampler), sigmas, seed=0, disable_pbar=True)


def test_real_comfyui_every_sampler_equals_its_cfg_and_runs_every_skip_policy():
    """Against ComfyUI itself, for every name in KSampler.SAMPLERS (first and second order, midpoint,
    adaptive, ancestral, SDE and the CFG++ variants): SAMG (video) at w_min == w_max == cfg gives the
    sampler's own CFG bit for bit, through KSampler's path and SamplerCustomAdvanced's; with every:2 and
    adaptive:0.02 it samples to finite latents, its run counts rows (2 per computed evaluation, 1
    otherwise, over the steps it planned) and never divides by a zero step (the run's one rule)."""
    import asyncio

    comfy, nodes = comfyui()
    assert asyncio.run(nodes.load_custom_node(str(Path(__file__).resolve().parents[1] / "comfyui_samg")))
    model = tiny_wan(comfy)
    samg = Loaded(nodes, "SAMGVideo")
    (equal,) = samg.patch(**node_inputs(model=model, w_min=5.0, w_max=5.0, temporal_sigma=0.0))
    import comfy.samplers  # noqa: F811  (the package comfyui() returned, its samplers module)

    for sampler in comfy.samplers.KSampler.SAMPLERS:
        for custom in (False, True):
            builtin = sample_with(comfy, model, sampler, custom=custom)
            assert torch.equal(sample_with(comfy, equal, sampler, custom=custom), builtin), (sampler, custom)
        for policy in ("every:2", "adaptive:0.02"):
            (skipping,) = samg.patch(**node_inputs(model=model, w_min=2.0, w_max=8.0, skip=policy))
            seen = []

            def count(apply_model, args, seen=seen):
                seen.append(len(args["cond_or_uncond"]) * args["input"].shape[0] // len(args["cond_or_uncond"]))
                return apply_model(args["input"], args["timestep"], **args["c"])
            skipping.set_model_unet_function_wrapper(count)
            latents = sample_with(comfy, skipping, sampler)
            fn = nodes_pack_function(skipping)
            assert torch.isfinite(latents).all(), (sampler, policy)
            # the rows the model computed (counted where ComfyUI runs it) = the run's count = its plans' cost
            assert sum(seen) == fn.rows == sum(fn.run.clip_rows), (sampler, policy, seen)
            if policy == "every:2":
                assert [p[0] for p in fn.run.plans][:2] == ["compute", "reuse"], sampler


def nodes_pack_function(model):
    """The pack's pre-CFG object on a MODEL (the pack as ComfyUI loaded it: another module object)."""
    fns = [f for f in model.model_options["sampler_pre_cfg_function"] if hasattr(f, "run")]
    assert len(fns) == 1
    return fns[0]


def test_real_comfyui_field_preview_shows_the_run_whatever_is_stacked_after_it():
    """UNET -> SAMG (video) -> RescaleCFG (or SkipLayerGuidanceDiT) -> KSampler, the preview's model
    from the SAMG node (as docs/comfyui.md wires it): ComfyUI's clone() deep-copies model_options, and
    the preview still reads the run that sampled (one heatmap per latent frame)."""
    import asyncio

    comfy, nodes = comfyui()
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    assert asyncio.run(nodes.load_custom_node(str(Path(__file__).resolve().parents[1] / "comfyui_samg")))
    model = tiny_wan(comfy)
    (patched,) = Loaded(nodes, "SAMGVideo").patch(**node_inputs(model=model, w_min=2.0, w_max=8.0))
    rescale = nodes.NODE_CLASS_MAPPINGS["RescaleCFG"]
    slg = nodes.NODE_CLASS_MAPPINGS["SkipLayerGuidanceDiT"]
    stacked = [rescale().patch(patched, 0.7)[0] if not hasattr(rescale, "execute")
               else rescale.execute(patched, 0.7)[0],
               slg.execute(patched, scale=1.5, start_percent=0.0, end_percent=1.0, double_layers="1",
                           single_layers="")[0]]
    for after in stacked:
        latents = sample(comfy, after)
        (images,) = Loaded(nodes, "SAMGFieldPreview").preview(patched, {"samples": latents}, -1, 4)
        assert images.shape[0] == 3 and images.shape[-1] == 3
        assert len(nodes_pack_function(patched).fields) == 4


def test_real_comfyui_a_clip_in_a_batch_keeps_its_own_plan_and_latents():
    """A latent batch of two clips with prompts of their own under the adaptive policy: clip 1's prompt lies
    next to the negative one (a small, steady delta: it reuses), clip 0's does not (it computes); ComfyUI
    computes the unconditional rows of the computing clip only, and the other clip's plan, rows and
    latents are those it gets alone (to float rounding)."""
    import asyncio

    comfy, nodes = comfyui()
    assert asyncio.run(nodes.load_custom_node(str(Path(__file__).resolve().parents[1] / "comfyui_samg")))
    model = tiny_wan(comfy)
    g = torch.Generator().manual_seed(0)
    positive, negative = torch.randn(2, 8, 4096, generator=g), torch.randn(1, 8, 4096, generator=g)
    positive[1] = negative[0] + 0.01 * positive[1]
    noise = torch.randn(2, 16, 3, 8, 8, generator=g)

    def run(clips):
        (patched,) = Loaded(nodes, "SAMGVideo").patch(**node_inputs(model=model, w_min=2.0, w_max=8.0,
                                                                    skip="adaptive:0.0001,max_reuse=3"))
        out = comfy.sample.sample(patched, noise[clips], 10, 5.0, "euler", "simple", [[positive[clips], {}]],
                                  [[negative, {}]], torch.zeros(len(clips), 16, 3, 8, 8), seed=0, disable_pbar=True)
        return out, nodes_pack_function(patched).run

    pair, both = run([0, 1])
    assert both.clip_plans(0) != both.clip_plans(1) and "reuse" in both.clip_plans(1)  # they plan differently
    assert both.rows == sum(both.clip_rows) < 2 * 2 * both.evaluations  # some unconditional rows left out
    for clip in (0, 1):
        alone, run_alone = run([clip])
        assert run_alone.clip_plans(0) == both.clip_plans(clip) and run_alone.clip_rows[0] == both.clip_rows[clip]
        assert (pair[clip:clip + 1] - alone).abs().max() <= 1e-4 * alone.abs().max(), clip


# --- the Comfy Registry: what `comfy node publish` reads and packs ------------------------------------

def registry_config(root):
    """pyproject.toml as comfy-cli's `extract_node_configuration` reads it for the Registry: the literal
    [project].dependencies (less comfyui-frontend-package), the [project.urls] and [tool.comfy]."""
    import tomllib

    data = tomllib.loads((root / "pyproject.toml").read_text())
    project, comfy = data["project"], data["tool"]["comfy"]
    dependencies = [d for d in project.get("dependencies", []) if not d.startswith("comfyui-frontend-package")]
    return dependencies, project.get("urls", {}), comfy


def test_the_registry_listing_adds_no_torch_and_no_pins_and_names_its_icon():
    """The Registry lists [project].dependencies as the pack's: none (the library's are dynamic, in
    library-requirements.txt), so a Registry install adds what requirements.txt names (no torch, no
    pins: the clone test); the listing has a publisher, a display name, a Repository URL and an icon
    URL that points at an image shipped in the repository (PNG, at most 800 x 400)."""
    from PIL import Image

    dependencies, urls, comfy = registry_config(REPO)
    assert dependencies == []
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert urls["Repository"].startswith("https://github.com/")
    prefix = "https://raw.githubusercontent.com/" + urls["Repository"].removeprefix("https://github.com/") + "/main/"
    assert comfy["Icon"].startswith(prefix)
    icon = REPO / comfy["Icon"].removeprefix(prefix)
    with Image.open(icon) as image:
        assert image.format == "PNG" and image.width <= 800 and image.height <= 400
    assert icon.relative_to(REPO).as_posix() in subprocess_lines(["git", "ls-files"], REPO)


def subprocess_lines(command, cwd) -> list[str]:
    import subprocess

    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout.splitlines()


def test_real_comfy_cli_reads_the_listing_and_its_zip_loads_as_a_pack(tmp_path):
    """With comfy-cli (`pip install comfy-cli`): its own `extract_node_configuration` reads no
    dependencies, the icon and the repository; its own `zip_files` (what `comfy node pack` and
    `publish` upload) packs the git-tracked files less .comfyignore's: the nodes, the library with the
    bundled model's weights and the templates, no tests or studies; that zip, unpacked into
    custom_nodes/ as a Registry install does, loads in a Python without samg-video and runs the
    nodes (the clone probe)."""
    import os
    import subprocess
    import sys
    import zipfile

    config_parser = pytest.importorskip("comfy_cli.registry.config_parser", reason="needs comfy-cli")
    from comfy_cli import file_utils

    work = pack_copy(tmp_path / "checkout")
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=work, check=True, capture_output=True)
    here = os.getcwd()
    os.chdir(work)
    try:
        config = config_parser.extract_node_configuration("pyproject.toml")
        file_utils.zip_files(str(tmp_path / "node.zip"))
    finally:
        os.chdir(here)
    assert config.project.dependencies == [] and config.project.urls.repository.startswith("https://github.com/")
    assert config.tool_comfy.icon.endswith("docs/images/icon.png") and config.tool_comfy.publisher_id
    names = zipfile.ZipFile(tmp_path / "node.zip").namelist()
    assert {"__init__.py", "requirements.txt", "comfyui_samg/nodes.py", "comfyui_samg/bundled.py",
            "samg_video/models/demo-t2v/unet/diffusion_pytorch_model.safetensors"} <= set(names)
    assert any(n.startswith("example_workflows/Bundled model") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "evaluation/", "benchmarks/"))]
    pack = tmp_path / "custom_nodes" / "samg-video"
    zipfile.ZipFile(tmp_path / "node.zip").extractall(pack)
    code = f"ROOT = {str(REPO)!r}\nPACK = {str(pack)!r}\n"
    done = subprocess.run([sys.executable, "-c", code + CLONE_PROBE], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["nodes"] == sorted(comfyui_samg.NODE_CLASS_MAPPINGS) and seen["samg_video"].startswith(str(pack))


# --- the bundled model in ComfyUI -----------------------------------------------------------------------

def bundled(comfy, nodes):
    """The pack's Load bundled model node's (MODEL, CLIP, VAE), ComfyUI's conditioning of a prompt and
    the empty prompt, and an empty 8-frame 32 x 32 clip."""
    loaded = Loaded(nodes, "SAMGLoadBundledModel").load("")
    model, clip, vae = loaded
    positive = nodes.CLIPTextEncode().encode(clip, "a red circle moving right and a blue square moving up")[0]
    negative = nodes.CLIPTextEncode().encode(clip, "")[0]
    (latent,) = Loaded(nodes, "SAMGEmptyBundledClip").empty(32, 32, 8, 1)
    return model, vae, positive, negative, latent


def load_pack(nodes):
    import asyncio

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    assert asyncio.run(nodes.load_custom_node(str(REPO / "comfyui_samg")))


@pytest.mark.parametrize("sampler,scheduler", [("euler", "ddim_uniform"), ("heun", "karras"), ("dpmpp_2m", "normal"),
                                               ("uni_pc", "simple"), ("ddim", "ddim_uniform"),
                                               ("euler_ancestral", "sgm_uniform")])
def test_real_comfyui_bundled_model_equal_scales_are_its_cfg(sampler, scheduler):
    """The bundled model, loaded by the pack's node, samples through KSampler; SAMG (video) at
    w_min = w_max = cfg equals KSampler's own CFG bit for bit with first- and second-order, multistep
    and ancestral samplers; a range changes the clip."""
    comfy, nodes = comfyui()
    load_pack(nodes)
    model, _, positive, negative, latent = bundled(comfy, nodes)
    samg = Loaded(nodes, "SAMGVideo")

    def sample(m):
        return nodes.common_ksampler(m, 3, 8, 2.0, sampler, scheduler, positive, negative, latent)[0]["samples"]

    cfg = sample(model)
    (equal,) = samg.patch(**node_inputs(model=model, w_min=2.0, w_max=2.0))
    (ranged,) = samg.patch(**node_inputs(model=model, w_min=1.0, w_max=3.0))
    assert cfg.shape == (1, 3, 8, 32, 32) and torch.isfinite(cfg).all()
    assert torch.equal(sample(equal), cfg)
    assert (sample(ranged) - cfg).abs().max() > 1e-3


def test_real_comfyui_bundled_model_is_the_diffusers_pipelines_model():
    """ComfyUI's euler sampler on the ddim_uniform schedule is DDIM (eta 0) on the same timesteps, so
    the bundled model sampled in ComfyUI (its schedule, prediction type, text and pixel format as the
    loader maps them) draws the clip the diffusers pipeline draws from the same noise, up to DDIM's
    last step (diffusers ends at alpha_bar[0], ComfyUI at sigma 0): measured 0.022 at most on [0, 1]
    pixels; the bundled scorer reads the same objects in both."""
    comfy, nodes = comfyui()
    load_pack(nodes)
    model, vae, positive, negative, latent = bundled(comfy, nodes)
    import comfy.sample

    from samg_video.demo import score
    from samg_video.demo.pipeline import load_pipeline

    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(0))
    ours = comfy.sample.sample(model, noise, 25, 2.0, "euler", "ddim_uniform", positive, negative, latent["samples"],
                               seed=0, disable_pbar=True)
    frames = nodes.VAEDecode().decode(vae, {"samples": ours})[0].numpy()
    pipe = load_pipeline()
    pipe.set_progress_bar_config(disable=True)
    prompt = "a red circle moving right and a blue square moving up"
    want = pipe(prompt, guidance_scale=2.0, num_inference_steps=25, latents=noise).frames[0]
    assert frames.shape == want.shape == (8, 32, 32, 3)
    assert abs(frames - want).max() < 0.05
    read = lambda clip: [(d["color"], d["shape"], d["motion"]) for d in score(clip, prompt)["detected"]]  # noqa: E731
    assert read(frames) == read(want)


def test_real_comfyui_runs_the_bundled_model_template(tmp_path):
    """The shipped bundled-model template runs headless through ComfyUI's executor, with no model
    file anywhere: the CFG and SAMG clips side by side in one saved video, each clip's metrics on the
    Compare clips node, the scale field per frame; an unknown prompt word is one sentence."""
    _, nodes = comfyui()
    load_pack(nodes)
    from comfyui_samg import workflow_ui

    graph = json.loads((REPO / "comfyui_samg" / "api_workflows" / "bundled_model_cfg_vs_samg.json").read_text())
    shown = workflow_ui.execute(graph, tmp_path)
    frames = workflow_ui.saved_frames(shown, tmp_path)
    assert len(frames) == 8 and frames[0].shape[1] == 2 * 32 * 8 + 4
    measured = json.loads(shown["compare"]["text"][0])
    assert list(measured) == ["CFG 2", "SAMG 1-3"]
    assert all(r["frames"] == 8 and r["resolution"] == "32x32" for r in measured.values())
    assert len(shown["show_field"]["images"]) == 8
    graph["positive"]["inputs"]["text"] = "a purple circle moving left"
    with pytest.raises(ValueError, match="Unknown word 'purple'"):
        workflow_ui.execute(graph, tmp_path)


def test_the_templates_category_reads_samg_video_whatever_the_folder(tmp_path):
    """ComfyUI's Templates dialog names a pack's category by its folder unless the pack's locales
    translate `templateWorkflows.category.FOLDER` (dots as "_", the frontend's key): a clone named
    otherwise gets that translation, written whole; one named samg-video needs none; a folder that
    cannot be written to is left as it is."""
    from comfyui_samg import CATEGORY, name_templates_category

    same = tmp_path / CATEGORY
    same.mkdir()
    name_templates_category(same)
    assert not (same / "locales").exists()
    other = tmp_path / "ComfyUI-SAMG.v2"
    other.mkdir()
    name_templates_category(other)
    written = other / "locales" / "en" / "main.json"
    assert json.loads(written.read_text()) == {"templateWorkflows": {"category": {"ComfyUI-SAMG_v2": "samg-video"}}}
    assert [p.name for p in written.parent.iterdir()] == ["main.json"]
    blocked = tmp_path / "blocked"  # its locales/ cannot be made (a file has the name): no error, nothing changed
    blocked.mkdir()
    (blocked / "locales").write_text("kept")
    name_templates_category(blocked)
    assert (blocked / "locales").read_text() == "kept"


def test_node_list_names_every_node_for_comfyui_managers_scanner():
    """ComfyUI-Manager's scanner finds a pack's nodes from a literal NODE_CLASS_MAPPINGS, or from
    node_list.json where the pack registers them otherwise (the V3 comfy_entrypoint here): the file
    names exactly the pack's nodes, each with its display name and description."""
    from comfyui_samg.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    listed = json.loads((REPO / "node_list.json").read_text())
    names = NODE_DISPLAY_NAME_MAPPINGS
    assert listed == {k: f"{names[k]}: {cls.DESCRIPTION}" for k, cls in NODE_CLASS_MAPPINGS.items()}


def test_a_sampler_without_a_schedule_is_followed_level_by_level():
    """A sampler outside comfy.samplers hands the model no `sample_sigmas`: the run follows the levels as
    they come (`GuidanceRun.follow`), so each new lower sigma is the next step and the step EMA moves
    as it does with the schedule (the same latents, bit for bit); a repeated level stays on its step
    and a level above the first starts a new run."""
    from comfyui_samg.nodes import pack_function

    inputs = dict(w_min=2.0, w_max=8.0, step_ema=0.5)
    (scheduled,) = SAMGVideo().patch(**node_inputs(**inputs))
    (unscheduled,) = SAMGVideo().patch(**node_inputs(**inputs))
    want, _ = run(scheduled)
    got, _ = run(unscheduled, schedule=False)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    fn = pack_function(unscheduled)
    assert fn.run.num_steps == 4 and fn.run.step == 3
    fn.begin(torch.tensor([0.25]), {}, 1)  # Heun's second evaluation at the last level: the same step
    assert fn.run.step == 3 and fn.run.num_steps == 4
    fn.begin(torch.tensor([1.0]), {}, 1)  # back at the top: a new run
    assert fn.run.step == 0 and fn.run.num_steps == 1
    # what counts in fractions of the run cannot be placed without the run's length: refused, not misplaced
    for inputs, names in ((dict(start=0.0, end=0.5), "interval is"), (dict(skip="every:2,start=0.3"),
                                                                      "skip start / stop is"),
                          (dict(start=0.2, skip="interval:0-0.5"), "interval, the skip interval are")):
        (patched,) = SAMGVideo().patch(**node_inputs(**inputs))
        with pytest.raises(SettingError, match=f"^{names} set as a fraction of the run, but this sampler gives no "
                                               "schedule"):
            run(patched, schedule=False)
        run(patched)  # with ComfyUI's schedule it runs
    (patched,) = GuidanceMethod().patch(**method_inputs(method="dynamic_cfg", options="scale=4"))
    with pytest.raises(SettingError, match=r"^the scale's schedule \(t / T\) is set as a fraction of the run"):
        run(patched, schedule=False)
    (patched,) = GuidanceMethod().patch(**method_inputs(method="interval", options="interval=[0,5] by=sigma"))
    run(patched, schedule=False)  # a sigma interval needs no run length
