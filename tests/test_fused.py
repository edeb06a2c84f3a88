"""The compiled SAMG step (guidance.fused): the eager step's values, the eager path where it does
not apply, and a clean fall-back when compiling fails."""

from __future__ import annotations

import shutil

import pytest
import torch

from samg_video import guidance
from samg_video.guidance import fused

needs_compiler = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                    reason="torch.compile on the CPU needs a C++ compiler")


@pytest.fixture
def compiled():
    fused.enable()
    yield
    fused.enable(False)


def predictions(layout: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (2, 4, 3, 8, 10) if layout == "BCFHW" else (2, 3, 4, 8, 10)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g) * 1.5


def both_paths(config: dict, layout: str, seed: int = 0):
    u, c = predictions(layout, seed)
    out = {}
    for on in (True, False):
        fused.enable(on)
        m = guidance.from_dict(config)
        m.reset()
        out[on] = (m(u, c, step=3, num_steps=10, layout=layout), m.state.scale_field)
    return out


@needs_compiler
@pytest.mark.parametrize("layout", ["BCFHW", "BFCHW"])
def test_compiled_step_gives_the_eager_values(compiled, layout):
    # scales change between calls (a value change must not reuse a graph built for another value)
    configs = [{}, {"w_min": 3.0, "w_max": 9.0}, {"w_min": 2.0, "w_max": 7.0}, {"energy": "l2"},
               {"normalize": "frame"}, {"bound": 1.5, "w_min": 4.0, "w_max": 6.0}]
    for seed, params in enumerate(configs):
        out = both_paths({"method": "samg", **params}, layout, seed)
        (guided, field), (eager, eager_field) = out[True], out[False]
        torch.testing.assert_close(field, eager_field, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(guided, eager, rtol=1e-6, atol=1e-5)
        assert field.amax() <= params.get("w_max", 12.0) + 1e-6  # the bound only lowers W
        assert "bound" in params or field.amin() >= params.get("w_min", 5.0) - 1e-6


def test_equal_scales_and_smoothing_take_the_eager_path(compiled, monkeypatch):
    calls = []
    monkeypatch.setattr(fused, "run", lambda *a, **k: calls.append(a) or None)
    u, c = predictions("BCFHW")
    for params in ({"w_min": 7.5, "w_max": 7.5}, {"temporal_sigma": 1.0}, {"step_ema": 0.5},
                   {"quantiles": [0.05, 0.95]}):
        guidance.create("samg", **params)(u, c, step=0, num_steps=4)
    guidance.create("samg")(u, c, step=0, num_steps=4, dtype=torch.bfloat16)
    assert calls == []
    # equal scales stay CFG bit for bit with the compiled step on
    same = guidance.create("samg", w_min=7.5, w_max=7.5)(u, c, step=0, num_steps=4)
    assert torch.equal(same, guidance.create("cfg", scale=7.5)(u, c, step=0, num_steps=4))
    guidance.create("samg")(u, c, step=0, num_steps=4)
    assert len(calls) == 1


def test_a_failed_compile_warns_once_and_falls_back(monkeypatch):
    def broken(fn, **kw):
        def call(*a):
            raise RuntimeError("no C++ compiler found")
        return call
    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(fused, "_compiled", {})
    monkeypatch.setattr(fused, "_broken", None)
    fused.enable()
    try:
        u, c = predictions("BCFHW")
        with pytest.warns(UserWarning, match="compiled SAMG step is unavailable.*no C\\+\\+ compiler"):
            out = guidance.create("samg")(u, c, step=0, num_steps=4)
        assert not fused.enabled()
        fused.enable(False)
        torch.testing.assert_close(out, guidance.create("samg")(u, c, step=0, num_steps=4), rtol=0, atol=0)
    finally:
        fused.enable(False)
