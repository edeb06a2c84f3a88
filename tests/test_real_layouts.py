"""Tier (b): every registry model end to end, from a stand-in folder with the real repo's layout.

Each stand-in (tests/standins) has the real `model_index.json` and scheduler config and
the real component classes with tiny weights; it is loaded exactly as the real weights
are (`load_model`, or the CLI with --model-path). For every model:
- `samg-video generate` with `samg` and with `cfg` writes a playable clip;
- SAMG with w_min == w_max == w equals the pipeline's own CFG at w bit for bit, in
  float32 and bfloat16 (the hook does the arithmetic the way each pipeline does);
- the number of denoiser calls is unchanged, and `remove()` restores the pipeline bit for bit.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch

import standins
from samg_video import cli, media
from samg_video.pipelines import apply
from samg_video.pipelines.hook import noise_level
from samg_video.cards import card
from samg_video.arguments import VIDEO_INPUTS, call_arguments
from samg_video.pipelines.registry import load_model

PROMPT = "a red fox runs on the beach"
STEPS = 2


def model_args(name: str, root) -> list[str]:
    frames, height, width = standins.SIZES[name]
    args = ["--model", name, "--model-path", str(root / name), "--steps", str(STEPS), "--height", str(height),
            "--width", str(width), "--device", "cpu"]
    if frames > 1:
        args += ["--frames", str(frames)]
    if name.startswith("animatediff"):
        args += ["--adapter-path", str(root / "motion-adapter")]
    if "controlnet" in card(name):
        args += ["--controlnet-path", str(root / "controlnet")]
    given = standins.inputs(name)
    if "image" in given:
        given["image"].save(root / f"{name}.png")
        args += ["--image", str(root / f"{name}.png")]
    video = next((given[k] for k in ("video", "control_video", "conditioning_frames") if k in given), None)
    if video is not None:
        import numpy as np

        source = media.write_video(np.stack([np.asarray(f) for f in video]), root / f"{name}-source.mp4")
        args += ["--video", str(source)]
    return args


def load(name: str, root, dtype: str):
    from conftest import load_standin

    return load_standin(name, root, dtype)


def call(pipe, name: str, scale: float, **extra):
    """Final latents of one generation with the pipeline's own CFG at `scale` (`extra`: more call arguments):
    the card's call at the stand-in's size, adapted to the pipeline as `samg-video generate` adapts it."""
    frames, height, width = standins.SIZES[name]
    c = card(name)
    kwargs = dict(num_inference_steps=STEPS, output_type="latent", generator=torch.Generator().manual_seed(0),
                  height=height, width=width)
    if frames > 1 and c.get("input") != "video":
        kwargs["num_frames"] = frames
    if "true_cfg_scale" in c:  # HunyuanVideo: true CFG is the guided path
        kwargs.update(true_cfg_scale=scale, negative_prompt=c["negative_prompt"])
    else:  # (a pipeline with a guider component takes no guidance_scale: call_arguments drops it)
        kwargs["guidance_scale"] = scale
        if "negative_prompt" in c:  # EasyAnimate needs one whenever it runs CFG
            kwargs["negative_prompt"] = c["negative_prompt"]
        if type(getattr(pipe, "guider", None)).__name__ == "ClassifierFreeGuidance":  # HunyuanVideo 1.5
            pipe.guider.guidance_scale = scale
    length = inspect.signature(type(pipe).__call__).parameters.get("max_sequence_length")
    if length is not None and isinstance(length.default, int) and length.default > 512:
        kwargs["max_sequence_length"] = 32  # LTX-2's 1024 prompt tokens only cost time here
    given = {("video" if k in VIDEO_INPUTS else k): v for k, v in standins.inputs(name).items()}  # as the CLI gives
    kwargs, inputs = call_arguments(pipe, c, kwargs, given)
    out = pipe(prompt=PROMPT, **kwargs, **inputs, **extra)
    return (out.frames if hasattr(out, "frames") else out.images).clone()


def denoiser(pipe):
    return pipe.transformer if hasattr(pipe, "transformer") else pipe.unet


@pytest.mark.parametrize("method", ["samg", "cfg"])
@pytest.mark.parametrize("name", standins.NAMES)
def test_cli_generates_a_playable_clip(name, method, standin_root, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    field = ["--save-scale-field"] if method == "samg" else []
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(out), "--method", method, *field,
                   *model_args(name, standin_root)])
    assert rc == 0, capsys.readouterr().err
    frames, height, width = standins.SIZES[name]
    assert media.read_video(out).shape == (frames, height, width, 3)
    if field:  # the clip beside the heatmap of its scale field
        heat = media.read_video(tmp_path / "clip_field.mp4")
        assert heat.shape[0] == frames and heat.shape[1] >= height and heat.shape[2] >= 2 * width
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", standins.NAMES)
def test_equal_scales_are_the_pipelines_own_cfg_bit_for_bit(name, dtype, standin_root):
    pipe = load(name, standin_root, dtype)
    w = card(name)["guidance_scale"]
    calls = []
    experts = [m for m in (denoiser(pipe), getattr(pipe, "transformer_2", None)) if m is not None]  # Wan 2.2 A14B
    counters = [m.register_forward_pre_hook(lambda *a: calls.append(1)) for m in experts]
    native = call(pipe, name, w)
    native_calls = len(calls)
    calls.clear()
    with apply(pipe, "samg", w_min=w, w_max=w, temporal_sigma=1.0, spatial_sigma=1.0) as handle:
        # the pipeline's own scale no longer matters, except where its CFG term is rewritten (LTX-2)
        other = w if getattr(handle, "adapter", None) is not None and handle.adapter.combine == "delta" else w + 1.5
        guided = call(pipe, name, other)
    assert torch.equal(guided, native)
    assert len(calls) == native_calls == handle.calls
    with apply(pipe, "samg", w_min=w / 2, w_max=w * 2):
        varied = call(pipe, name, w)
    assert not torch.equal(varied, native)  # a real field changes the result
    for counter in counters:
        counter.remove()
    assert torch.equal(call(pipe, name, w), native)  # remove() restored the pipeline
    assert not denoiser(pipe)._forward_hooks


@pytest.mark.parametrize("name", standins.NAMES)
def test_noise_level_of_every_scheduler(name, standin_root):
    """sigma is defined (finite, or inf at a zero-SNR start) and never raises."""
    pipe = load(name, standin_root, "float32")
    sigmas = []
    with apply(pipe, "samg", callback=lambda info: sigmas.append(info.sigma)):
        call(pipe, name, 5.0)
    assert sigmas and all(s is not None and s >= 0 for s in sigmas)
    assert sigmas == sorted(sigmas, reverse=True)  # from noise towards the clip, whatever the table's direction
    if "video" not in standins.inputs(name):  # video-to-video starts `strength` into the schedule
        assert sigmas[0] > 0.5
    if card(name)["pipeline"] == "CogVideoXPipeline":  # zero terminal SNR: the first step is pure noise
        assert sigmas[0] == math.inf and math.isfinite(sigmas[-1])


def test_zero_snr_dpm_scheduler_sigma():
    from diffusers import CogVideoXDPMScheduler

    config = standins.REPOS / "cogvideox-5b" / "scheduler_config.json"
    scheduler = CogVideoXDPMScheduler.from_config(CogVideoXDPMScheduler.load_config(config))
    scheduler.set_timesteps(4)
    levels = [noise_level(scheduler, i, float(t)) for i, t in enumerate(scheduler.timesteps)]
    assert levels[0] == math.inf and all(math.isfinite(s) for s in levels[1:])
    assert levels[1:] == sorted(levels[1:], reverse=True)


def test_folder_of_another_model_is_one_sentence(standin_root, tmp_path, capsys):
    rc = cli.main(["generate", "--model", "cogvideox-2b", "--model-path", str(standin_root / "wan2.1-t2v-1.3b"),
                   "--prompt", PROMPT, "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "holds a WanPipeline (model_index.json), but cogvideox-2b needs a CogVideoXPipeline" in err


def test_missing_motion_adapter_is_named(standin_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    rc = cli.main(["generate", "--model", "animatediff", "--model-path", str(standin_root / "animatediff"),
                   "--prompt", PROMPT, "--out", str(tmp_path / "x.mp4"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "motion adapter" in err and "hf download guoyww/animatediff-motion-adapter-v1-5-2" in err
    assert "--adapter-path" in err


def test_a_missing_package_of_the_pipeline_is_named_before_loading(standin_root, tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else find_spec(name, *a))
    standins.inputs("ltx-2-i2v")["image"].save(tmp_path / "first.png")
    rc = cli.main(["generate", "--model", "ltx-2-i2v", "--model-path", str(standin_root / "ltx-2-i2v"), "--image",
                   str(tmp_path / "first.png"), "--prompt", PROMPT, "--out", str(tmp_path / "x.mp4"),
                   "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "ltx-2-i2v needs av" in err and "pip install av" in err


def test_missing_controlnet_is_named(standin_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import numpy as np

    clip = media.write_video(np.zeros((4, 32, 32, 3), np.uint8), tmp_path / "depth.mp4")
    rc = cli.main(["generate", "--model", "animatediff-controlnet", "--model-path", str(standin_root / "animatediff"),
                   "--adapter-path", str(standin_root / "motion-adapter"), "--video", str(clip),
                   "--prompt", PROMPT, "--out", str(tmp_path / "x.mp4"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "ControlNet" in err and "lllyasviel/control_v11f1p_sd15_depth" in err and "--controlnet-path" in err


def test_animatediff_uses_the_docs_scheduler(standin_root):
    pipe = load("animatediff", standin_root, "float32")
    config = pipe.scheduler.config
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert (config.beta_schedule, config.timestep_spacing, config.clip_sample, config.steps_offset) == \
        ("linear", "linspace", False, 1)


def test_wan_keeps_its_vae_in_float32(standin_root):
    pipe = load_model(card("wan2.1-t2v-1.3b"), str(standin_root / "wan2.1-t2v-1.3b"), "cpu", "bfloat16")
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.vae.dtype == torch.float32


def test_two_experts_each_at_their_own_scale(standin_root):
    """Wan 2.2 A14B: SAMG with equal scales per expert (4 on the high-noise transformer, 3 on the
    low-noise transformer_2) is the pipeline's own CFG at guidance_scale 4 / guidance_scale_2 3,
    bit for bit; StepInfo names the expert of each step; generate derives the second expert's
    range from the card (times guidance_scale_2 / guidance_scale)."""
    from samg_video import guidance
    from samg_video.generate import expert_methods

    name = "wan2.2-t2v-a14b"
    pipe = load(name, standin_root, "bfloat16")
    frames, height, width = standins.SIZES[name]
    kwargs = dict(prompt=PROMPT, height=height, width=width, num_frames=frames, num_inference_steps=4,
                  output_type="latent")
    native = pipe(**kwargs, guidance_scale=4.0, guidance_scale_2=3.0, generator=torch.Generator().manual_seed(0)).frames
    experts = []
    low = guidance.create("samg", w_min=3, w_max=3)
    with apply(pipe, "samg", w_min=4, w_max=4, experts={"transformer_2": low},
               callback=lambda i: experts.append(i.expert)):
        guided = pipe(**kwargs, guidance_scale=9.0, generator=torch.Generator().manual_seed(0)).frames
    assert torch.equal(guided, native)
    assert experts == ["transformer"] * 3 + ["transformer_2"]  # the switch at boundary_ratio 0.875
    second = expert_methods(card(name), guidance.create("samg", w_min=2.64, w_max=6.4))["transformer_2"]
    assert (second.w_min, second.w_max) == pytest.approx((1.98, 4.8))
    with pytest.raises(ValueError, match="has no denoiser 'transformer_3'"):
        apply(pipe, "cfg", experts={"transformer_3": low})


def test_image_to_video_sweep_runs_resumes_and_reports(standin_root, tmp_path, capsys):
    """A sweep whose prompts carry their first frames, on the Wan 2.1 I2V stand-in: each item's id
    includes its image's content, the rerun finds everything done, a changed image is redone, the
    report shows the input image beside the clips; a prompt without an image is refused up front."""
    import numpy as np
    import yaml
    from PIL import Image

    from samg_video.manifest import read_manifest

    name = "wan2.1-i2v-14b-480p"
    frames, height, width = standins.SIZES[name]
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(tmp_path / f"first{i}.png")
    config = {"model": name, "model_path": str(standin_root / name), "device": "cpu", "steps": STEPS,
              "frames": frames, "height": height, "width": width, "seeds": [0], "lpips": False, "batch": 2,
              "methods": ["cfg:5", "samg:3-8"],
              "prompts": [{"prompt": PROMPT, "image": "first0.png"},
                          {"prompt": "a cat on the beach", "image": "first1.png"}]}
    path = tmp_path / "i2v.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert cli.main(["sweep", str(path), "--out", str(run)]) == 0
    rows = read_manifest(run)
    assert len(rows) == 4 and {Path(r["image"]).name for r in rows} == {"first0.png", "first1.png"}
    capsys.readouterr()
    assert cli.main(["sweep", str(path), "--out", str(run)]) == 0
    assert "0 done, 4 already there" in capsys.readouterr().out
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(tmp_path / "first1.png")
    assert cli.main(["sweep", str(path), "--out", str(run), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("4 planned, 2 done, 2 left")  # the changed image's items
    assert cli.main(["sweep", str(path), "--out", str(run)]) == 0
    assert cli.main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert page.count("alt=\"input image\"") == 2 and len(list((run / "gallery").glob("input_*.png"))) == 2
    config["prompts"][1] = "a cat on the beach"
    path.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "other")]) == 2
    assert "is an image-to-video model: give every prompt its first frame" in capsys.readouterr().err


def test_conditioning_frames_take_no_part_in_the_field(standin_root):
    """LTX-Video image-to-video keeps its first latent frame (the image; per-token timestep 0):
    SAMG normalises the energy over the generated frames only, so their field spans exactly
    [w_min, w_max]; equal scales stay the pipeline's own CFG."""
    name = "ltx-video-i2v"
    pipe = load(name, standin_root, "float32")
    fields = []
    with apply(pipe, "samg", w_min=1.0, w_max=5.0, callback=lambda info: fields.append(info.scale_field)):
        call(pipe, name, 3.0)
    for field in fields:  # (B, 1, F, H, W)
        generated = field[:, :, 1:]
        assert generated.amin().item() == pytest.approx(1.0, abs=1e-3) and generated.amax().item() == pytest.approx(5.0)


def test_masked_energy_range_is_the_range_of_the_kept_entries():
    import numpy as np

    from samg_video.guidance.samg import energy_range

    torch.manual_seed(0)
    energy = torch.rand(2, 1, 3, 4, 4)
    keep = torch.ones(2, 1, 3, 4, 4, dtype=torch.bool)
    keep[:, :, 0] = False  # a conditioning frame
    for domain in ("clip", "frame"):
        for quantiles in ((0.0, 1.0), (0.1, 0.9)):
            rows, lo, hi = energy_range(energy, domain, quantiles, keep)
            flat_keep = keep.reshape(rows.shape).numpy()
            for r in range(rows.shape[0]):
                kept = rows[r].numpy()[flat_keep[r]]
                want = np.quantile(kept, quantiles) if kept.size else (0.0, 0.0)
                assert (lo[r, 0].item(), hi[r, 0].item()) == pytest.approx(tuple(want), abs=1e-6)


def test_a_run_without_cfg_is_one_sentence(standin_root, tmp_path, capsys, monkeypatch):
    """A model run at guidance_scale 1 (a CFG-distilled setting) has no unconditional pass: SAMG
    says so in one sentence, exit 2, instead of silently doing nothing."""
    import samg_video.cards as cards_module

    distilled = dict(card("wan2.1-t2v-1.3b"), guidance_scale=1.0)
    monkeypatch.setattr(cards_module, "card", lambda name: distilled if name == "wan2.1-t2v-1.3b" else card(name))
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path / "x.mp4"), "--method", "samg",
                   *model_args("wan2.1-t2v-1.3b", standin_root)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "not running classifier-free guidance" in err, err
    assert not (tmp_path / "x.mp4").exists()


def test_a_guider_slot_takes_the_method_and_gives_the_pipeline_back(standin_root):
    """HunyuanVideo 1.5 guides in its `guider` component: apply puts the method there (no hook on
    the transformer), remove() puts the pipeline's own guider object back; a method that needs a
    perturbed call, or `experts`, is one sentence."""
    name = "hunyuanvideo-1.5-480p-t2v"
    pipe = load(name, standin_root, "float32")
    own = pipe.guider
    with apply(pipe, "cfg", scale=6.0) as handle:
        assert type(pipe.guider).__name__ == "MethodGuider" and not pipe.transformer._forward_hooks
        cfg = call(pipe, name, 6.0)
    assert pipe.guider is own and not pipe.transformer._forward_pre_hooks
    assert handle.calls == 2 * STEPS and torch.equal(cfg, call(pipe, name, 6.0))  # CFG through the slot = its own
    with pytest.raises(ValueError, match="extra perturbed denoiser call"):
        apply(pipe, "samg+stg")
    with pytest.raises(ValueError, match="one denoiser"):
        apply(pipe, "samg", experts={"transformer_2": "samg"})
    assert pipe.guider is own


def test_a_keyframe_is_a_trailing_frame_outside_the_fields_statistics(standin_root):
    """LTXConditionPipeline with a condition away from frame 0 appends tokens after the latent grid,
    with coordinates of their own: the grid read from the coordinates ends with them as one more
    frame. Only the tokens at the step's timestep (the generated ones) set the field's
    statistics, so there the field spans exactly [w_min, w_max]."""
    name = "ltx-video-0.9.5"
    pipe = load(name, standin_root, "float32")
    frames, height, width = standins.SIZES[name]
    timesteps, fields = [], []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: timesteps.append(kwargs["timestep"][-1:]), with_kwargs=True)
    with apply(pipe, "samg", w_min=1.0, w_max=5.0, callback=lambda info: fields.append(info.scale_field)):
        pipe(prompt=PROMPT, image=standins.inputs(name)["image"], frame_index=8, height=height, width=width,
             num_frames=frames, num_inference_steps=STEPS, output_type="latent",
             generator=torch.Generator().manual_seed(0))
    hook.remove()
    latent_frames = (frames - 1) // 8 + 1
    for t, field in zip(timesteps, fields):  # t: (1, N) per token; field: (1, 1, F + 1, H, W)
        assert field.shape[2] == latent_frames + 1
        kept = field.flatten()[t.flatten() >= t.max()]
        assert 0 < kept.numel() < field.numel()
        assert kept.amin().item() == pytest.approx(1.0, abs=1e-3) and kept.amax().item() == pytest.approx(5.0)


def test_a_pipeline_that_sizes_from_the_image_gets_a_note_and_a_control_video_is_cut(standin_root, tmp_path, capsys):
    """HunyuanVideo 1.5 I2V sizes its clip from the image: --height / --width are dropped with a note.
    Wan VACE takes a control video and a frame count: a 12-frame source is cut to 9 (4k + 1)."""
    import numpy as np

    name = "hunyuanvideo-1.5-480p-i2v"
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path / "hy.mp4"), "--method", "cfg",
                   *model_args(name, standin_root)])
    captured = capsys.readouterr()
    assert rc == 0 and "sizes its clip from the input image" in captured.out + captured.err
    pipe = load("wan2.1-vace-1.3b", standin_root, "float32")
    clip = [np.zeros((32, 32, 3), np.uint8)] * 12
    kwargs, inputs = call_arguments(pipe, card("wan2.1-vace-1.3b"), {}, {"video": clip})
    assert kwargs == {"num_frames": 9} and len(inputs["video"]) == 9


def test_ltx2_samg_takes_the_place_of_its_cfg_term_and_leaves_stg_and_audio(standin_root):
    """LTX-2 adds (w - 1)(x0_c - x0_u) to the conditional x0 beside its own STG and modality terms:
    the hook rewrites the unconditional video prediction so that term becomes SAMG's. At the
    pipeline's own scale equal SAMG scales pass it through (bit for bit, above); at another scale
    the result is the same to float32 rounding, with STG on (block 1: the stand-in has two);
    a real range changes the video, and the audio then only through the video it attends to;
    the pipeline's extra STG / modality calls are left alone (the call count is its own)."""
    name = "ltx-2"
    pipe = load(name, standin_root, "float32")
    stg = {"spatio_temporal_guidance_blocks": [1]}  # a block the 2-block stand-in has
    native = call(pipe, name, 3.0, **stg)
    calls = []
    counter = pipe.transformer.register_forward_pre_hook(lambda *a: calls.append(1))
    call(pipe, name, 3.0, **stg)
    own_calls = len(calls)
    calls.clear()
    with apply(pipe, "samg", w_min=3.0, w_max=3.0) as handle:
        other = call(pipe, name, 5.0, **stg)
    counter.remove()
    assert handle.adapter.combine == "delta" and len(calls) == own_calls > 2 * STEPS  # CFG + STG + modality calls
    torch.testing.assert_close(other, native, rtol=1e-5, atol=1e-5)
    with apply(pipe, "samg", w_min=1.5, w_max=6.0):
        varied = call(pipe, name, 3.0, **stg)
    assert (varied - native).abs().max() > 1e-3


def test_a_two_call_pipeline_under_inference_mode(standin_root):
    """Inference-mode tensors keep no version counter: under torch.inference_mode the two-call hook
    still gives the pipeline's own CFG at equal scales and still refuses a run without CFG."""
    name = "wan2.1-t2v-1.3b"
    pipe = load(name, standin_root, "float32")
    w = card(name)["guidance_scale"]
    with torch.inference_mode():
        native = call(pipe, name, w)
        with apply(pipe, "samg", w_min=w, w_max=w):
            assert torch.equal(call(pipe, name, w + 1.5), native)
            with pytest.raises(ValueError, match="not running classifier-free guidance"):
                call(pipe, name, 1.0)


def test_a_given_strength_replaces_the_cards(standin_root, tmp_path, capsys):
    """`--strength` on a video-to-video model whose card also sets a strength: the pipeline gets one
    strength, the flag's, and the run goes through."""
    name = "wan2.1-v2v-1.3b"
    pipe = load(name, standin_root, "float32")
    kwargs, inputs = call_arguments(pipe, card(name), {"strength": 0.8, "num_inference_steps": 4}, {"strength": 0.5})
    assert {**kwargs, **inputs}["strength"] == 0.5 and "strength" not in kwargs
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path / "clip.mp4"), "--strength", "0.5",
                   "--steps", "4", *model_args(name, standin_root)])
    assert rc == 0, capsys.readouterr().err


def test_frames_cut_a_video_to_video_source_or_are_refused(standin_root, tmp_path, capsys):
    """`--frames 5` on a video-to-video model with a 9-frame source: a 5-frame clip and a note; more
    frames than the source holds: one sentence and exit code 2, before the model loads."""
    name = "wan2.1-v2v-1.3b"
    args = model_args(name, standin_root)
    del args[args.index("--frames"):args.index("--frames") + 2]  # the source's own length: given below
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path / "clip.mp4"), "--steps", "2",
                   "--frames", "5", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert media.read_video(tmp_path / "clip.mp4").shape[0] == 5
    assert "using the first 5 of the source clip's 9 frames" in out
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path / "long.mp4"), "--frames", "13", *args])
    out, err = capsys.readouterr()
    assert rc == 2 and "--frames 13 asks for 13 frames of a source clip of 9" in err and err.count("\n") == 1
    assert not (tmp_path / "long.mp4").exists()
