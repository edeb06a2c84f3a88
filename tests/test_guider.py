"""SAMGGuider: the diffusers guider API around the SAMG core."""

import pytest
import references
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


# --- inside real modular pipelines (diffusers WanBlocks / LTXBlocks with tiny components) ----------

class ReferenceSAMG(ClassifierFreeGuidance):
    """The paper's SAMG formula written out independently (min-max, mean_sq, whole sample).

    Channels are dim 1 for latents (B, C, F, H, W) and the last dim for packed tokens (B, N, C).
    """

    def __init__(self, w_min: float, w_max: float, channel_dim: int = 1):
        super().__init__(guidance_scale=w_max)
        self.w_lo, self.w_hi, self.dim, self.fields = w_min, w_max, channel_dim, []

    def forward(self, pred_cond, pred_uncond=None):
        out = super().forward(pred_cond, pred_uncond)
        guided, w = references.samg(pred_uncond.double(), pred_cond.double(), self.w_lo, self.w_hi, self.dim)
        self.fields.append(w)
        out.pred = guided.to(pred_cond.dtype)
        return out


MODULAR = {  # stand-in -> (blocks, call sizes, layout the transformer hands the guider)
    "wan2.1-t2v-1.3b": ("diffusers.modular_pipelines.wan.modular_blocks_wan.WanBlocks",
                        dict(height=32, width=32, num_frames=9), "BCFHW"),
    "ltx-video": ("diffusers.modular_pipelines.ltx.modular_blocks_ltx.LTXBlocks",
                  dict(height=64, width=64, num_frames=9), "tokens"),
}


def modular(name: str, root):
    """A runner on a stand-in's components: guider -> (final latents, number of transformer calls)."""
    import importlib

    import pytest
    pytest.importorskip("ftfy")  # the modular Wan text step cleans prompts with ftfy
    from conftest import load_standin

    path, sizes, _ = MODULAR[name]
    module, cls = path.rsplit(".", 1)
    classic = load_standin(name, root)
    pipe = getattr(importlib.import_module(module), cls)().init_pipeline()
    pipe.update_components(**{k: classic.components[k] for k in
                              ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")})
    calls = []
    classic.transformer.register_forward_hook(lambda *a: calls.append(1))

    def run(guider):
        pipe.update_components(guider=guider)
        calls.clear()
        latents = pipe(prompt="a red circle moving left", negative_prompt="blurry", num_inference_steps=3,
                       max_sequence_length=16, generator=torch.Generator().manual_seed(0), output="latents", **sizes)
        return latents, len(calls)

    return run


@pytest.mark.parametrize("name", list(MODULAR))
def test_guider_in_modular_pipeline_reduces_to_cfg_and_matches_reference(name, standin_root):
    run, layout = modular(name, standin_root), MODULAR[name][2]
    grid = dict(token_grid=(2, 2, 2)) if layout == "tokens" else {}  # LTX VAE: 8x in time, 32x in space
    cfg_lat, cfg_calls = run(ClassifierFreeGuidance(guidance_scale=4.0))
    samg_lat, samg_calls = run(SAMGGuider(w_min=4.0, w_max=4.0, temporal_sigma=1.0, spatial_sigma=1.0,
                                          layout=layout, **grid))
    torch.testing.assert_close(samg_lat, cfg_lat, atol=1e-5, rtol=0)
    assert samg_calls == cfg_calls == 6  # 3 steps x (cond, uncond): no extra model evaluations

    reference = ReferenceSAMG(2.0, 8.0, channel_dim=-1 if layout == "tokens" else 1)
    ref_lat, _ = run(reference)
    ours, _ = run(SAMGGuider(w_min=2.0, w_max=8.0, layout=layout))
    torch.testing.assert_close(ours, ref_lat, atol=1e-5, rtol=0)
    assert (ref_lat - cfg_lat).abs().max() > 1e-2  # the field really varied
    field = reference.fields[-1]
    assert abs(field.min().item() - 2.0) < 1e-3 and abs(field.max().item() - 8.0) < 1e-3  # eps 1e-8 in the denominator


def test_tokens_layout_errors():
    with pytest.raises(ValueError, match="token_grid"):
        SAMGGuider(layout="tokens", temporal_sigma=1.0)
    guider = SAMGGuider(layout="tokens", token_grid=(2, 2, 2))
    guider.set_state(step=0, num_inference_steps=2, timestep=torch.tensor(999))
    with pytest.raises(ValueError, match="holds 8 tokens"):
        guider.forward(torch.randn(1, 9, 4), torch.randn(1, 9, 4))


def test_guider_parameters_are_samg_fields():
    """Every SAMG config field is a guider parameter with the same default, except SAMG's own
    interval / outside: in the guider, diffusers' start / stop is the one interval mechanism."""
    import dataclasses
    import inspect

    params = inspect.signature(SAMGGuider.__init__).parameters
    for f in dataclasses.fields(guidance.SAMG):
        if f.name in ("interval", "outside"):
            assert f.name not in params
            continue
        assert f.name in params, f.name
        default = params[f.name].default
        assert (tuple(default) if isinstance(default, (list, tuple)) else default) == f.default, f.name
    guider = SAMGGuider(w_min=2.0, w_max=7.0, quantiles=(0.1, 0.9), bound=1.5, step_ema=0.3)
    expected = guidance.create("samg", w_min=2.0, w_max=7.0, quantiles=(0.1, 0.9), bound=1.5, step_ema=0.3)
    assert guider.method.to_dict() == expected.to_dict()


# --- GuidanceGuider: every method as a saveable guider, with skip policies -------------------------

GUIDER_METHODS = [m for m in guidance.available() if type(guidance.create(m)).perturbation is
                  guidance.Guidance.perturbation]


@pytest.mark.parametrize("name", GUIDER_METHODS)
def test_every_method_saves_loads_and_guides_as_the_method_itself(name, tmp_path):
    from samg_video import GuidanceGuider

    guider = GuidanceGuider(method=name, layout="BCFHW")
    guider.save_pretrained(tmp_path)
    loaded = GuidanceGuider.from_pretrained(tmp_path)
    assert loaded.method == guider.method
    method = guidance.create(name)
    for step in range(3):
        u, c = pair(seed=step)
        loaded.set_state(step=step, num_inference_steps=3, timestep=torch.tensor(999 - 300 * step))
        torch.testing.assert_close(loaded.forward(c, u).pred, method(u, c, step=step, num_steps=3), atol=0, rtol=0)


def test_guidance_scale_is_diffusers_name_for_a_single_scale():
    from samg_video import GuidanceGuider

    u, c = pair()
    ours, theirs = GuidanceGuider(method="cfg", guidance_scale=4.0), ClassifierFreeGuidance(guidance_scale=4.0)
    for g in (ours, theirs):
        g.set_state(step=0, num_inference_steps=3, timestep=torch.tensor(999))
    assert torch.equal(ours.forward(c, u).pred, theirs.forward(c, u).pred)
    with pytest.raises(ValueError, match="takes w_min / w_max in params"):
        GuidanceGuider(method="samg", guidance_scale=4.0)
    with pytest.raises(ValueError, match="extra perturbed denoiser call"):
        GuidanceGuider(method="stg")


def test_a_skip_policy_asks_for_one_condition_and_reuses_the_delta(tmp_path):
    from samg_video import GuidanceGuider

    GuidanceGuider(method="cfg", guidance_scale=3.0, skip="every:2").save_pretrained(tmp_path)
    guider = GuidanceGuider.from_pretrained(tmp_path)
    conditions, delta = [], None
    for step in range(4):
        u, c = pair(seed=step)
        guider.set_state(step=step, num_inference_steps=4, timestep=torch.tensor(999 - 250 * step))
        both = guider.num_conditions == 2
        conditions.append(guider.num_conditions)
        out = guider.forward(c, u if both else None).pred
        used = u if both else c - delta
        torch.testing.assert_close(out, used + 3.0 * (c - used), atol=1e-5, rtol=1e-5)
        if both:
            delta = c - u
    assert conditions == [2, 1, 2, 1]


def test_guidance_guider_in_a_modular_pipeline_skips_calls(standin_root):
    from samg_video import GuidanceGuider

    run = modular("wan2.1-t2v-1.3b", standin_root)
    cfg_lat, cfg_calls = run(ClassifierFreeGuidance(guidance_scale=4.0))
    ours, calls = run(GuidanceGuider(method="cfg", guidance_scale=4.0))
    assert torch.equal(ours, cfg_lat) and calls == cfg_calls == 6
    skipped, calls = run(GuidanceGuider(method="samg", params={"w_min": 2.0, "w_max": 6.0}, skip="every:2"))
    assert calls == 5 and torch.isfinite(skipped).all()  # 3 steps: cond + uncond, cond, cond + uncond


def test_the_package_root_names_the_diffusers_surface_and_stays_light():
    import subprocess
    import sys

    code = ("import sys, samg_video; assert 'diffusers' not in sys.modules and 'torch' not in sys.modules; "
            "from samg_video import apply, SAMGGuider, GuidanceGuider, guidance; "
            "from samg_video.pipelines import apply as a; assert apply is a; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "ok", done.stderr[-1500:]


def test_samg_guider_takes_the_same_skip_policies_and_keeps_each_clip_its_own(tmp_path):
    """SAMGGuider and GuidanceGuider take the same policies (a saved `skip` round-trips) and give the same
    predictions; in a batch whose clips plan differently the pipeline computes both predictions (the
    guider asks for two conditions while any clip computes), and a clip that reuses gets c - d, so each
    clip's output is the one it gets alone."""
    from samg_video import GuidanceGuider, SAMGGuider

    SAMGGuider(w_min=2.0, w_max=6.0, skip="adaptive:0.05,max_reuse=2").save_pretrained(tmp_path)
    samg = SAMGGuider.from_pretrained(tmp_path)
    other = GuidanceGuider(method="samg", params={"w_min": 2.0, "w_max": 6.0}, skip="adaptive:0.05,max_reuse=2")
    g = torch.Generator().manual_seed(0)
    steady = 0.01 * torch.randn(1, 4, 3, 8, 8, generator=g)
    conds = [torch.randn(2, 4, 3, 8, 8, generator=g) for _ in range(5)]
    wild = [torch.randn(1, 4, 3, 8, 8, generator=g) for _ in range(5)]

    def run(guider, batch):
        outs, asked = [], []
        for step in range(5):
            guider.set_state(step=step, num_inference_steps=5, timestep=torch.tensor(999 - 200 * step))
            c = conds[step][:batch]
            u = c - torch.cat([steady, wild[step]])[:batch]
            asked.append(guider.num_conditions)
            outs.append(guider.forward(c, u if guider.num_conditions == 2 else None).pred[:1])
        return outs, asked, guider.run.clip_plans(0)

    alone, asked_alone, plans = run(samg, 1)
    assert "reuse" in plans and 1 in asked_alone
    for a, b in zip(alone, run(other, 1)[0]):
        assert torch.equal(a, b)
    paired, asked_paired, plans_paired = run(SAMGGuider(w_min=2.0, w_max=6.0, skip="adaptive:0.05,max_reuse=2"), 2)
    assert plans_paired == plans and asked_paired == [2] * 5  # the companion keeps computing
    for a, b in zip(alone, paired):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("text,sentence", [
    ('{"w_min": 1, "pad": "' + "x" * (2 << 20) + '"}', "MiB; a component config is a few KB"),  # a 2 MB extra key
    ("[1, 2]", "does not hold a guider's settings"),
    ("[" * 100_000 + "]" * 100_000, "is not valid JSON"),
    ('{"w_max": NaN}', "w_max is NaN"),
])
def test_an_edited_guider_config_is_one_sentence_naming_the_file(tmp_path, text, sentence):
    """guider_config.json read as data before diffusers reads it: size-capped, a mapping, nesting and
    numbers checked; diffusers never echoes a 50 MB value."""
    SAMGGuider(w_min=1.0, w_max=3.0).save_pretrained(tmp_path)
    (tmp_path / "guider_config.json").write_text(text)
    with pytest.raises(ValueError, match=sentence) as err:
        SAMGGuider.from_pretrained(tmp_path)
    assert str(tmp_path / "guider_config.json") in str(err.value) and len(str(err.value)) < 400


def test_diffusers_experimental_notice_shows_once_per_process(capfd):
    """diffusers logs "Guiders are currently an experimental feature" from every guider's __init__; the
    pack's guiders (and the one `apply` puts in a guider slot) show it at most once per process."""
    from samg_video import GuidanceGuider

    capfd.readouterr()
    for _ in range(3):
        SAMGGuider(w_min=1.0, w_max=3.0)
        GuidanceGuider(method="cfg", guidance_scale=2.0)
    assert capfd.readouterr().err.count("experimental feature") <= 1
