"""Perturbation guidance through `apply`: one extra denoiser call per step with blocks skipped.

On the transformer stand-ins (real repo layouts, diffusers' own layer-skip hooks) and on
the bundled U-Net (its `skippable_blocks`):
- the extra call is made once per guided step and counted (`handle.extra_calls`), the
  pipeline's own calls are unchanged;
- a forward hook on the perturbed block sees it bypassed (output is its input) in the
  extra call only, and the block runs normally in the pipeline's calls;
- `scale_stg=0` is the method without the term bit for bit, with no extra call;
- the hooks are gone after the run (the next plain call is the unperturbed model).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from samg_video import guidance
from samg_video.guidance.base import Perturbation
from samg_video.pipelines import apply
from samg_video.pipelines.perturb import block_stack, perturbed

TRANSFORMERS = ["cogvideox-2b", "wan2.1-t2v-1.3b", "ltx-video", "hunyuanvideo"]


def first_tensor(x):
    return x if torch.is_tensor(x) else x[0]


class BlockWatch:
    """Records, per call of a block, whether its output equals its input hidden states."""

    def __init__(self, block):
        self.bypassed: list[bool] = []
        self.handle = block.register_forward_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs, output):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        self.bypassed.append(bool(torch.equal(first_tensor(output), hidden)))


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_stg_on_transformer_standins(name, standin_root):
    from test_real_layouts import STEPS, call, denoiser, load

    pipe = load(name, standin_root, "float32")
    model = denoiser(pipe)
    _, blocks = block_stack(model, "auto")
    middle = len(blocks) // 2
    w = 5.0
    with apply(pipe, "cfg", scale=w):
        plain = call(pipe, name, w)
    watch = BlockWatch(blocks[middle])
    with apply(pipe, "stg", scale=w, scale_stg=2.0) as handle:
        guided = call(pipe, name, w)
    watch.handle.remove()
    native_calls = STEPS * (2 if name in ("wan2.1-t2v-1.3b", "hunyuanvideo") else 1)
    assert handle.calls == native_calls and handle.extra_calls == STEPS
    # the pipeline's calls run the block; each extra call bypasses it
    assert watch.bypassed.count(True) == STEPS and watch.bypassed.count(False) == native_calls
    assert not torch.equal(guided, plain)
    with apply(pipe, "stg", scale=w, scale_stg=0.0) as handle:
        assert torch.equal(call(pipe, name, w), plain) and handle.extra_calls == 0
    watch = BlockWatch(blocks[middle])
    call(pipe, name, w)
    watch.handle.remove()
    assert not any(watch.bypassed)  # no layer-skip hook left behind


def test_samg_stg_on_a_transformer_records_its_field(standin_root):
    from test_real_layouts import STEPS, call, load

    name = "wan2.1-t2v-1.3b"
    pipe = load(name, standin_root, "float32")
    fields = []
    with apply(pipe, "samg+stg", w_min=3.0, w_max=7.0, scale_stg=1.0, stg_field=True,
               callback=lambda info: fields.append((info.scale_field, info.extra_calls))) as handle:
        call(pipe, name, 5.0)
    assert handle.extra_calls == STEPS and [n for _, n in fields] == [1] * STEPS
    assert all(f is not None and 3.0 <= float(f.min()) <= float(f.max()) <= 7.0 for f, _ in fields)


def test_attention_mode_where_diffusers_lacks_the_processor_is_one_sentence(standin_root):
    from test_real_layouts import call, load

    pipe = load("cogvideox-2b", standin_root, "float32")
    with pytest.raises(ValueError, match="diffusers cannot perturb CogVideoXTransformer3DModel with mode='attention'"):
        with apply(pipe, "stg", scale=5.0, mode="attention"):
            call(pipe, "cogvideox-2b", 5.0)


def test_layers_out_of_range_are_named(standin_root):
    from test_real_layouts import call, load

    pipe = load("ltx-video", standin_root, "float32")
    with pytest.raises(ValueError, match=r"layers \[99\] are out of range"):
        with apply(pipe, "stg", scale=5.0, layers=[99]):
            call(pipe, "ltx-video", 5.0)


# ---- the bundled model --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo():
    from samg_video.demo import load_pipeline

    os.environ["HF_HUB_OFFLINE"] = "1"
    return load_pipeline()


def run_demo(pipe, method: dict, steps: int = 4):
    with apply(pipe, method) as handle:
        frames = pipe("a red circle moving left", num_frames=6, num_inference_steps=steps, guidance_scale=2.0,
                      generator=torch.Generator().manual_seed(0)).frames[0]
    return frames, handle


def test_stg_on_the_bundled_model_skips_its_middle_temporal_layer(demo):
    assert demo.unet.skippable_blocks[2] == "temporal_attn2"  # the middle of four: the default layer
    watch = BlockWatch(demo.unet.temporal_attn2)
    stg, handle = run_demo(demo, {"method": "stg", "scale": 2.0, "scale_stg": 1.0})
    watch.handle.remove()
    assert handle.calls == 4 and handle.extra_calls == 4
    assert watch.bypassed == [False, True] * 4  # (the CFG call, then its extra call) per step
    cfg, _ = run_demo(demo, {"method": "cfg", "scale": 2.0})
    off, handle = run_demo(demo, {"method": "stg", "scale": 2.0, "scale_stg": 0.0})
    assert np.array_equal(off, cfg) and handle.extra_calls == 0
    assert not np.array_equal(stg, cfg)
    samg, _ = run_demo(demo, {"method": "samg", "w_min": 1.5, "w_max": 3.0})
    samg_off, _ = run_demo(demo, {"method": "samg+stg", "w_min": 1.5, "w_max": 3.0, "scale_stg": 0.0})
    assert np.array_equal(samg_off, samg)


def test_identity_attention_on_the_bundled_model_returns_the_values(demo):
    """mode="attention": the perturbed layer's attention equals torch's own attention restricted to
    the diagonal (each token attends only to itself)."""
    attn = demo.unet.temporal_attn1.attn
    seen = []

    def record(module, args, kwargs, output):
        seen.append((args[2] if len(args) > 2 else kwargs["value"], output[0]))

    hook = attn.register_forward_hook(record, with_kwargs=True)
    x = torch.randn(1, 3, 4, 32, 32)
    states, mask = demo.encode_prompt(["a red circle moving left"])
    with perturbed(demo.unet, Perturbation(layers=(0,), mode="attention")), torch.no_grad():
        demo.unet(x, 500, states, mask)
    hook.remove()
    value, out = seen[0]
    length = value.shape[1]
    with torch.no_grad():
        diagonal, _ = attn(value, value, value, attn_mask=~torch.eye(length, dtype=torch.bool), need_weights=False)
    torch.testing.assert_close(out, diagonal, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, attn(value, value, value, need_weights=False)[0], atol=1e-3)


def test_perturbation_methods_need_the_perturbed_prediction():
    u, c = torch.randn(2, 1, 4, 2, 8, 8)
    with pytest.raises(ValueError, match="needs the perturbed conditional prediction"):
        guidance.create("stg", scale=3.0)(u, c, step=0, num_steps=2)
    out = guidance.create("stg", scale=3.0, scale_stg=0.5)(u, c, step=0, num_steps=2, pred_perturbed=u)
    torch.testing.assert_close(out, u + 3.0 * (c - u) + 0.5 * (c - u), atol=1e-5, rtol=1e-5)

