"""The guidance run (`samg_video.guidance.run`): its clock, its one state rule, each clip's own plan,
and the same run in every host: the bundled pipeline with diffusers' schedulers (first and second
order), a clip alone and in a batch under every skip policy, the guider slots."""

from __future__ import annotations

import copy

import diffusers
import pytest
import torch

from samg_video import guidance
from samg_video.guidance.run import GuidanceRun, step_index, stride_schedule
from samg_video.guidance.skip import parse_policy

SCHEDULE = torch.tensor([10.0, 5.0, 2.0, 1.0, 0.5, 0.0], dtype=torch.float64)  # 5 steps


def test_an_evaluation_belongs_to_the_step_whose_level_it_is_at_or_below():
    """i(l) = max{i < n : l_i >= l}: on the schedule, that step; between two levels (a midpoint), the
    step above; below the last level, the last step; above the first, step 0."""
    levels = [20.0, 10.0, 7.0, 5.0, 3.0, 2.0, 1.0, 0.7, 0.5, 0.2, 0.0]
    assert [step_index(SCHEDULE, v) for v in levels] == [0, 0, 0, 1, 1, 2, 3, 3, 4, 4, 4]
    assert step_index(SCHEDULE, float("inf")) == 0  # a zero-terminal-SNR start
    assert stride_schedule([9, 7, 7, 5, 5, 3, 3], order=2) == [9, 7, 5, 3, -3]  # Heun's table: every 2nd level
    assert stride_schedule([751, 501, 501, 251, 1], order=1)[:4] == [751, 501, 251, 1]  # PNDM's repeat: one step


def drive(run, levels, batch=1, seed=0, scale=1.0):
    """Evaluations at `levels` with predictions drawn per evaluation; returns the guided outputs."""
    g = torch.Generator().manual_seed(seed)
    outs = []
    for level in levels:
        run.begin(level, batch)
        c = torch.randn(batch, 4, 3, 6, 6, generator=g)
        u = c - scale * torch.randn(batch, 4, 3, 6, 6, generator=g)
        rows = run.uncond_rows()
        u = run.fill_uncond(u[rows] if rows else None, c, "BCFHW")
        outs.append(run.guide(u, c, layout="BCFHW"))
    return outs


def test_a_step_evaluated_twice_starts_both_from_the_state_of_the_step_before():
    """Heun's second evaluation at l_1 and step 1's own evaluation there: the same inputs give the same
    output (both start from step 0's EMA), and the EMA moves on once per step, from the last one."""
    method = guidance.create("samg", w_min=2, w_max=8, step_ema=0.7)
    run = GuidanceRun(method, record_fields=True)
    run.start(SCHEDULE)
    g = torch.Generator().manual_seed(1)
    c0, d0, c1, d1 = (torch.randn(1, 4, 3, 6, 6, generator=g) for _ in range(4))
    run.begin(10.0, 1)
    run.guide(c0 - d0, c0, layout="BCFHW")
    first = [None, None]
    for k in range(2):  # the corrector of step 0 and the first evaluation of step 1, both at level 5
        run.begin(5.0, 1)
        assert run.step == 1
        first[k] = run.guide(c1 - d1, c1, layout="BCFHW")
    assert torch.equal(first[0], first[1])
    alone = GuidanceRun(guidance.create("samg", w_min=2, w_max=8, step_ema=0.7))
    alone.start(SCHEDULE)
    alone.begin(10.0, 1)
    alone.guide(c0 - d0, c0, layout="BCFHW")
    alone.begin(5.0, 1)
    assert torch.equal(alone.guide(c1 - d1, c1, layout="BCFHW"), first[0])  # one evaluation per step: the same
    assert len(run.fields) == 2 and run.evaluations == 3


def test_second_order_and_midpoint_samplers_never_divide_by_a_zero_step():
    """The sequences of heun (l_i, l_{i+1}), dpm_2 (l_i, a midpoint) and an adaptive sampler that
    rejects a step (a level, then a higher one): the adaptive policy runs, each step's plan holds
    for all its evaluations, and the kept deltas are one per step."""
    heun = [10, 5, 5, 2, 2, 1, 1, 0.5, 0.5]
    dpm_2 = [10, 7, 5, 3, 2, 1.4, 1, 0.7, 0.5, 0.3]
    adaptive = [10, 6, 3, 5.5, 2, 1, 0.4, 0.9, 0.2]
    for levels in (heun, dpm_2, adaptive):
        run = GuidanceRun(guidance.create("cfg", scale=4.0), parse_policy("adaptive:0.9,max_reuse=3"))
        run.start(SCHEDULE)
        drive(run, levels, scale=0.01)  # a small, changing delta: the policy reuses
        assert "reuse" in [p[0] for p in run.plans]
        assert [s.index for s in run.history] == sorted({s.index for s in run.history})


def test_a_rise_to_step_zero_is_a_new_run_and_a_step_back_rolls_back():
    run = GuidanceRun(guidance.create("samg", w_min=2, w_max=8, step_ema=0.5), record_fields=True)
    run.start(SCHEDULE)
    first = drive(run, [10, 5, 2, 1, 0.5])
    again = drive(run, [10, 5, 2, 1, 0.5])  # the same schedule again (ComfyUI: a second KSampler run)
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and len(run.fields) == 5
    drive(run, [10, 5, 2, 1], seed=4)
    assert sorted(run.steps) == [0, 1, 2, 3]
    drive(run, [2], seed=5)  # a restart to step 2: what steps 2 and 3 did is dropped
    assert sorted(run.steps) == [0, 1, 2] and [s.index for s in run.history] == [1]  # the last two kept


@pytest.mark.parametrize("policy", ["adaptive:0.05,max_reuse=2", "error:0.5"])
def test_a_clips_plan_and_output_do_not_depend_on_its_batch(policy):
    """Per-clip skip states: clip 0 alone and beside a clip whose delta keeps changing get the same
    plans, signals and outputs under each deciding policy (a plan decided on the batch's max would not)."""
    levels = [10, 5, 2, 1, 0.5]
    g = torch.Generator().manual_seed(3)
    steady_c = torch.randn(5, 1, 4, 3, 6, 6, generator=g)
    steady_d = 0.01 * torch.randn(1, 4, 3, 6, 6, generator=g).expand(5, -1, -1, -1, -1, -1).clone()
    wild_c, wild_d = torch.randn(5, 1, 4, 3, 6, 6, generator=g), torch.randn(5, 1, 4, 3, 6, 6, generator=g)

    def go(batch):
        run = GuidanceRun(guidance.create("samg", w_min=2, w_max=8, step_ema=0.5),
                          parse_policy(policy))
        run.start(SCHEDULE)
        outs = []
        for k, level in enumerate(levels):
            run.begin(level, batch)
            c = torch.cat([steady_c[k], wild_c[k]])[:batch]
            u = c - torch.cat([steady_d[k], wild_d[k]])[:batch]
            rows = run.uncond_rows()
            outs.append(run.guide(run.fill_uncond(u[rows] if rows else None, c, "BCFHW"), c, layout="BCFHW")[:1])
        return run, outs

    alone, alone_out = go(1)
    paired, paired_out = go(2)
    assert alone.clip_plans(0) == paired.clip_plans(0) and "reuse" in alone.clip_plans(0)
    assert alone.clip_signals(0) == paired.clip_signals(0)
    assert "reuse" not in paired.clip_plans(1)
    assert alone.clip_rows[0] == paired.clip_rows[0]
    for a, b in zip(alone_out, paired_out):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_every_copy_of_a_run_is_the_run():
    """Hosts copy what holds the run (ComfyUI's clone() deep-copies model_options): one run."""
    run = GuidanceRun(guidance.create("samg"))
    options = {"sampler_pre_cfg_function": [run]}
    assert copy.deepcopy(options)["sampler_pre_cfg_function"][0] is run


# --- the bundled pipeline with diffusers' schedulers ------------------------------------------------

SCHEDULERS = ["EulerDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler",
              "DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DDIMScheduler"]


@pytest.fixture(scope="module")
def pipe():
    from samg_video.demo.pipeline import load_pipeline

    p = load_pipeline()
    p.set_progress_bar_config(disable=True)
    return p


def clip(pipe, prompts, seeds, steps=6, w=4.0):
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    return pipe(prompts, num_inference_steps=steps, guidance_scale=w, generator=generators,
                output_type="latent").frames


@pytest.mark.parametrize("name", SCHEDULERS)
def test_each_scheduler_samples_and_equal_scales_equal_its_cfg_bit_for_bit(pipe, name):
    """The bundled pipeline passes a scheduler only what its step takes and sets its timesteps before
    scaling the noise: two identical calls give one clip, and SAMG at w_min == w_max == w is the
    pipeline's CFG at w bit for bit; a skip policy counts its rows (2 per computed evaluation, 1
    otherwise) and each evaluation of a second-order step shares that step's plan."""
    from samg_video.pipelines import apply

    own = pipe.scheduler
    pipe.scheduler = getattr(diffusers, name).from_config(own.config)
    try:
        reference = clip(pipe, ["a red circle moving left"], [0])
        assert torch.equal(reference, clip(pipe, ["a red circle moving left"], [0]))
        assert reference.abs().max() < 20  # a clip, not noise scaled by a stale init_noise_sigma (1e4)
        with apply(pipe, "samg", w_min=4.0, w_max=4.0):
            assert torch.equal(clip(pipe, ["a red circle moving left"], [0]), reference)
        infos = []
        with apply(pipe, "samg", w_min=2.0, w_max=6.0, skip="every:2", callback=infos.append) as handle:
            clip(pipe, ["a red circle moving left"], [0])
        plans = [i.uncond for i in infos]
        assert handle.rows == sum(2 if p == "compute" else 1 for p in plans)
        assert len({i.step for i in infos}) == 6 and max(i.step for i in infos) == 5
        by_step = {}
        for i in infos:
            assert by_step.setdefault(i.step, i.uncond) == i.uncond  # one plan per step
        assert list(by_step.values()) == ["compute", "reuse"] * 3
    finally:
        pipe.scheduler = own


POLICIES = ["every:2", "every:3,alpha_low=1.1", "adaptive:0.03,max_reuse=4", "adaptive:0.2,estimate_by=linear",
            "error:0.3", "interval:0.2-0.8", None]


@pytest.mark.parametrize("skip", POLICIES)
def test_a_clip_alone_equals_the_same_clip_in_a_batch_of_four(pipe, skip):
    """`generate_clips` promises a clip does not depend on its batch: the same clip alone and in a batch
    of four mixed prompts (one and two objects), under every policy: equal to float rounding, with
    the same plan and the same rows."""
    from samg_video.generate import generate_clips, load_target

    target = load_target(model="demo", steps=8)
    method = guidance.create("samg", w_min=2, w_max=6)
    prompts = ["a red circle moving right", "a blue square moving left and a green triangle standing still",
               "a green circle moving up", "a red square moving down and a blue circle moving right"]
    alone = generate_clips(target, prompts[:1], [0], method, skip=skip)[0]
    batch = generate_clips(target, prompts, [0, 1, 2, 3], method, skip=skip)
    assert batch[0].plans == alone.plans
    assert [v is None for v in batch[0].signals] == [v is None for v in alone.signals]
    assert [pytest.approx(v, rel=1e-4) for v in alone.signals if v is not None] == [
        v for v in batch[0].signals if v is not None]  # the signals to float rounding
    assert batch[0].denoiser_calls == alone.denoiser_calls
    assert abs(batch[0].clip.astype("float64") - alone.clip.astype("float64")).max() < 1e-4
