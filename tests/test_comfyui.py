"""The ComfyUI node pack against a contract that mirrors ComfyUI's own code (comfy/samplers.py
`cfg_function`, comfy/model_patcher.py `set_model_sampler_cfg_function`, as of Comfy-Org/ComfyUI
a125cd84): the args dict is built exactly as ComfyUI builds it."""

from __future__ import annotations

import inspect
import json

import pytest
import torch

import comfyui_samg
from comfyui_samg.nodes import DERIVED, SAMGCFG, SAMGFieldPreview, SAMGVideo, TemporalMetrics
from samg_video import guidance


class ModelPatcher:
    """The two ModelPatcher methods the nodes use, as ComfyUI writes them."""

    def __init__(self):
        self.model_options = {"transformer_options": {}}

    def clone(self):
        n = ModelPatcher()
        n.model_options = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.model_options.items()}
        return n

    def set_model_sampler_cfg_function(self, sampler_cfg_function, disable_cfg1_optimization=False):
        if len(inspect.signature(sampler_cfg_function).parameters) == 3:
            self.model_options["sampler_cfg_function"] = lambda args: sampler_cfg_function(
                args["cond"], args["uncond"], args["cond_scale"])  # Old way
        else:
            self.model_options["sampler_cfg_function"] = sampler_cfg_function
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True


def cfg_function(model, cond_pred, uncond_pred, cond_scale, x, timestep, model_options={}, cond=None, uncond=None):  # noqa: B006
    """comfy/samplers.py's cfg_function, without the post-CFG loop (no such node here)."""
    if "sampler_cfg_function" in model_options:
        args = {"cond": x - cond_pred, "uncond": x - uncond_pred, "cond_scale": cond_scale, "timestep": timestep,
                "input": x, "sigma": timestep, "cond_denoised": cond_pred, "uncond_denoised": uncond_pred,
                "model": model, "model_options": model_options, "input_cond": cond, "input_uncond": uncond}
        cfg_result = x - model_options["sampler_cfg_function"](args)
    else:
        cfg_result = uncond_pred + (cond_pred - uncond_pred) * cond_scale
    return cfg_result


def node_inputs(**overrides) -> dict:
    """Every input at its node default, then `overrides`."""
    required = SAMGVideo.INPUT_TYPES()["required"]
    values = {k: (spec[1]["default"] if len(spec) > 1 and "default" in spec[1] else None) for k, spec in required.items()}
    return {**values, "model": ModelPatcher(), **overrides}


def run(patched, steps=4, shape=(1, 16, 5, 8, 8), cond_scale=5.0, seed=0, dtype=torch.float32):
    """A sampler's denoised results through the CFG function, one per step of a sigma schedule."""
    g = torch.Generator().manual_seed(seed)
    sigmas = torch.linspace(1.0, 0.0, steps + 1)
    options = patched.model_options
    options["transformer_options"]["sample_sigmas"] = sigmas
    outs, preds = [], []
    for i in range(steps):
        x = torch.randn(shape, generator=g).to(dtype)
        c, u = (torch.randn(shape, generator=g).to(dtype) for _ in range(2))
        sigma = sigmas[i].expand(shape[0])
        outs.append(cfg_function(None, c, u, cond_scale, x, sigma, model_options=options))
        preds.append((x, c, u, float(sigmas[i])))
    return outs, preds


def test_the_pack_loads_as_comfyui_loads_it():
    assert set(comfyui_samg.NODE_CLASS_MAPPINGS) == {"SAMGVideo", "SAMGFieldPreview", "SAMGTemporalMetrics"}
    assert set(comfyui_samg.NODE_DISPLAY_NAME_MAPPINGS) == set(comfyui_samg.NODE_CLASS_MAPPINGS)
    for cls in comfyui_samg.NODE_CLASS_MAPPINGS.values():
        for name, spec in cls.INPUT_TYPES()["required"].items():
            assert len(spec) > 1 and spec[1].get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
        assert callable(getattr(cls(), cls.FUNCTION)) and cls.CATEGORY and cls.DESCRIPTION


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_equal_scales_are_comfyuis_cfg_formula(dtype):
    """w_min == w_max == cfg: the function returns x - g with g ComfyUI's own CFG formula bit for
    bit; the sampler's result is then x - (x - g), the round trip of every CFG-function node."""
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=5.0, w_max=5.0, temporal_sigma=1.0, spatial_sigma=1.0))
    assert patched.model_options["disable_cfg1_optimization"] is True
    outs, preds = run(patched, dtype=dtype)
    for out, (x, c, u, _) in zip(outs, preds):
        formula = u + (c - u) * 5.0
        assert torch.equal(out, x - (x - formula))
        eps = torch.finfo(dtype).eps  # the round trip: two roundings on values up to |x| + |g|
        assert (out.float() - formula.float()).abs().max() <= 2 * eps * (x.float().abs() + formula.float().abs()).max()


def test_a_range_is_samg_video_on_the_same_predictions_and_a_new_run_resets():
    """The node's guided result equals samg_video.guidance's SAMG on the denoised predictions at the
    step the sampler's sigmas give; step EMA state restarts when the sigma rises (a new run)."""
    params = dict(w_min=2.0, w_max=8.0, temporal_sigma=1.0, step_ema=0.5)
    (patched,) = SAMGVideo().patch(**node_inputs(**params))
    reference = guidance.create("samg", **params)
    for seed in (0, 1):  # two runs back to back: the second must not inherit the first's EMA
        reference.reset()
        outs, preds = run(patched, seed=seed)
        for i, (out, (x, c, u, sigma)) in enumerate(zip(outs, preds)):
            want = reference(u, c, step=i, num_steps=4, sigma=sigma)
            assert torch.equal(out, x - (x - want))
    assert len(patched.model_options["sampler_cfg_function"].fields) == 4  # the last run's fields only


def test_the_range_follows_the_samplers_cfg_when_left_at_minus_one():
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=DERIVED, w_max=DERIVED, temporal_sigma=0.0))
    fn = patched.model_options["sampler_cfg_function"]
    run(patched, cond_scale=6.0)
    assert (fn.method.w_min, fn.method.w_max) == pytest.approx((4.0, 9.6))
    field = fn.fields[0]
    assert field.amin().item() == pytest.approx(4.0) and field.amax().item() == pytest.approx(9.6)


def test_guide_frames_take_no_part_in_the_field():
    """Two keyframe latents appended at the end of the frame axis (LTXVAddGuide): the generated
    frames' field spans exactly [w_min, w_max] however large the guides' energy."""
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0, temporal_sigma=0.0, guide_frames=2))
    fn = patched.model_options["sampler_cfg_function"]
    shape = (1, 16, 5, 8, 8)
    x, u = torch.zeros(shape), torch.zeros(shape)
    c = torch.rand(shape)
    c[:, :, -2:] *= 100  # the guides would dominate the energy's range
    sigmas = torch.linspace(1, 0, 5)
    options = {**patched.model_options, "transformer_options": {"sample_sigmas": sigmas}}
    cfg_function(None, c, u, 5.0, x, sigmas[:1], model_options=options)
    generated = fn.fields[0][:, :, :3]
    assert generated.amin().item() == pytest.approx(2.0, abs=1e-4) and generated.amax().item() == pytest.approx(8.0)


def test_bad_settings_are_refused_when_the_node_runs():
    with pytest.raises(ValueError, match="must not exceed"):
        SAMGVideo().patch(**node_inputs(w_min=9.0, w_max=3.0))
    with pytest.raises(ValueError, match="leaves no generated frame"):
        (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0, guide_frames=5))
        run(patched)


def test_field_preview_and_metrics_nodes():
    (patched,) = SAMGVideo().patch(**node_inputs(w_min=2.0, w_max=8.0))
    with pytest.raises(ValueError, match="has not sampled yet"):
        SAMGFieldPreview().preview(patched, {"samples": None}, -1, 4)
    run(patched)
    (images,) = SAMGFieldPreview().preview(patched, {"samples": None}, -1, 4)
    assert images.shape[:3] == (5, 32, images.shape[2]) and images.shape[2] > 32 and images.shape[3] == 3
    assert 0 <= images.min() and images.max() <= 1
    with pytest.raises(ValueError, match="not patched by the SAMG"):
        SAMGFieldPreview().preview(ModelPatcher(), {}, -1, 4)
    # the node's numbers are samg_video.metrics' on the same frames; a moving square moves, a still one not
    from samg_video import metrics

    frames = torch.zeros(6, 32, 32, 3)
    for t in range(6):
        frames[t, 10:18, 4 + 2 * t:12 + 2 * t] = 1.0
    text, flicker, warp, motion = TemporalMetrics().measure(frames, False)
    want = metrics.compute(frames.numpy(), metrics=["flicker", "warp_error", "motion", "saturation"])
    assert json.loads(text) == pytest.approx(want) and (flicker, warp, motion) == (want["flicker"], want["warp_error"],
                                                                                   want["motion"])
    still = TemporalMetrics().measure(frames[:1].expand(6, -1, -1, -1).contiguous(), False)
    assert motion > 0.2 and still[3] < 0.01 and still[1] == pytest.approx(1.0)


# --- the real ComfyUI tier: COMFYUI_PATH=/path/to/ComfyUI (its requirements importable) --------------

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
        import nodes
    except ImportError as err:
        pytest.skip(f"ComfyUI at {path} does not import here ({err}); install its requirements.txt")
    return comfy, nodes


def tiny_wan(comfy):
    """A random Wan 2.1 T2V model at tiny width, loaded by ComfyUI's own model detection."""
    from comfy.ldm.wan.model import WanModel

    torch.manual_seed(0)
    net = WanModel(model_type="t2v", dim=128, ffn_dim=256, freq_dim=256, text_dim=4096, num_heads=1, num_layers=2,
                   operations=comfy.ops.disable_weight_init)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return comfy.sd.load_diffusion_model_state_dict(net.state_dict())


def sample(comfy, model, cfg=5.0, steps=4):
    g = torch.Generator().manual_seed(0)
    latent = torch.zeros(1, 16, 3, 8, 8)
    noise = torch.randn(latent.shape, generator=g)
    positive, negative = [[torch.randn(1, 8, 4096, generator=g), {}]], [[torch.randn(1, 8, 4096, generator=g), {}]]
    return comfy.sample.sample(model, noise, steps, cfg, "euler", "simple", positive, negative, latent, seed=0,
                               disable_pbar=True)


def test_real_comfyui_loads_the_pack_and_samples_with_it():
    """Against ComfyUI itself: the pack loads through ComfyUI's custom-node loader; a tiny random Wan
    2.1 model samples through KSampler's path with SAMG; at equal scales the result is ComfyUI's
    built-in CFG up to ComfyUI's own x - (x - g) round trip per step; a real range changes it; the
    field preview shows the run's frames."""
    import asyncio
    from pathlib import Path

    comfy, nodes = comfyui()
    root = Path(__file__).resolve().parents[1]
    assert asyncio.run(nodes.load_custom_node(str(root / "comfyui_samg")))  # as from custom_nodes/ (a link)
    assert set(comfyui_samg.NODE_CLASS_MAPPINGS) <= set(nodes.NODE_CLASS_MAPPINGS)
    model = tiny_wan(comfy)
    builtin = sample(comfy, model)
    samg = nodes.NODE_CLASS_MAPPINGS["SAMGVideo"]()
    (equal,) = samg.patch(**node_inputs(model=model, w_min=5.0, w_max=5.0))
    same = sample(comfy, equal)
    assert (same - builtin).abs().max() <= 1e-5 * builtin.abs().max()
    (ranged,) = samg.patch(**node_inputs(model=model, w_min=2.0, w_max=8.0))
    varied = sample(comfy, ranged)
    assert (varied - builtin).abs().max() > 1e-3
    (images,) = nodes.NODE_CLASS_MAPPINGS["SAMGFieldPreview"]().preview(ranged, {"samples": varied}, -1, 4)
    assert images.shape[0] == 3 and images.shape[-1] == 3


def test_real_comfyui_validates_the_example_workflows(tmp_path):
    """Each example workflow (API format, comfyui_samg/workflows/) passes ComfyUI's own graph
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
    workflows = sorted((root / "comfyui_samg" / "workflows").glob("*.json"))
    assert len(workflows) == 4
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
        assert {e["class_type"] for e in graph.values()} >= {"SAMGVideo", "SAMGFieldPreview", "SAMGTemporalMetrics"}
