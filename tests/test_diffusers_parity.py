"""Every method diffusers also ships gives diffusers' own output on the same predictions.

Each test feeds one set of random predictions (and, for stateful methods, a run of steps)
through samg-video's method and through the diffusers guider's `forward` with matching
parameters and step state. Where the two differ by design, the test pins the difference.
"""

import pytest
import torch
from diffusers import guiders
from einops import rearrange

from samg_video import guidance

SHAPE = (2, 4, 3, 8, 8)  # B C F H W


def preds(seed: int, shape=SHAPE, n: int = 3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(n)]


def theirs(guider, step: int, num_steps: int, *predictions):
    """diffusers' guided prediction at `step` (the guider sees the step like in a pipeline)."""
    guider.set_state(step=step, num_inference_steps=num_steps, timestep=torch.tensor(999 - step))
    guider.prepare_inputs({})  # stateful guiders (APG momentum) start their buffers at step 0
    return guider.forward(*predictions).pred


def ours(method, step: int, num_steps: int, u, c, p=None):
    if step == 0:
        method.reset()
    return method(u, c, step=step, num_steps=num_steps, pred_perturbed=p)


def test_cfg_is_bit_for_bit():
    u, c, _ = preds(0)
    assert torch.equal(ours(guidance.create("cfg", scale=5.5), 0, 10, u, c),
                       theirs(guiders.ClassifierFreeGuidance(guidance_scale=5.5), 0, 10, c, u))


def test_cfg_zero_star_over_a_run():
    method = guidance.create("cfg_zero_star", scale=5.0, zero_init_steps=1)
    guider = guiders.ClassifierFreeZeroStarGuidance(guidance_scale=5.0, zero_init_steps=1)
    for step in range(3):
        u, c, _ = preds(step)
        torch.testing.assert_close(ours(method, step, 3, u, c), theirs(guider, step, 3, c, u), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("eta,threshold,momentum", [(0.0, 15.0, None), (0.5, 2.0, -0.5), (1.0, 0.0, 0.3)])
def test_apg_per_clip_over_a_run(eta, threshold, momentum):
    method = guidance.create("apg", scale=6.0, eta=eta, norm_threshold=threshold, momentum=momentum or 0.0,
                             per="clip")
    guider = guiders.AdaptiveProjectedGuidance(guidance_scale=6.0, eta=eta,
                                               adaptive_projected_guidance_rescale=threshold,
                                               adaptive_projected_guidance_momentum=momentum)
    for step in range(4):  # momentum carries across steps
        u, c, _ = preds(10 + step)
        torch.testing.assert_close(ours(method, step, 4, u, c), theirs(guider, step, 4, c, u), atol=1e-5, rtol=1e-5)


def test_apg_per_frame_is_apg_on_each_frame():
    """The documented difference: per="frame" (the default for video) is diffusers' APG on every frame alone."""
    u, c, _ = preds(20)
    method = guidance.create("apg", scale=6.0, eta=0.0, norm_threshold=2.0, per="frame")
    frames = lambda x: rearrange(x, "b c f h w -> (b f) c h w")  # noqa: E731
    guider = guiders.AdaptiveProjectedGuidance(guidance_scale=6.0, eta=0.0, adaptive_projected_guidance_rescale=2.0)
    expected = rearrange(theirs(guider, 0, 1, frames(c), frames(u)), "(b f) c h w -> b c f h w", f=SHAPE[2])
    torch.testing.assert_close(ours(method, 0, 1, u, c), expected, atol=1e-5, rtol=1e-5)
    per_clip = guidance.create("apg", scale=6.0, eta=0.0, norm_threshold=2.0, per="clip")
    assert not torch.allclose(ours(per_clip, 0, 1, u, c), expected, atol=1e-3)


def test_apg_mix_over_a_run():
    method = guidance.create("apg_mix", scale=8.0, cfg_scale=3.0, start_step=2, eta=0.0, norm_threshold=4.0,
                             momentum=-0.5)
    guider = guiders.AdaptiveProjectedMixGuidance(
        guidance_scale=3.0, adaptive_projected_guidance_scale=8.0, adaptive_projected_guidance_momentum=-0.5,
        adaptive_projected_guidance_rescale=4.0, eta=0.0, adaptive_projected_guidance_start_step=2)
    for step in range(6):  # CFG up to step 2 while the momentum accumulates, APG after
        u, c, _ = preds(30 + step)
        torch.testing.assert_close(ours(method, step, 6, u, c), theirs(guider, step, 6, c, u), atol=1e-5, rtol=1e-5)


def test_mambo_on_flattened_samples():
    """diffusers' MAMBO-G takes torch.norm over dims 1..n, which torch 2.14 refuses for more than two
    dims (any image or video latent); on (B, N) rows it runs, and samg-video's per-sample norms agree."""
    u, c, _ = preds(40)
    c = u + 0.1 * (c - u)  # a small delta, where the damping is not yet saturated
    guider = guiders.MagnitudeAwareGuidance(guidance_scale=7.0, alpha=4.0)
    expected = theirs(guider, 0, 1, c.flatten(1), u.flatten(1)).view(SHAPE)
    torch.testing.assert_close(ours(guidance.create("mambo", scale=7.0, alpha=4.0), 0, 1, u, c), expected,
                               atol=1e-6, rtol=1e-6)
    with pytest.raises(RuntimeError, match="dim must be a 2-tuple"):
        theirs(guider, 0, 1, c, u)


def test_tcfg_per_clip():
    u, c, _ = preds(50)
    c = 0.8 * u + 0.6 * c  # correlated, as two predictions of one model are
    torch.testing.assert_close(ours(guidance.create("tcfg", scale=4.0), 0, 1, u, c),
                               theirs(guiders.TangentialClassifierFreeGuidance(guidance_scale=4.0), 0, 1, c, u),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("parallel_weight", [1.0, 0.5])
def test_fdg_is_diffusers_fdg_on_each_frame(parallel_weight):
    """diffusers' FDG works on images (its pyramid is 2-D); on video samg-video runs it per frame."""
    u, c, _ = preds(60)
    method = guidance.create("fdg", scale=9.0, scale_low=3.0, parallel_weight=parallel_weight)
    frames = lambda x: rearrange(x, "b c f h w -> (b f) c h w")  # noqa: E731
    guider = guiders.FrequencyDecoupledGuidance(guidance_scales=[9.0, 3.0], parallel_weights=parallel_weight)
    expected = rearrange(theirs(guider, 0, 1, frames(c), frames(u)), "(b f) c h w -> b c f h w", f=SHAPE[2])
    torch.testing.assert_close(ours(method, 0, 1, u, c), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(Exception):
        theirs(guider, 0, 1, c, u)  # a 5-D video latent is not an image to diffusers' FDG


def test_fdg_on_sizes_that_are_not_powers_of_two_keeps_the_size():
    """kornia pads a 6 x 10 frame to 8 x 16 and diffusers returns that padded size; samg-video
    returns 6 x 10: diffusers' result cropped to the input."""
    u, c, _ = preds(62, shape=(1, 4, 2, 6, 10))
    frames = lambda x: rearrange(x, "b c f h w -> (b f) c h w")  # noqa: E731
    padded = theirs(guiders.FrequencyDecoupledGuidance(guidance_scales=[9.0, 3.0]), 0, 1, frames(c), frames(u))
    assert padded.shape[-2:] == (8, 16)
    expected = rearrange(padded[..., :6, :10], "(b f) c h w -> b c f h w", f=2)
    torch.testing.assert_close(ours(guidance.create("fdg", scale=9.0, scale_low=3.0), 0, 1, u, c), expected,
                               atol=1e-5, rtol=1e-5)


def test_fdg_with_equal_scales_is_cfg():
    u, c, _ = preds(61)
    torch.testing.assert_close(ours(guidance.create("fdg", scale=5.0, scale_low=5.0), 0, 1, u, c), u + 5.0 * (c - u),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,cls,strength", [("slg", guiders.SkipLayerGuidance, "skip_layer_guidance_scale"),
                                               ("pag", guiders.PerturbedAttentionGuidance, "perturbed_guidance_scale")])
def test_perturbation_guidance_combination(name, cls, strength):
    """u + w (c - u) + s (c - p) inside the interval (bit for bit), plain CFG outside."""
    u, c, p = preds(70)
    method = guidance.create(name, scale=5.0, **{f"scale_{name}": 2.5})
    layers = {"skip_layer_guidance_layers" if name == "slg" else "perturbed_guidance_layers": [1]}
    guider = cls(guidance_scale=5.0, **{strength: 2.5}, **layers)
    for step in range(50):  # the default interval, [1 %, 20 %) of the run: steps 1..9 in both
        on = method.perturbation(step, 50) is not None
        assert on == (1 <= step <= 9)
        assert torch.equal(ours(method, step, 50, u, c, p if on else None), theirs(guider, step, 50, c, u, p))


@pytest.mark.parametrize("name,cls", [("slg", guiders.SkipLayerGuidance), ("stg", guiders.SkipLayerGuidance)])
def test_perturbation_interval_start_is_inclusive_where_diffusers_is_not(name, cls):
    """The documented difference: diffusers perturbs steps int(start n) < step < int(stop n), so its
    interval never includes its first step (nor step 0); samg-video's [start, end) of step / n does."""
    u, c, p = preds(71)
    method = guidance.create(name, scale=5.0, interval=(0.1, 0.2), **{f"scale_{name}": 2.5})
    guider = cls(guidance_scale=5.0, skip_layer_guidance_scale=2.5, skip_layer_guidance_start=0.1,
                 skip_layer_guidance_stop=0.2, skip_layer_guidance_layers=[1])
    assert method.perturbation(5, 50) is not None  # 5 / 50 = 0.1
    assert torch.equal(theirs(guider, 5, 50, c, u, p), u + 5.0 * (c - u))  # diffusers: CFG only
    assert not torch.equal(ours(method, 5, 50, u, c, p), u + 5.0 * (c - u))


def test_stg_is_slg_over_the_whole_run():
    u, c, p = preds(80)
    guider = guiders.SkipLayerGuidance(guidance_scale=6.0, skip_layer_guidance_scale=1.5, skip_layer_guidance_start=0.0,
                                       skip_layer_guidance_stop=1.0, skip_layer_guidance_layers=[0])
    method = guidance.create("stg", scale=6.0, scale_stg=1.5)
    for step in (1, 7, 9):  # (step 0: see the interval test above)
        assert torch.equal(ours(method, step, 10, u, c, p), theirs(guider, step, 10, c, u, p))


def test_interval_rounding_differs_from_diffusers_start_stop():
    """samg-video's interval is [start, end) of step / num_steps; diffusers rounds start * n down to a step."""
    u, c, _ = preds(90)
    method = guidance.create("interval", scale=5.0, interval=(0.3, 1.0))
    guider = guiders.ClassifierFreeGuidance(guidance_scale=5.0, start=0.3)
    # step 8 of 25: both guide; step 7 (7 / 25 = 0.28 < 0.3): diffusers guides (int(7.5) = 7), samg-video does not
    assert torch.equal(ours(method, 8, 25, u, c), theirs(guider, 8, 25, c, u))
    assert torch.equal(ours(method, 7, 25, u, c), c)
    assert torch.equal(theirs(guider, 7, 25, c, u), u + 5.0 * (c - u))
