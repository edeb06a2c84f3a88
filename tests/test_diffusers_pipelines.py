"""Tier (b): `pipelines.apply` on every registry model's stand-in (tests/standins: the real
repo's model_index.json and scheduler config, tiny weights; no Hub).

For each model: (a) real SAMG equals an independent reference (the pipeline run with
its combination replaced by the paper's formula, through a hook written here); (b)
after removal the output is identical to never having applied it; (c) the step
callback gets a field of the layout's shape; (d) a pipeline not running CFG is a clear
error. Bit-exact equality with the pipeline's own CFG is in test_real_layouts.py.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import references
import torch

import standins
from conftest import load_standin
from samg_video.pipelines import Adapter, adapter_for, apply
from samg_video.cards import card, cards
from samg_video.arguments import VIDEO_INPUTS, call_arguments

# CFG in a guider component, read by hand: its latents' layout (the guider asks for cond, then uncond)
GUIDER = {"HunyuanVideo15Pipeline": "BCFHW", "HunyuanVideo15ImageToVideoPipeline": "BCFHW"}

CHANNEL_DIM = {"BCFHW": 1, "BFCHW": 2, "BFHWC": -1, "BCHW": 1, "tokens": -1}
STEPS = 3


@pytest.fixture(scope="module", params=standins.NAMES)
def built(request, standin_root):
    """(pipeline, call kwargs, layout) of one stand-in: the card's size at the stand-in's scale and its
    negative prompt, adapted to the pipeline's signature as `samg-video generate` adapts them."""
    name = request.param
    pipe = load_standin(name, standin_root)
    c = card(name)
    frames, height, width = standins.SIZES[name]
    kwargs = dict(height=height, width=width)
    if frames > 1 and c.get("input") != "video":
        kwargs["num_frames"] = frames
    if "negative_prompt" in c:
        kwargs["negative_prompt"] = c["negative_prompt"]
    given = {("video" if k in VIDEO_INPUTS else k): v for k, v in standins.inputs(name).items()}  # as the CLI gives
    kwargs, inputs = call_arguments(pipe, c, kwargs, given)
    length = inspect.signature(type(pipe).__call__).parameters.get("max_sequence_length")
    if length is not None and isinstance(length.default, int) and length.default > 512:
        kwargs["max_sequence_length"] = 32  # LTX-2's 1024 prompt tokens only cost time here
    kwargs.update(inputs)
    layout = GUIDER.get(type(pipe).__name__) or adapter_for(pipe).layout
    return pipe, kwargs, layout


# How each registry pipeline runs CFG, read by hand off its denoising loop in diffusers 0.42: the
# independent reference for what `adapter_for` derives from the pipeline's own code.
BY_HAND = {
    "CogVideoXPipeline": Adapter(("transformer",), "BFCHW", upcast=True),
    "CogVideoXImageToVideoPipeline": Adapter(("transformer",), "BFCHW", upcast=True),
    "CogVideoXVideoToVideoPipeline": Adapter(("transformer",), "BFCHW", upcast=True),
    "CogVideoXFunControlPipeline": Adapter(("transformer",), "BFCHW", upcast=True),
    "TextToVideoSDPipeline": Adapter(("unet",), "BCFHW"),
    "AnimateDiffPipeline": Adapter(("unet",), "BCFHW"),
    "AnimateDiffVideoToVideoPipeline": Adapter(("unet",), "BCFHW"),
    "AnimateDiffSDXLPipeline": Adapter(("unet",), "BCFHW"),
    "AnimateDiffControlNetPipeline": Adapter(("unet",), "BCFHW"),
    # LTXVideoTransformer3DModel.forward takes video_coords, the per-token coordinates (LTXCondition passes them)
    "LTXPipeline": Adapter(("transformer",), "tokens", upcast=True, token_coords="video_coords"),
    "LTXImageToVideoPipeline": Adapter(("transformer",), "tokens", upcast=True, token_coords="video_coords"),
    "LTXConditionPipeline": Adapter(("transformer",), "tokens", token_coords="video_coords"),  # CFG in its dtype
    "WanPipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    "WanImageToVideoPipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    "WanVideoToVideoPipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    "WanVACEPipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    "HunyuanVideoPipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    # token_replace: the first latent frame is the image's; the loop steps the others
    "HunyuanVideoImageToVideoPipeline": Adapter(("transformer",), "BCFHW", calls="two", kept="first_frame"),
    "MochiPipeline": Adapter(("transformer",), "BCFHW", upcast=True),
    "LattePipeline": Adapter(("transformer",), "BCFHW"),
    "AllegroPipeline": Adapter(("transformer",), "BCFHW"),
    "SanaVideoPipeline": Adapter(("transformer",), "BCFHW", upcast=True),
    "EasyAnimatePipeline": Adapter(("transformer",), "BCFHW"),
    # c + (w - 1)(c - u) in x0, + STG and modality isolation from calls its transformer marks by these arguments;
    # `noise_pred_video = noise_pred_video.float()` before it (pipeline_ltx2.py, the loop's first lines)
    "LTX2Pipeline": Adapter(("transformer",), "tokens", upcast=True, combine="delta", token_coords="video_coords",
                            own_passes=("spatio_temporal_guidance_blocks", "isolate_modalities")),
    "LTX2ImageToVideoPipeline": Adapter(("transformer",), "tokens", upcast=True, combine="delta",
                                        token_coords="video_coords",
                                        own_passes=("spatio_temporal_guidance_blocks", "isolate_modalities")),
    "SkyReelsV2Pipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    "SkyReelsV2ImageToVideoPipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    "SkyReelsV2DiffusionForcingPipeline": Adapter(("transformer",), "BCFHW", calls="two"),
    # channels last; the input's last channel marks the frames the loop keeps (its I2V image frame)
    "Kandinsky5T2VPipeline": Adapter(("transformer",), "BFHWC", calls="two", kept="mask"),
    "Kandinsky5I2VPipeline": Adapter(("transformer",), "BFHWC", calls="two", kept="mask"),
    "StableDiffusionPipeline": Adapter(("unet",), "BCHW"),
    "StableDiffusionXLPipeline": Adapter(("unet",), "BCHW"),
    "StableDiffusion3Pipeline": Adapter(("transformer",), "BCHW"),
}
# the pipelines that call their denoiser twice per step, cond then uncond: BY_HAND's, and the guider ones
TWO_CALLS = {name for name, adapter in BY_HAND.items() if adapter.calls == "two"} | set(GUIDER)


def test_derived_adapter_is_the_one_read_by_hand(built):
    pipe, _, _ = built
    if type(pipe).__name__ in GUIDER:  # no adapter: apply takes the guider slot, with the latents' layout
        from samg_video.pipelines.derive import layout_of

        with pytest.raises(ValueError, match="guides through its `guider` component"):
            adapter_for(pipe)
        assert layout_of(pipe, pipe.transformer) == GUIDER[type(pipe).__name__]
        return
    expected = BY_HAND[type(pipe).__name__]
    if getattr(pipe, "transformer_2", None) is not None:  # Wan 2.2 A14B: the low-noise expert too
        expected = dataclasses.replace(expected, denoisers=(*expected.denoisers, "transformer_2"))
    assert adapter_for(pipe) == expected


def run(pipe, kwargs, w=5.0):
    """Latents of one generation; `w` is the pipeline's CFG scale (HunyuanVideo: true_cfg_scale)."""
    true_cfg = "true_cfg_scale" in inspect.signature(type(pipe).__call__).parameters  # HunyuanVideo T2V / I2V
    scale = {"true_cfg_scale": w} if true_cfg else {"guidance_scale": w}
    if type(pipe).__name__ in GUIDER:  # the scale is the guider's (the pipeline's own, unless apply replaced it)
        scale = {}
        if type(pipe.guider).__name__ == "ClassifierFreeGuidance":
            pipe.guider.guidance_scale = w
    out = pipe(prompt="a red fox runs on the beach", num_inference_steps=STEPS, output_type="latent",
               generator=torch.Generator().manual_seed(0), **scale, **kwargs)
    frames = out.frames if hasattr(out, "frames") else out.images
    return frames.clone() if torch.is_tensor(frames) else torch.as_tensor(frames)


def denoiser(pipe):
    return pipe.transformer if hasattr(pipe, "transformer") else pipe.unet


def reference_samg(u, c, w_min, w_max, channel_dim, keep=None):
    """The paper's SAMG formula (tests/references.py), per sample, on whatever layout (channel axis
    given); with `keep` (bool, the energy's shape) the energy's range is taken over the kept entries."""
    return references.samg(u, c, w_min, w_max, channel_dim, keep)[0]


class ReferenceCombiner:
    """The pipeline's combination replaced by the reference formula, via a hook written independently.
    `delta_scale`: the pipeline adds (w - 1)(c - u) to c itself (LTX-2), so the unconditional half
    becomes c - (g - c) / (w - 1) and the conditional half stays; its own STG calls pass."""

    def __init__(self, modules, w_min, w_max, channel_dim, two_calls, delta_scale=None):
        self.args, self.two_calls, self.cond, self.delta = (w_min, w_max, channel_dim), two_calls, None, delta_scale
        self.handles = [m.register_forward_hook(self, with_kwargs=True) for m in modules]

    def __call__(self, module, args, kwargs, output):
        pred = output[0] if isinstance(output, tuple) else output.sample
        if kwargs.get("spatio_temporal_guidance_blocks") or kwargs.get("isolate_modalities"):
            return output
        if not self.two_calls:
            u, c = pred.chunk(2)
            t = kwargs.get("timestep")
            keep = None  # packed tokens with per-token timesteps: the ones below the step's are kept as given
            if torch.is_tensor(t) and t.ndim == 2 and t.shape[1] == c.shape[1]:
                t = t[c.shape[0]:]
                keep = (t == t.max(dim=1, keepdim=True).values)[..., None]
                keep = None if bool(keep.all()) else keep
            g = reference_samg(u, c, *self.args, keep=keep)
            new = torch.cat([c - (g - c) / (self.delta - 1), c]) if self.delta is not None else torch.cat([g, g])
        elif self.cond is None:
            self.cond = pred
            return output
        else:
            keep = None  # Kandinsky 5: the input's last channel is 1 on the frames its loop keeps (I2V's image)
            if getattr(module.config, "visual_cond", False):
                keep = kwargs["hidden_states"][..., -1:] < 0.5
                keep = None if bool(keep.all()) else keep
            elif getattr(module.config, "image_condition_type", None) == "token_replace":  # HunyuanVideo I2V
                keep = torch.ones_like(pred[:, :1], dtype=torch.bool)
                keep[:, :, 0] = False
            g = reference_samg(pred, self.cond, *self.args, keep=keep)
            self.cond.copy_(g)
            self.cond, new = None, g
        if isinstance(output, tuple):
            return (new,) + tuple(output[1:])
        return dataclasses.replace(output, sample=new)


def test_samg_matches_independent_reference(built):
    pipe, kwargs, layout = built
    with apply(pipe, "samg", w_min=2.0, w_max=8.0):
        guided = run(pipe, kwargs)
    experts = [m for m in (denoiser(pipe), getattr(pipe, "transformer_2", None)) if m is not None]
    delta = 5.0 if BY_HAND.get(type(pipe).__name__, Adapter()).combine == "delta" else None  # run()'s w
    ref_hook = ReferenceCombiner(experts, 2.0, 8.0, CHANNEL_DIM[layout],
                                 two_calls=type(pipe).__name__ in TWO_CALLS, delta_scale=delta)
    reference = run(pipe, kwargs)
    for handle in ref_hook.handles:
        handle.remove()
    torch.testing.assert_close(guided, reference, atol=1e-4, rtol=1e-4)
    assert (guided - run(pipe, kwargs, w=8.0)).abs().max() > 1e-5  # and it is not CFG at w_max


def test_removal_is_exact(built):
    pipe, kwargs, _ = built
    before = run(pipe, kwargs)
    with apply(pipe, "samg", w_min=1.0, w_max=9.0):
        run(pipe, kwargs)
    assert torch.equal(run(pipe, kwargs), before)
    assert not denoiser(pipe)._forward_hooks


def test_the_cards_layout_is_the_derived_one(built):
    """A card's `layout` is read off the pipeline by `adapter_for` (or its guider slot's layout): every
    card of the stand-in's pipeline says the same."""
    from samg_video.cards import cards

    pipe, _, layout = built
    named = [entry for entry in cards().values() if entry["pipeline"] == type(pipe).__name__]
    assert named and all(entry["layout"] == layout for entry in named), type(pipe).__name__


def test_callback_field_shape(built):
    pipe, kwargs, layout = built
    infos = []
    with apply(pipe, "samg", callback=infos.append):
        latents = run(pipe, kwargs)  # in the pipeline's layout; LTX: packed tokens (B, F*H*W, C)
    field_shape = list(latents.shape)
    if layout == "tokens" and latents.ndim == 5:  # LTX-2 hands its latents back unpacked: (B, C, F, H, W)
        field_shape[1] = 1
    elif layout == "tokens":  # the field comes unpacked to (B, 1, F, H, W)
        f = (kwargs["num_frames"] - 1) // pipe.vae_temporal_compression_ratio + 1
        h, w = (kwargs[k] // pipe.vae_spatial_compression_ratio for k in ("height", "width"))
        assert f * h * w == latents.shape[1]
        field_shape = [latents.shape[0], 1, f, h, w]
    else:
        field_shape[CHANNEL_DIM[layout]] = 1
    field_shape = tuple(field_shape)
    table = pipe.scheduler.timesteps.tolist()
    calls = len(table)  # PNDM (SD 1.5) runs STEPS + 1 denoiser calls, its second level twice: one step
    assert calls == STEPS + (type(pipe.scheduler).__name__ == "PNDMScheduler")
    steps = [len(set(table[:k + 1])) - 1 for k in range(calls)]  # each call's level: a step per distinct level
    if "video" in kwargs and "strength" in inspect.signature(type(pipe).__call__).parameters:
        # video-to-video re-runs the last `strength` of the schedule: its real positions
        skipped = calls - int(calls * 0.8)  # the pipeline's default strength
        assert [i.step for i in infos] == steps[skipped:] and skipped > 0
    else:
        assert [i.step for i in infos] == steps
    for info in infos:
        assert tuple(info.scale_field.shape) == field_shape
        assert info.guided.shape[0] == 1


def test_no_cfg_is_an_error(built):
    pipe, kwargs, _ = built
    if type(pipe).__name__ in GUIDER:  # a guider at scale 1 (a distilled checkpoint's) is refused when applied
        pipe.guider.guidance_scale = 1.0
        with pytest.raises(ValueError, match="not running classifier-free guidance"):
            apply(pipe, "samg")
        pipe.guider.guidance_scale = 5.0
        return
    with apply(pipe, "samg"):
        with pytest.raises(ValueError, match="not running classifier-free guidance"):
            run(pipe, kwargs, w=1.0)


def test_the_support_table_says_what_derive_reads(repo_root):
    """docs/models.md's table of pipelines: for every class it names, the CFG column is what
    `derive` reads off that class's loop (batched / two / guider component, upcast or not)."""
    import re

    import diffusers

    from samg_video.pipelines.derive import UPCAST, calls_of, loop_source

    rows = [line for line in (repo_root / "docs" / "models.md").read_text().splitlines()
            if line.startswith("| `")]
    assert len(rows) >= 20
    for row in rows:
        names, how = re.findall(r"`(\w+Pipeline)`", row.split("|")[1]), row.split("|")[2].strip()
        for name in names:
            cls = getattr(diffusers, name)
            source = loop_source(cls)
            if how == "guider component":
                assert calls_of(source) is None and "guider" in inspect.signature(cls.__init__).parameters, name
            elif how == "none":
                assert calls_of(source) is None, name
            else:
                assert how == calls_of(source) + (", upcast" if UPCAST.search(source) else ""), (name, how)
            if row.split("|")[4].strip().startswith("tested"):  # a "tested" class has a card and so a stand-in
                assert name in {c["pipeline"] for c in cards().values()}, name


def test_every_diffusers_video_pipeline_has_a_row(repo_root):
    """A diffusers pipeline whose call takes frames (num_frames, video_length, a video or conditioning
    frames) is named in docs/models.md, tested or with what it lacks or why it is refused."""
    import diffusers

    text = (repo_root / "docs" / "models.md").read_text()
    frames = {"num_frames", "video_length", "video", "conditioning_frames"}
    missing = []
    for name in dir(diffusers):
        if not name.endswith("Pipeline"):
            continue
        try:
            takes = set(inspect.signature(getattr(diffusers, name).__call__).parameters)
        except (ImportError, TypeError, ValueError):  # a pipeline whose optional dependency is absent
            continue
        if takes & frames and f"`{name}`" not in text:
            missing.append(name)
    assert not missing, missing


def test_a_per_frame_cfg_ramp_is_refused_in_one_sentence():
    """Stable Video Diffusion guides each frame at its own scale; apply refuses it (read off its loop)."""
    from diffusers import StableVideoDiffusionPipeline

    with pytest.raises(ValueError, match="ramps its CFG scale across frames") as err:
        adapter_for(object.__new__(StableVideoDiffusionPipeline))
    assert "\n" not in str(err.value)


def test_the_size_check_admits_every_size_the_stand_ins_run_at(built):
    """check_size (VAE compression x denoiser patch, or nothing for a pipeline that bins sizes)
    refuses none of the sizes every pipeline here runs at; a size one pixel off is refused unless
    the pipeline bins sizes itself."""
    from samg_video.arguments import check_size, size_multiple

    pipe, kwargs, _ = built
    if "height" not in kwargs:
        pytest.skip("sizes its clip from the input image")
    check_size(pipe, "model", kwargs["height"], kwargs["width"])
    binning = inspect.signature(type(pipe).__call__).parameters.get("use_resolution_binning")
    if size_multiple(pipe) > 1 and binning is None:
        with pytest.raises(ValueError, match="makes sizes in multiples of"):
            check_size(pipe, "model", kwargs["height"] + 1, kwargs["width"])


def test_a_long_prompt_is_noted_at_each_tokenizers_limit(built):
    """prompt_notes reads each tokenizer's limit off its encoder (positions) and the call's
    max_sequence_length; the reference here is the rule diffusers' encode_prompt functions follow:
    a CLIP tokenizer truncates at its model_max_length, the others at max_sequence_length."""
    from samg_video.arguments import prompt_notes

    pipe, kwargs, _ = built
    parameter = inspect.signature(type(pipe).__call__).parameters.get("max_sequence_length")
    sequence = kwargs.get("max_sequence_length") or (parameter.default if parameter is not None else None)
    prompt = "a red fox runs on the beach " * 120
    notes = prompt_notes(pipe, prompt, kwargs) if not hasattr(pipe, "check_prompts") else []
    for name in ("tokenizer", "tokenizer_2", "tokenizer_3"):
        tok = getattr(pipe, name, None)
        if tok is None:
            continue
        clip = "CLIP" in type(tok).__name__
        limit = tok.model_max_length if clip or not isinstance(sequence, int) else sequence
        count = len(tok(text=prompt, truncation=False, verbose=False)["input_ids"])
        if count > limit:
            assert any(f"{name} keeps {limit};" in n for n in notes), (name, limit, notes)
