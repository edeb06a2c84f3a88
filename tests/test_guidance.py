"""Tier (a): guidance math on random tensors, checked against independent formulas."""

from __future__ import annotations

import math

import pytest
import references
import torch
import yaml

from samg_video import guidance
from samg_video.guidance.layout import from_canonical

LAYOUT_SHAPES = {"BCFHW": (2, 4, 6, 10, 12), "BFCHW": (2, 6, 4, 10, 12), "BFHWC": (2, 6, 10, 12, 4),
                 "BCHW": (2, 4, 10, 12)}
SMOOTHING = [{}, {"spatial_sigma": 1.5, "temporal_sigma": 1.0, "step_ema": 0.6},
             {"normalize": "frame", "quantiles": (0.05, 0.95), "energy": "l2", "temporal_sigma": 2.0}]


def pair(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(dtype), torch.randn(shape, generator=g).to(dtype)


def run(method, u, c, steps=3, layout="BCFHW"):
    """The last step's output of a run; perturbation methods get u as their perturbed prediction."""
    method.reset()
    return [method(u, c, step=i, num_steps=steps, layout=layout, pred_perturbed=u) for i in range(steps)][-1]


def reference_samg(u, c, w_min, w_max):
    """The paper's SAMG formula (tests/references.py), BCFHW, per-clip min-max: (out, W)."""
    return references.samg(u, c, w_min, w_max)


def test_available_lists_all_methods():
    assert {"cfg", "samg", "rescale", "apg", "cfg_zero_star", "interval", "dynamic_cfg", "mambo"} <= set(
        guidance.available())


@pytest.mark.parametrize("layout", list(LAYOUT_SHAPES))
@pytest.mark.parametrize("opts", SMOOTHING)
def test_samg_equal_scales_is_cfg(layout, opts):
    u, c = pair(LAYOUT_SHAPES[layout])
    samg = guidance.create("samg", w_min=6.0, w_max=6.0, **opts)
    cfg = guidance.create("cfg", scale=6.0)
    out = run(samg, u, c, layout=layout)
    torch.testing.assert_close(out, run(cfg, u, c, layout=layout), atol=1e-6, rtol=0)
    # and against the textbook formula, up to fp32 rounding of a different op order
    torch.testing.assert_close(out, u + 6.0 * (c - u), atol=1e-5, rtol=1e-6)


def test_samg_matches_reference_formula():
    u, c = pair((3, 4, 5, 9, 7), seed=1)
    out = run(guidance.create("samg", w_min=3.0, w_max=9.0), u, c, steps=1)
    ref, _ = reference_samg(u, c, 3.0, 9.0)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_field_range_and_extremes():
    u, c = pair((2, 4, 5, 8, 8), seed=2)
    m = guidance.create("samg", w_min=2.0, w_max=10.0)
    field = m.scale_field(u, c)
    assert field.shape == (2, 1, 5, 8, 8)
    assert field.min() >= 2.0 - 1e-6 and field.max() <= 10.0 + 1e-6
    energy = ((c - u) ** 2).mean(1, keepdim=True)
    for b in range(2):
        assert field[b].flatten()[energy[b].flatten().argmax()] == pytest.approx(2.0, abs=1e-5)
        assert field[b].flatten()[energy[b].flatten().argmin()] == pytest.approx(10.0, abs=1e-5)


def test_frame_normalisation_spans_range_in_every_frame():
    u, c = pair((1, 4, 6, 8, 8), seed=3)
    c[:, :, 3] = u[:, :, 3] + 0.01 * (c[:, :, 3] - u[:, :, 3])  # one frame with tiny energy
    per_frame = guidance.create("samg", w_min=1.0, w_max=5.0, normalize="frame").scale_field(u, c)
    per_clip = guidance.create("samg", w_min=1.0, w_max=5.0, normalize="clip").scale_field(u, c)
    for f in range(6):
        assert per_frame[0, 0, f].min() == pytest.approx(1.0, abs=1e-4)
        assert per_frame[0, 0, f].max() == pytest.approx(5.0, abs=1e-4)
    assert per_clip[0, 0, 3].min() > 4.9  # per clip, the quiet frame sits near w_max


def test_quantiles_resist_one_outlier():
    u, c = pair((1, 4, 4, 16, 16), seed=4)
    c[0, :, 0, 0, 0] += 1000.0
    minmax = guidance.create("samg", w_min=1.0, w_max=5.0).scale_field(u, c)
    robust = guidance.create("samg", w_min=1.0, w_max=5.0, quantiles=(0.01, 0.99)).scale_field(u, c)
    rest = lambda f: f.flatten()[1:]  # noqa: E731  (every cell but the outlier)
    assert rest(minmax).std() < 0.01  # the outlier squashes everything else to w_max
    assert rest(robust).std() > 0.5


def test_layouts_agree_and_batches_are_independent():
    u, c = pair((2, 4, 6, 8, 10), seed=5)
    opts = dict(w_min=2.0, w_max=8.0, spatial_sigma=1.0, temporal_sigma=1.0, step_ema=0.5)
    a = run(guidance.create("samg", **opts), u, c)
    b = run(guidance.create("samg", **opts), u.permute(0, 2, 1, 3, 4), c.permute(0, 2, 1, 3, 4), layout="BFCHW")
    torch.testing.assert_close(b.permute(0, 2, 1, 3, 4), a, atol=1e-6, rtol=0)
    singles = torch.cat([run(guidance.create("samg", **opts), u[i:i + 1], c[i:i + 1]) for i in range(2)])
    # equal up to float32 rounding: BLAS may sum the smoothing products in another order per batch size
    torch.testing.assert_close(singles, a, atol=1e-6, rtol=1e-6)


def frame_change(field):
    return (field[:, :, 1:] - field[:, :, :-1]).abs().mean().item()


def test_temporal_smoothing_lowers_frame_to_frame_change():
    u, c = pair((1, 4, 8, 8, 8), seed=6)
    c[:, :, ::2] = u[:, :, ::2] + 3 * (c[:, :, ::2] - u[:, :, ::2])  # energy jumps every other frame
    raw = guidance.create("samg", w_min=1.0, w_max=9.0).scale_field(u, c)
    smooth = guidance.create("samg", w_min=1.0, w_max=9.0, temporal_sigma=1.5).scale_field(u, c)
    assert frame_change(smooth) < 0.5 * frame_change(raw)


@pytest.mark.parametrize("spatial,temporal", [(0.7, 1.5), (1.0, 0.0), (0.0, 2.0), (2.5, 0.4)])
def test_smoothing_equals_scipy_gaussian_filter(spatial, temporal):
    """Independent truth: scipy.ndimage.gaussian_filter1d, replicate ("nearest") borders, radius ceil(3 sigma)."""
    import math

    from scipy.ndimage import gaussian_filter1d

    from samg_video.guidance.smoothing import smooth_field

    x = torch.rand((2, 1, 5, 7, 9), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ref = x.numpy()
    for axis, sigma in ((3, spatial), (4, spatial), (2, temporal)):
        if sigma:
            ref = gaussian_filter1d(ref, sigma, axis=axis, mode="nearest", radius=max(1, math.ceil(3 * sigma)))
    ours = smooth_field(x.float(), spatial, temporal)
    torch.testing.assert_close(ours, torch.from_numpy(ref).float(), atol=1e-6, rtol=0)


def test_smoothing_leaves_a_constant_field_alone():
    from samg_video.guidance.smoothing import smooth_field

    const = torch.full((1, 1, 5, 6, 7), 0.37)
    torch.testing.assert_close(smooth_field(const, 2.0, 3.0), const, atol=1e-6, rtol=0)


def test_step_ema_blends_fields_across_steps():
    u1, c1 = pair((1, 4, 3, 6, 6), seed=7)
    u2, c2 = pair((1, 4, 3, 6, 6), seed=8)
    m = guidance.create("samg", w_min=1.0, w_max=9.0, step_ema=0.75)
    m.reset()
    m(u1, c1, step=0, num_steps=2)
    f1 = m.state.scale_field
    m(u2, c2, step=1, num_steps=2)
    fresh = guidance.create("samg", w_min=1.0, w_max=9.0).scale_field(u2, c2)
    torch.testing.assert_close(m.state.scale_field, 0.75 * f1 + 0.25 * fresh, atol=1e-5, rtol=0)
    m.reset()
    assert m.state.ema is None


def test_zero_delta_gives_finite_w_max_field():
    u = torch.randn(1, 4, 3, 5, 5)
    m = guidance.create("samg", w_min=2.0, w_max=7.0, spatial_sigma=1.0, temporal_sigma=1.0)
    field = m.scale_field(u, u.clone())
    assert torch.isfinite(field).all() and torch.all(field == 7.0)
    torch.testing.assert_close(run(m, u, u.clone()), u)


def test_bound_caps_departure_from_cond():
    u, c = pair((2, 4, 4, 8, 8), seed=9)
    c[:, :, :, :2] *= 20.0  # strong guidance in a band
    bound = 0.5
    out = run(guidance.create("samg", w_min=4.0, w_max=12.0, bound=bound), u, c, steps=1)
    unbounded = run(guidance.create("samg", w_min=4.0, w_max=12.0), u, c, steps=1)
    departure = torch.linalg.vector_norm(out - c, dim=1) / math.sqrt(4)
    cond_rms = c.flatten(1).square().mean(1).sqrt().view(-1, 1, 1, 1)
    assert torch.all(departure <= bound * cond_rms * (1 + 1e-4))
    binding = departure >= bound * cond_rms * (1 - 1e-4)
    assert binding.any() and not binding.all()
    same = ~binding.unsqueeze(1).expand_as(out)
    torch.testing.assert_close(out[same], unbounded[same], atol=1e-5, rtol=0)


def test_interval_outside_choice():
    u, c = pair((1, 4, 2, 4, 4), seed=10)
    inside = guidance.create("samg", w_min=2.0, w_max=6.0, interval=(0.5, 1.0), outside="cfg")
    none = guidance.create("samg", w_min=2.0, w_max=6.0, interval=(0.5, 1.0), outside="none")
    torch.testing.assert_close(inside(u, c, step=0, num_steps=4), u + 6.0 * (c - u), atol=1e-5, rtol=0)
    torch.testing.assert_close(none(u, c, step=0, num_steps=4), c)
    ref, _ = reference_samg(u, c, 2.0, 6.0)
    torch.testing.assert_close(inside(u, c, step=3, num_steps=4), ref, atol=1e-5, rtol=1e-5)


def test_half_precision_in_half_out():
    u, c = pair((1, 4, 3, 8, 8), seed=11, dtype=torch.float16)
    for name in guidance.available():
        out = run(guidance.create(name), u, c)
        assert out.dtype == torch.float16 and out.shape == u.shape and torch.isfinite(out).all()
    out = run(guidance.create("samg", w_min=3.0, w_max=3.0), u, c)
    ref = u.float() + 3.0 * (c.float() - u.float())
    torch.testing.assert_close(out.float(), ref, atol=1e-2, rtol=1e-3)


# ---- baselines reduce to CFG ------------------------------------------------------------

CFG_REDUCTIONS = [
    ("rescale", {"phi": 0.0}),
    ("apg", {"eta": 1.0, "norm_threshold": 0.0, "momentum": 0.0}),
    ("cfg_zero_star", {"use_optimized_scale": False, "zero_init_steps": 0}),
    ("interval", {"interval": (0.0, 1.0)}),
    ("mambo", {"alpha": 0.0}),
    ("fdg", {"scale_low": 5.0}),
    ("apg_mix", {"cfg_scale": 5.0, "start_step": 10}),
    ("stg", {"scale_stg": 0.0}),
    ("slg", {"scale_slg": 0.0}),
    ("pag", {"scale_pag": 0.0}),
]


@pytest.mark.parametrize("name,params", CFG_REDUCTIONS)
def test_baseline_reduces_to_cfg(name, params):
    u, c = pair((2, 4, 3, 6, 6), seed=12)
    out = run(guidance.create(name, scale=5.0, **params), u, c)
    torch.testing.assert_close(out, u + 5.0 * (c - u), atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("per", ["clip", "frame"])
def test_tcfg_is_cfg_when_the_predictions_are_parallel(per):
    """u along the predictions' shared direction (c = 1.3 u) has no tangential part: TCFG is CFG."""
    u, _ = pair((2, 4, 3, 6, 6), seed=15)
    c = 1.3 * u
    torch.testing.assert_close(run(guidance.create("tcfg", scale=5.0, per=per), u, c), u + 5.0 * (c - u),
                               atol=1e-4, rtol=1e-4)  # float32 SVD


def test_rescale_formula():
    u, c = pair((2, 4, 3, 6, 6), seed=13)
    x = u + 5.0 * (c - u)
    std = lambda t: t.flatten(1).std(1).view(-1, 1, 1, 1, 1)  # noqa: E731
    ref = 0.7 * x * std(c) / std(x) + 0.3 * x
    torch.testing.assert_close(run(guidance.create("rescale", scale=5.0, phi=0.7), u, c), ref, atol=1e-5, rtol=1e-5)


def test_apg_removes_parallel_component_per_frame():
    u, c = pair((1, 4, 3, 6, 6), seed=14)
    out = run(guidance.create("apg", scale=5.0, eta=0.0), u, c, steps=1)
    update = (out - u) / 5.0
    for f in range(3):
        dot = (update[:, :, f] * c[:, :, f]).sum()
        assert abs(dot.item()) < 1e-3 * update[:, :, f].norm().item() * c[:, :, f].norm().item()


def test_apg_momentum_and_clipping():
    u1, c1 = pair((1, 4, 2, 5, 5), seed=15)
    u2, c2 = pair((1, 4, 2, 5, 5), seed=16)
    m = guidance.create("apg", scale=2.0, eta=1.0, momentum=-0.5, norm_threshold=1.0, per="clip")
    m.reset()
    m(u1, c1, step=0, num_steps=2)
    out = m(u2, c2, step=1, num_steps=2)
    d = (c2 - u2) - 0.5 * (c1 - u1)
    d = d * min(1.0, 1.0 / d.norm().item())
    torch.testing.assert_close(out, u2 + 2.0 * d, atol=1e-5, rtol=1e-5)


def test_cfg_zero_star_formula_and_zero_init():
    u, c = pair((2, 4, 3, 6, 6), seed=17)
    m = guidance.create("cfg_zero_star", scale=4.0, zero_init_steps=1)
    m.reset()
    assert torch.all(m(u, c, step=0, num_steps=3) == 0)
    s = torch.stack([(c[i] * u[i]).sum() / (u[i] * u[i]).sum() for i in range(2)]).view(-1, 1, 1, 1, 1)
    torch.testing.assert_close(m(u, c, step=1, num_steps=3), s * u + 4.0 * (c - s * u), atol=1e-5, rtol=1e-5)


def test_dynamic_cfg_schedule_on_step_index():
    u, c = pair((1, 4, 2, 4, 4), seed=18)
    m = guidance.create("dynamic_cfg", scale=6.0)
    n = 50
    scales = []
    for i in range(n):
        out = m(u, c, step=i, num_steps=n)
        w = 1 + 6.0 * (1 - math.cos(math.pi * (i / n) ** 5)) / 2
        torch.testing.assert_close(out, u + w * (c - u), atol=1e-5, rtol=1e-6)
        scales.append(w)
    assert scales[0] == 1.0 and all(b >= a for a, b in zip(scales, scales[1:]))


def test_mambo_formula():
    u, c = pair((2, 4, 3, 6, 6), seed=19)
    ratio = torch.stack([(c[i] - u[i]).norm() / u[i].norm() for i in range(2)]).view(-1, 1, 1, 1, 1)
    w = 1 + 6.0 * torch.exp(-0.5 * ratio)
    torch.testing.assert_close(run(guidance.create("mambo", scale=7.0, alpha=0.5), u, c), u + w * (c - u),
                               atol=1e-5, rtol=1e-5)


def test_interval_by_sigma():
    u, c = pair((1, 4, 2, 4, 4), seed=20)
    m = guidance.create("interval", scale=5.0, interval=(0.3, 2.0), by="sigma")
    torch.testing.assert_close(m(u, c, step=0, num_steps=2, sigma=1.0), u + 5.0 * (c - u), atol=1e-5, rtol=0)
    torch.testing.assert_close(m(u, c, step=1, num_steps=2, sigma=5.0), c)
    with pytest.raises(ValueError, match="sigma"):
        m(u, c, step=0, num_steps=2)


# ---- configs ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", guidance.available())
def test_config_round_trip(name, tmp_path):
    m = guidance.create(name)
    assert guidance.from_dict(m.to_dict()) == m
    guidance.save_config(m, tmp_path / "m.yaml")
    assert guidance.load_config(tmp_path / "m.yaml") == m


def test_presets_load(repo_root):
    presets = sorted((repo_root / "configs" / "guidance").glob("*.yaml"))
    assert len(presets) >= 5
    for p in presets:
        raw = yaml.safe_load(p.read_text())
        full = guidance.load_config(p).to_dict()
        assert {k: full[k] for k in raw} == raw, p.name


# ---- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("params,match", [
    ({"w_min": 9, "w_max": 3}, "w_min"),
    ({"spatial_sigma": -1}, "spatial_sigma"),
    ({"temporal_sigma": -0.5}, "temporal_sigma"),
    ({"step_ema": 1.5}, "step_ema"),
    ({"quantiles": (0.9, 0.1)}, "quantiles"),
    ({"energy": "l1"}, "energy"),
    ({"normalize": "pixel"}, "normalize"),
    ({"interval": (0.5, 1.5)}, "interval"),
    ({"bound": -1.0}, "bound"),
    ({"scale": 3}, "parameter 'scale'"),
])
def test_bad_config(params, match):
    with pytest.raises(ValueError, match=match):
        guidance.create("samg", **params)


def test_unknown_method_lists_known():
    with pytest.raises(ValueError, match="available: apg, apg_mix, cfg"):
        guidance.create("pagg")


def test_bad_inputs():
    m = guidance.create("samg")
    u, c = pair((1, 4, 2, 4, 4))
    with pytest.raises(ValueError, match="Unknown layout"):
        m(u, c, step=0, num_steps=1, layout="BTCHW")
    with pytest.raises(ValueError, match="shape"):
        m(u, c[..., :3], step=0, num_steps=1)
    with pytest.raises(ValueError, match="dtype|float"):
        m(u, c.half(), step=0, num_steps=1)
    with pytest.raises(ValueError, match="expects 4 dims"):
        m(u, c, step=0, num_steps=1, layout="BCHW")
    with pytest.raises(ValueError, match="step=5"):
        m(u, c, step=5, num_steps=3)
    bad = c.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    for name in guidance.available():
        with pytest.raises(ValueError, match="pred_cond contains NaN or Inf at step 2"):
            guidance.create(name)(u, bad, step=2, num_steps=4, pred_perturbed=u)
    for name in ("stg", "samg+stg"):
        with pytest.raises(ValueError, match="pred_perturbed contains NaN or Inf at step 1"):
            guidance.create(name)(u, c, step=1, num_steps=4, pred_perturbed=bad)
    inf = u.clone()
    inf[0, 1, 1, 1, 1] = float("inf")
    with pytest.raises(ValueError, match="pred_uncond contains NaN or Inf at step 0"):
        m(inf, c, step=0, num_steps=1)


def test_scale_field_in_each_layout():
    for layout, shape in LAYOUT_SHAPES.items():
        u, c = pair(shape)
        field = guidance.create("samg").scale_field(u, c, layout=layout)
        expected = {"BCFHW": (2, 1, 6, 10, 12), "BFCHW": (2, 6, 1, 10, 12), "BFHWC": (2, 6, 10, 12, 1),
                    "BCHW": (2, 1, 10, 12)}[layout]
        assert field.shape == expected
        assert (u + field * (c - u)).shape == u.shape


def test_from_canonical_field_shapes():
    field = torch.zeros(2, 1, 3, 4, 5)
    assert from_canonical(field, "BFCHW").shape == (2, 3, 1, 4, 5)


def test_field_paths_agree():
    """The CPU channel loop and the one-reduction path (CUDA) give the same energy, and the direct
    map to W (no smoothing) the same field as forming E_n and mapping it (smoothing of width 0+)."""
    from samg_video.guidance.samg import channel_sq_sum

    g = torch.Generator().manual_seed(3)
    u, c = torch.randn(2, 16, 5, 12, 14, generator=g), torch.randn(2, 16, 5, 12, 14, generator=g)
    d = c - u
    assert torch.allclose(channel_sq_sum(d), torch.linalg.vecdot(d, d, dim=1).unsqueeze(1), rtol=1e-6)
    direct = guidance.create("samg", w_min=2, w_max=9).scale_field(u, c)
    formed = guidance.create("samg", w_min=2, w_max=9, step_ema=0.5).scale_field(u, c)  # first step: EMA = E_n
    assert torch.allclose(direct, formed, atol=1e-5) and direct.min() == 2 and direct.max() == 9


def test_field_ops_run_on_one_cpu_thread(monkeypatch):
    """SAMG computes its field on one intra-op thread (no thread hand-off per field-sized op) and
    gives the caller's thread count back afterwards, also when an op inside raises."""
    from samg_video.guidance import samg

    seen, real_range = [], samg.energy_range

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_range(*args, **kwargs)

    monkeypatch.setattr(samg, "energy_range", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        u, c = pair((1, 4, 3, 8, 8))
        guidance.create("samg", w_min=2, w_max=9)(u, c, step=0, num_steps=1)
        assert seen == [1] and torch.get_num_threads() == 2

        def fail(*args, **kwargs):
            raise RuntimeError("inside the field")

        monkeypatch.setattr(samg, "energy_range", fail)
        with pytest.raises(RuntimeError, match="inside the field"):
            guidance.create("samg", w_min=2, w_max=9)(u, c, step=0, num_steps=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_unequal_scales_round_the_guided_line_once():
    """At unequal scales (float32) u + W d is one fused multiply-add: each value is the float64
    value of u + W d rounded once to float32 (within half a unit in the last place), where the
    pipeline-style line rounds W d and the sum separately and misses that bound somewhere."""
    u, c = pair((2, 16, 5, 12, 14), seed=4)
    method = guidance.create("samg", w_min=3, w_max=11)
    field = method.scale_field(u, c)
    out = method(u, c, step=0, num_steps=1)
    exact = u.double() + field.double() * (c - u).double()
    half_ulp = (torch.nextafter(exact.float().abs(), torch.tensor(math.inf)) - exact.float().abs()).double() / 2
    assert ((out.double() - exact).abs() <= half_ulp * (1 + 1e-6)).all()
    two_roundings = u + field * (c - u)
    assert ((two_roundings.double() - exact).abs() > half_ulp * (1 + 1e-6)).any()
