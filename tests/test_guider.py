"""SAMGGuider: the diffusers guider API around the SAMG core."""

import torch
from diffusers.guiders import ClassifierFreeGuidance

from samg_video import guidance
from samg_video.pipelines import SAMGGuider


def pair(shape=(1, 4, 3, 6, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_equal_scales_match_diffusers_cfg_guider():
    u, c = pair()
    ours, theirs = SAMGGuider(w_min=4.0, w_max=4.0, temporal_sigma=1.0), ClassifierFreeGuidance(guidance_scale=4.0)
    for g in (ours, theirs):
        g.set_state(step=0, num_inference_steps=3, timestep=torch.tensor(999))
    torch.testing.assert_close(ours.forward(c, u).pred,
                               theirs.forward(c, u).pred, atol=1e-5, rtol=1e-6)


def test_matches_core_method_over_a_run_and_resets_at_step_zero():
    guider = SAMGGuider(w_min=2.0, w_max=8.0, step_ema=0.5, layout="BFCHW")
    method = guidance.create("samg", w_min=2.0, w_max=8.0, step_ema=0.5)
    for run in range(2):
        method.reset()
        for step in range(3):
            u, c = pair((1, 3, 4, 6, 6), seed=step)
            guider.set_state(step=step, num_inference_steps=3, timestep=torch.tensor(999 - step))
            expected = method(u, c, step=step, num_steps=3, layout="BFCHW")
            torch.testing.assert_close(guider.forward(c, u).pred, expected)


def test_outside_start_stop_returns_cond_and_needs_one_condition():
    u, c = pair()
    guider = SAMGGuider(start=0.5)
    guider.set_state(step=0, num_inference_steps=4, timestep=torch.tensor(999))
    assert guider.num_conditions == 1
    assert torch.equal(guider.forward(c, u).pred, c)
    guider.set_state(step=3, num_inference_steps=4, timestep=torch.tensor(10))
    assert guider.num_conditions == 2


def test_save_and_load_round_trip(tmp_path):
    guider = SAMGGuider(w_min=3.0, w_max=9.0, temporal_sigma=1.5, quantiles=(0.01, 0.99), bound=2.0, layout="BFCHW")
    guider.save_pretrained(tmp_path)
    loaded = SAMGGuider.from_pretrained(tmp_path)
    public = lambda cfg: {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items() if not k.startswith("_")}  # noqa: E731
    assert public(loaded.config) == public(guider.config)
    assert loaded.method == guider.method and loaded.layout == "BFCHW"
