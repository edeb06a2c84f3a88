"""Tier (b): `pipelines.apply` on the demo pipeline, with a tiny random U-Net and the closed form."""

import pytest
import references
import torch
from diffusers import DDIMScheduler

from samg_video import guidance
from samg_video.demo import world
from closed_form import closed_form_pipeline
from samg_video.demo.model import TinyVideoUNet, build_text_encoder, build_tokenizer
from samg_video.demo.pipeline import DemoVideoPipeline
from samg_video.pipelines import StepInfo, apply

PROMPT = "a red circle moving left"


@pytest.fixture(scope="module")
def tiny_pipe():
    torch.manual_seed(0)
    unet = TinyVideoUNet(channels=8, mult=2, text_dim=16, cond_dim=16)
    for p in unet.parameters():  # zero-initialised output layers would make cond == uncond
        torch.nn.init.normal_(p, std=0.2)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return DemoVideoPipeline(unet=unet, text_encoder=build_text_encoder(hidden=16, layers=1),
                             tokenizer=build_tokenizer(), scheduler=scheduler)


@pytest.fixture(scope="module")
def closed_pipe():
    return closed_form_pipeline()


def generate(pipe, w=4.0, steps=6, seed=0, prompt=PROMPT, frames=4):
    return pipe(prompt, num_frames=frames, num_inference_steps=steps, guidance_scale=w,
                generator=torch.Generator().manual_seed(seed)).raw


def count_calls(module):
    calls = []
    handle = module.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("which", ["tiny_pipe", "closed_pipe"])
def test_equal_scales_reproduce_pipeline_cfg(which, request):
    pipe = request.getfixturevalue(which)
    reference = generate(pipe, w=4.0)
    calls, counter = count_calls(pipe.unet)
    generate(pipe, w=4.0)
    native_calls = len(calls)
    calls.clear()
    with apply(pipe, "samg", w_min=4.0, w_max=4.0, temporal_sigma=1.0, spatial_sigma=1.0, step_ema=0.5):
        guided = generate(pipe, w=7.0)  # the pipeline's own scale no longer matters
    counter.remove()
    assert len(calls) == native_calls == 6
    torch.testing.assert_close(guided, reference, atol=1e-5, rtol=1e-5)


def reference_loop(pipe, w_min, w_max, steps=6, seed=0, frames=4):
    """Independent sampler: the pipeline's loop re-written with the paper's SAMG formula (tests/references.py)."""
    states, mask = pipe.encode_prompt(["", PROMPT])
    latents = torch.randn((1, 3, frames, 32, 32), generator=torch.Generator().manual_seed(seed))
    sched = DDIMScheduler.from_config(pipe.scheduler.config)
    sched.set_timesteps(steps)
    for t in sched.timesteps:
        u, c = pipe.unet(torch.cat([latents] * 2), t, states, mask, return_dict=False)[0].chunk(2)
        latents = sched.step(references.samg(u, c, w_min, w_max)[0], t, latents).prev_sample
    return latents


@pytest.mark.parametrize("which", ["tiny_pipe", "closed_pipe"])
def test_samg_matches_independent_sampler(which, request):
    pipe = request.getfixturevalue(which)
    with apply(pipe, "samg", w_min=2.0, w_max=8.0):
        guided = generate(pipe)
    torch.testing.assert_close(guided, reference_loop(pipe, 2.0, 8.0), atol=1e-4, rtol=1e-4)
    assert (guided - generate(pipe, w=8.0)).abs().max() > 1e-3  # and it is not plain CFG


def test_removal_restores_pipeline_exactly(tiny_pipe):
    before = generate(tiny_pipe)
    handle = apply(tiny_pipe, "samg", w_min=1.0, w_max=9.0)
    changed = generate(tiny_pipe)
    handle.remove()
    handle.remove()  # idempotent
    assert not torch.equal(changed, before)
    assert torch.equal(generate(tiny_pipe), before)
    assert not tiny_pipe.unet._forward_hooks
    assert "set_timesteps" not in vars(tiny_pipe.scheduler)


def test_step_callback_receives_fields(closed_pipe):
    infos: list[StepInfo] = []
    with apply(closed_pipe, guidance.create("samg", w_min=2.0, w_max=6.0), callback=infos.append):
        generate(closed_pipe, steps=5, frames=6)
    assert [i.step for i in infos] == list(range(5)) and all(i.num_steps == 5 for i in infos)
    for info in infos:
        assert info.scale_field.shape == (1, 1, 6, 32, 32)
        assert 2.0 - 1e-5 <= info.scale_field.min() and info.scale_field.max() <= 6.0 + 1e-5
        assert info.latents.shape == info.guided.shape == (1, 3, 6, 32, 32)
        assert info.sigma is not None and info.sigma > 0
    assert infos[0].sigma > infos[-1].sigma
    with apply(closed_pipe, "cfg", scale=3.0, callback=infos.append):
        generate(closed_pipe, steps=2)
    assert infos[-1].scale_field is None


def test_method_state_resets_per_run(closed_pipe):
    method = guidance.create("samg", w_min=2.0, w_max=6.0, step_ema=0.9)
    with apply(closed_pipe, method):
        first = generate(closed_pipe, steps=4)
        second = generate(closed_pipe, steps=4)
    assert torch.equal(first, second)


def test_no_cfg_is_an_error(tiny_pipe):
    with apply(tiny_pipe, "samg"):
        with pytest.raises(ValueError, match="guidance_scale > 1"):
            generate(tiny_pipe, w=1.0)


def test_unsupported_pipeline_says_what_was_not_recognised():
    with pytest.raises(ValueError, match="none of its components is a denoiser"):
        apply(object(), "cfg")


def test_closed_form_generates_the_prompt(closed_pipe):
    for prompt in ["a red circle moving left", "a cyan triangle standing still and a yellow square moving up"]:
        clip = closed_pipe(prompt, num_inference_steps=15, guidance_scale=3.0,
                           generator=torch.Generator().manual_seed(1)).frames[0]
        assert world.parse_prompt(prompt)
        from samg_video.demo import score
        assert score(clip, prompt)["correct"], prompt

