"""The one argument adapter: what a run's inputs become in a pipeline's call.

- `check_inputs`: the inputs a model card takes (`input: image | video`, or a prompt only)
  against those given, one sentence before any work (the command line and sweeps ask it);
- `call_kwargs`: a card's call defaults (size, steps, frames rounded to its rule, CFG scale,
  its own extra arguments), overridden where given;
- `call_arguments`: those and the inputs under the names and in the set the pipeline's own
  `__call__` takes (read off its signature; `FRAME_COUNTS` and `VIDEO_INPUTS` list the names
  diffusers pipelines use);
- `prompt_notes`: a note for every tokenizer that would cut the prompt;
- `size_multiple` / `check_size`: the multiple a pipeline's height and width must be, read off
  its VAE and its denoiser.
"""

from __future__ import annotations

import inspect

from .cards import round_frames

KINDS = {"image": "an image-to-video model", "video": "a video-to-video model"}
TAKES = {"image": "a prompt and an image", "video": "a prompt and a video", None: "a prompt only"}


def check_inputs(card: dict, given: dict[str, bool], how: dict[str, tuple[str, str]]) -> None:
    """Refuse a missing or an unwanted input, before any work. `given` maps "image" / "video" to
    whether the run has it; `how[kind]` = (the input's name as the user writes it, how to give it):
    ("--image", "pass --image PATH (the clip's first frame)"); only the kinds in `how` are checked."""
    wants = card.get("input")
    for kind in how:
        name, give = how[kind]
        if wants == kind and not given.get(kind):
            raise ValueError(f"{card['name']} is {KINDS[kind]}: {give}.")
        if given.get(kind) and wants != kind:
            raise ValueError(f"{name} needs {KINDS[kind]}; "
                             f"{card['name']} takes {TAKES.get(wants, 'a prompt only')} (`samg-video models` lists "
                             "the models and their inputs).")


def call_kwargs(card: dict, frames: int | None, height: int | None, width: int | None, steps: int | None) -> dict:
    """Arguments for the pipeline call: card defaults, overridden where given; CFG switched on."""
    h, w = card["resolution"]
    kwargs = dict(height=height or h, width=width or w, num_inference_steps=steps or card["steps"],
                  guidance_scale=card.get("guidance_scale", 5.0), output_type="np")
    if card.get("frames", 1) > 1 and card.get("input") != "video":  # video-to-video: the source sets the frames
        kwargs["num_frames"] = round_frames(card, frames or card["frames"])[0]
    for key in ("true_cfg_scale", "negative_prompt", "guidance_scale_2", "strength"):
        if key in card:
            kwargs[key] = card[key]
    return kwargs


# what pipelines call the clip they are conditioned on: a source clip (video-to-video, Wan VACE's
# control video), CogVideoX Fun's control video, AnimateDiff ControlNet's conditioning frames
VIDEO_INPUTS = ("video", "control_video", "conditioning_frames")
FRAME_COUNTS = ("num_frames", "video_length", "frames")  # Latte calls it video_length, Sana-Video frames


def call_arguments(pipe, card: dict, kwargs: dict, inputs: dict) -> tuple[dict, dict]:
    """The card's call arguments (`call_kwargs`) and the inputs (`image`, `video`, ...) in the
    names and the set that `pipe`'s call takes: no `guidance_scale` for a pipeline that guides in its
    guider component (which `apply` replaces), no height / width for one that sizes its clip from its
    image (HunyuanVideo 1.5 I2V), the frame count and the clip under the pipeline's own names
    (FRAME_COUNTS, VIDEO_INPUTS). A pipeline that takes both the clip and a frame count (Wan VACE,
    AnimateDiff ControlNet) gets the longest run of the clip that the card's frame rule allows, and
    that count; video-to-video pipelines take their length from the source. An input the user
    gave (`strength`) replaces the card's default of the same name."""
    takes = inspect.signature(type(pipe).__call__).parameters
    kwargs, inputs = {k: v for k, v in kwargs.items() if k not in inputs}, dict(inputs)
    if "guidance_scale" not in takes:
        kwargs.pop("guidance_scale", None)
    if "height" not in takes:
        kwargs.pop("height", None)
        kwargs.pop("width", None)
    count = next((n for n in FRAME_COUNTS if n in takes), None)
    if "num_frames" in kwargs and count not in (None, "num_frames"):
        kwargs[count] = kwargs.pop("num_frames")
    video = inputs.pop("video", None)
    if video is None:
        return kwargs, inputs
    if count == "num_frames" and "num_frames" not in kwargs:
        step = card.get("frame_step") or 1
        kwargs["num_frames"] = (len(video) - 1) // step * step + 1
        video = video[:kwargs["num_frames"]]
    return kwargs, {**inputs, next((n for n in VIDEO_INPUTS if n in takes), "video"): video}


def prompt_notes(pipe, prompt: str, kwargs: dict) -> list[str]:
    """A note for every tokenizer of `pipe` that would cut `prompt`. A tokenizer keeps the call's
    max_sequence_length (the pipeline's default), at most as many tokens as its text encoder has
    positions (`max_position_embeddings`: CLIP's 77; T5's relative positions set no bound);
    without a max_sequence_length, its own model_max_length."""
    notes = []
    if hasattr(pipe, "check_prompts"):  # a pipeline's own prompt check comes first
        pipe.check_prompts([prompt])
    parameter = inspect.signature(type(pipe).__call__).parameters.get("max_sequence_length")
    sequence = kwargs.get("max_sequence_length") or (parameter.default if parameter is not None else None)
    for name, encoder in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"),
                          ("tokenizer_3", "text_encoder_3")):
        tok = getattr(pipe, name, None)
        if tok is None:
            continue
        positions = getattr(getattr(getattr(pipe, encoder, None), "config", None), "max_position_embeddings", None)
        positions = getattr(getattr(getattr(getattr(pipe, encoder, None), "config", None), "text_config", None),
                            "max_position_embeddings", positions)  # a CLIP model's text tower
        limit = min(sequence, positions) if isinstance(sequence, int) and isinstance(positions, int) \
            else sequence if isinstance(sequence, int) else tok.model_max_length
        # by name: a processor takes images first
        count = len(tok(text=prompt, truncation=False, verbose=False)["input_ids"])
        if count > limit:
            notes.append(f"the prompt is {count} tokens long but {name} keeps {limit}; the rest is cut off "
                         "(shorten the prompt).")
    return notes


SPATIAL_RATIOS = ("vae_spatial_compression_ratio", "vae_scale_factor_spatial", "vae_spatial_scale_factor",
                  "vae_scale_factor")
DENOISERS = ("transformer", "unet")


def size_multiple(pipe) -> int:
    """What height and width must be a multiple of: the VAE's spatial compression (the pipeline's
    `vae_spatial_compression_ratio`, `vae_scale_factor_spatial`, Mochi's `vae_spatial_scale_factor`
    or `vae_scale_factor`) times the
    denoiser's spatial patch (`transformer_spatial_patch_size`, else its config's `patch_size`, the
    last entry of a (t, h, w) tuple; 1 for a U-Net). Wan: 8 x 2 = 16, LTX-Video: 32 x 1, CogVideoX:
    8 x 2 (its own check asks for 8 only, and a 40 px size then fails inside the transformer)."""
    ratio = next((getattr(pipe, a) for a in SPATIAL_RATIOS if isinstance(getattr(pipe, a, None), int)), 1)
    patch = getattr(pipe, "transformer_spatial_patch_size", None)
    if not isinstance(patch, int):
        denoiser = next((getattr(pipe, n) for n in DENOISERS if getattr(pipe, n, None) is not None), None)
        patch = getattr(getattr(denoiser, "config", None), "patch_size", None) or 1
        patch = patch[-1] if isinstance(patch, (list, tuple)) else patch
    return int(ratio) * int(patch)


def check_size(pipe, name: str, height: int | None, width: int | None) -> None:
    """A height or width the user gave that `pipe` cannot make: one sentence naming the multiple and
    the nearest sizes, before any denoising (nothing is rounded silently). A pipeline that bins
    sizes itself (`use_resolution_binning`, on by default: Sana-Video) makes any size: it generates at
    the nearest bin and resizes back."""
    binning = inspect.signature(type(pipe).__call__).parameters.get("use_resolution_binning")
    if binning is not None and binning.default is True:
        return
    multiple = size_multiple(pipe)
    for flag, value in (("--height", height), ("--width", width)):
        if value and value % multiple:
            low, high = value // multiple * multiple, (value // multiple + 1) * multiple
            nearest = f"{low} or {high}" if low else str(high)
            raise ValueError(f"{flag} {value}: {name} makes sizes in multiples of {multiple} (its VAE's compression "
                             f"times its denoiser's patch); use {nearest}.")
