"""Skip policies (`guidance.skip`, `apply(..., skip=...)`): steps without the unconditional pass.

Pure policy plans against what each policy's definition gives by hand; on every registry
stand-in, the denoiser work actually done (counted by a wrapper of the denoiser's own forward,
installed before `apply`, so only real computations reach it) is the policy's, a reused step
guides with the last computed delta, and the `interval` policy equals the `interval` method
(which computes every unconditional pass) on the same run.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import pytest
import torch
from test_diffusers_pipelines import GUIDER, TWO_CALLS, built, denoiser  # noqa: F401  (`built`: the stand-in fixture)

from samg_video.guidance.cfg import CFG
from samg_video.guidance.skip import (AdaptiveSkip, ErrorSkip, EverySkip, SkipState, parse_policy, reweight_bands,
                                     work_ratio)
from samg_video.pipelines import apply

STEPS = 4


def test_every_plans_every_nth_step_inside_its_range():
    policy = EverySkip(n=3, start=0.25)
    state, plans = SkipState(), []
    for step in range(8):
        state = policy.entered(step, 8, state)
        plan = policy.plan(step, 8, state)
        plans.append(plan)
        state = policy.observe(state, step, torch.ones(1, 1, 1, 1, 1) * step if plan == "compute" else None, plan)
    # steps 0, 1 are before 0.25 (computed); from step 2 on: every third step computes
    assert plans == ["compute", "compute", "compute", "reuse", "reuse", "compute", "reuse", "reuse"]
    assert work_ratio(plans) == pytest.approx((4 * 2 + 4 * 1) / 16)


def test_adaptive_reuses_once_the_delta_change_relative_to_the_prediction_is_small():
    policy = AdaptiveSkip(threshold=0.11, max_reuse=2)
    cond = torch.full((1, 1, 1, 2, 2), 10.0)  # ||c|| = 20
    state = SkipState()
    for step, level in enumerate([0.0, 1.0]):  # ||d_1 - d_0|| = 2 per step: r = 2 / 20 = 0.1 <= 0.11
        state = policy.observe(state, step, torch.full_like(cond, level), "compute", cond)
    assert policy.plan(2, 10, state) == "reuse"
    state = policy.observe(state, 2, None, "reuse")
    assert policy.plan(3, 10, state) == "reuse"
    state = policy.observe(state, 3, None, "reuse")
    assert policy.plan(4, 10, state) == "compute"  # max_reuse reached: measure again
    steep = policy.observe(SkipState(), 0, torch.zeros_like(cond), "compute", cond)
    steep = policy.observe(steep, 1, torch.full_like(cond, 1.5), "compute", cond)  # r = 0.15 > 0.11
    assert policy.plan(2, 10, steep) == "compute"
    linear = AdaptiveSkip(threshold=0.11, estimate_by="linear")
    # d_1 + (4 - 1)(d_1 - d_0) / (1 - 0)
    torch.testing.assert_close(linear.estimate(state, 4), torch.full_like(cond, 4.0))


def test_error_policy_accumulates_the_predicted_error_and_rises_with_the_conditional_drift():
    """By hand: c = 10 then 11 on four cells (||c|| = 20, 22), deltas 0 then 1 (||d_1 - d_0|| = 2), so
    r = 2 / 22 per step and g_1 = ||c_1 - c_0|| / ||c_0|| = 2 / 20 = 0.1 at the last computed step."""
    policy = ErrorSkip(tolerance=0.25)
    ones = torch.ones(1, 1, 1, 2, 2)
    state = SkipState()
    assert policy.plan(0, 10, state) == "compute"
    state = policy.observe(state, 0, 0 * ones, "compute", 10 * ones)
    assert policy.plan(1, 10, state) == "compute" and policy.signal(1, 10, state) is None  # one delta: no rate
    state = policy.observe(state, 1, 1 * ones, "compute", 11 * ones)
    r = 2 / 22
    assert policy.signal(2, 10, state) == pytest.approx(r) and policy.plan(2, 10, state) == "reuse"
    steady = policy.observe(state, 2, None, "reuse", 11 * ones)  # g_2 = 0: the error grows by r a step
    assert steady.error == pytest.approx(r)
    assert policy.signal(3, 10, steady) == pytest.approx(2 * r) and policy.plan(3, 10, steady) == "reuse"
    turning = policy.observe(state, 2, None, "reuse", 14.3 * ones)  # g_2 = 3.3 * 2 / 22 = 0.3 = 3 g_1
    assert policy.signal(3, 10, turning) == pytest.approx(r + 3 * r) and policy.plan(3, 10, turning) == "compute"
    assert policy.plan(9, 10, steady) == "compute"  # the last step always computes
    computed = policy.observe(turning, 3, 5 * ones, "compute", 15 * ones)
    assert computed.error == 0 and computed.drift_at_last == pytest.approx(float(0.7 * 2 / (14.3 * 2)))
    assert policy.signal(4, 10, computed) == pytest.approx(8 / 30 / 2)  # ||d_3 - d_1|| = 8, ||c_3|| = 30, 2 steps
    assert parse_policy("error:0.3").label() == "error 0.3" and parse_policy("error") == ErrorSkip()


def test_band_reweighting_is_fastercaches_split():
    torch.manual_seed(0)
    d = torch.randn(1, 2, 3, 10, 10)
    assert reweight_bands(d, 1.0, 1.0) is d
    torch.testing.assert_close(reweight_bands(d, 2.0, 2.0), 2 * d, atol=1e-5, rtol=1e-5)
    low = reweight_bands(d, 1.0, 0.0)  # the disc of radius 2 around the centre of the shifted spectrum
    spectrum = torch.fft.fftshift(torch.fft.fft2(low), dim=(-2, -1))
    y, x = torch.meshgrid(torch.arange(10), torch.arange(10), indexing="ij")
    outside = (x - 5) ** 2 + (y - 5) ** 2 > 4
    assert spectrum[..., outside].abs().max() < 1e-4 and spectrum[..., ~outside].abs().max() > 0.1


@pytest.mark.parametrize("spec, message", [
    ("every:1", "n must be an integer >= 2"), ("every:x", "n must be a"), ("sometimes:3", "Unknown skip policy"),
    ("adaptive:0", "threshold must be in"), ("every:3,speed=2", "Unknown setting 'speed'"),
    ("interval:0.8-0.2", "start / stop"), ("interval:0.5", "interval:START-STOP"), ("interval:0-1", "skips nothing"),
    (3, "skip must be a policy"), ({"n": 3}, "needs a 'policy' key")])
def test_a_bad_policy_is_one_sentence(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_policy(spec)


def test_policy_specs_round_trip_through_their_dict():
    for spec in ("every:3,alpha_low=1.1", "adaptive:0.02,max_reuse=3,estimate_by=linear", "interval:0.2-0.8"):
        policy = parse_policy(spec)
        assert parse_policy(policy.to_dict()) == policy
    assert parse_policy("off") is None and parse_policy(None) is None
    assert parse_policy("every:3,alpha_low=1.1").label() == "every 3 alpha_low=1.1"


@dataclass
class Recording(CFG):
    """CFG that keeps every delta it is handed (canonical float32)."""

    def combine(self, pred_uncond, pred_cond, ctx, state):
        self.seen.append((pred_cond - pred_uncond).clone())
        return super().combine(pred_uncond, pred_cond, ctx, state)


def call_rows(args, kwargs) -> int:
    for name in ("sample", "hidden_states"):
        if name in kwargs:
            return kwargs[name].shape[0]
    return args[0].shape[0]


class Counted:
    """The denoiser's own forward, wrapped before `apply`: counts the computations that happen."""

    def __init__(self, module):
        self.module, self.calls, self.rows, self.perturbed = module, 0, 0, 0
        self.forward = module.forward
        module.forward = self

    def __call__(self, *args, **kwargs):
        if kwargs.get("spatio_temporal_guidance_blocks") or kwargs.get("isolate_modalities"):
            self.perturbed += 1  # LTX-2's own perturbed calls: the pipeline's, outside CFG
        else:
            self.calls += 1
            self.rows += call_rows(args, kwargs)
        return self.forward(*args, **kwargs)

    def remove(self):
        del self.module.forward


def generate(pipe, kwargs, steps=STEPS, w=5.0):
    true_cfg = "true_cfg_scale" in inspect.signature(type(pipe).__call__).parameters
    scale = {} if type(pipe).__name__ in GUIDER else {"true_cfg_scale": w} if true_cfg else {"guidance_scale": w}
    out = pipe(prompt="a red fox runs on the beach", num_inference_steps=steps, output_type="latent",
               generator=torch.Generator().manual_seed(0), **scale, **kwargs)
    frames = out.frames if hasattr(out, "frames") else out.images
    return frames.clone() if torch.is_tensor(frames) else torch.as_tensor(frames)


def expected_work(pipe, plans: list[str], batch: int = 1) -> tuple[int, int]:
    """(calls, rows) the plans cost: two calls per computed step where the pipeline makes two (one
    otherwise); one batched call per step, of 2B rows when computed and B otherwise."""
    two = type(pipe).__name__ in TWO_CALLS
    computed = plans.count("compute")
    if two:
        calls = 2 * computed + (len(plans) - computed)
        return calls, calls * batch
    return len(plans), batch * (2 * computed + (len(plans) - computed))


def test_every_policy_does_the_counted_work_and_reuses_the_last_delta(built):  # noqa: F811  (the imported fixture)
    pipe, kwargs, _ = built
    counted = [Counted(m) for m in (denoiser(pipe), getattr(pipe, "transformer_2", None)) if m is not None]
    method = Recording(scale=5.0)
    method.seen, infos = [], []
    try:
        with apply(pipe, method, skip="every:2", callback=infos.append) as handle:
            generate(pipe, kwargs)
    finally:
        for c in counted:
            c.remove()
    plans = [i.uncond for i in infos]  # per evaluation (PNDM evaluates its second level twice: one step)
    assert list({i.step: i.uncond for i in infos}.values())[:3] == ["compute", "reuse", "compute"]
    work = sum(c.calls for c in counted), sum(c.rows for c in counted)
    perturbed = sum(c.perturbed for c in counted)
    assert work == expected_work(pipe, plans) == (handle.calls - perturbed, handle.rows - perturbed)
    for step, plan in enumerate(plans):
        if plan == "reuse":  # c - u^ = the delta of the step before (to float32 rounding of c - (c - d))
            torch.testing.assert_close(method.seen[step], method.seen[step - 1], atol=1e-5, rtol=1e-4)
    first, second = [k for k, p in enumerate(plans) if p == "compute"][:2]
    assert not (method.seen[first] - method.seen[second]).abs().max() < 1e-7  # a computed step measures anew


def test_interval_policy_equals_the_interval_method_with_fewer_calls(built):  # noqa: F811  (the imported fixture)
    """Except where the denoiser returns a second prediction (LTX-2's audio): the interval method
    leaves it to the pipeline's own CFG on every step, while a dropped step has no unconditional
    pass for it either (the counts still hold there)."""
    pipe, kwargs, _ = built
    second_output = type(pipe).__name__.startswith("LTX2")
    with apply(pipe, "interval", scale=5.0, interval=(0.3, 1.0)) as full:
        reference = generate(pipe, kwargs)
    infos = []
    with apply(pipe, "cfg", scale=5.0, skip="interval:0.3-1", callback=infos.append) as skipped:
        out = generate(pipe, kwargs)
    plans = [i.uncond for i in infos]
    assert "drop" in plans and "compute" in plans
    saved = plans.count("drop")  # each dropped step saves one unconditional call, or the batch's uncond rows
    assert (full.calls - skipped.calls, full.rows - skipped.rows) == (saved if type(pipe).__name__ in TWO_CALLS else 0,
                                                                      saved)
    if not second_output:
        torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)


def test_policy_off_leaves_forward_alone_and_removal_restores_it(built):  # noqa: F811  (the imported fixture)
    pipe, kwargs, _ = built
    module = denoiser(pipe)
    with apply(pipe, "samg", skip="every:2"):  # a guider pipeline's policy lives in its guider slot
        assert ("forward" in vars(module)) == (type(pipe).__name__ not in GUIDER)
    assert "forward" not in vars(module)
    with apply(pipe, "samg", skip=None):
        assert "forward" not in vars(module)


def test_a_diffusers_cache_and_a_policy_are_refused_together(standin_root):
    from conftest import load_standin
    from diffusers import FasterCacheConfig, FirstBlockCacheConfig

    pipe = load_standin("wan2.1-t2v-1.3b", standin_root)
    for config in (FirstBlockCacheConfig(threshold=0.05),
                   FasterCacheConfig(spatial_attention_block_skip_range=2, current_timestep_callback=lambda: 500)):
        pipe.transformer.enable_cache(config)
        with pytest.raises(ValueError, match=f"{type(config).__name__} enabled.*disable_cache"):
            apply(pipe, "samg", skip="every:2")
        with apply(pipe, "samg"):  # without a policy the hook wraps the cached denoiser as any other
            pass
        pipe.transformer.disable_cache()
    with apply(pipe, "samg", skip="every:2"):
        pass
