"""How a diffusers pipeline runs CFG, read off the pipeline itself rather than a list of classes.

    denoisers  the modules among its components named as diffusers names denoisers: `unet`,
               `transformer`, `transformer_2` (a second expert)
    calls      "batched": the loop stacks the latents, `torch.cat([latents] * 2)`, for one call on
               [uncond, cond]; "two": a second denoiser call whose result is named as the
               unconditional one (`noise_uncond = ...`, `neg_noise_pred = ...`), after the cond call
    upcast     the loop casts the prediction to float32 before its CFG line
               (`noise_pred = noise_pred.float()` / `.to(torch.float32)`, any `noise_pred*` name)
    combine    "delta" where the loop adds `(self.guidance_scale - 1) * (cond - uncond)` to the
               conditional prediction beside terms of its own (LTX-2: in x0 space, with STG and
               modality-isolation terms from extra calls), else "line" (`u + w (c - u)`)
    layout     "tokens" when the denoiser's forward takes the latent grid (`num_frames`, `height`,
               `width`: packed (B, F*H*W, C) sequences, LTX-Video); BFCHW when `prepare_latents`
               puts frames before channels (CogVideoX), BFHWC when it puts channels last (Kandinsky
               5); BCHW for a 2-D denoiser; else BCFHW
    own_passes the denoiser's keyword arguments (of those in OWN_PASSES it takes) that mark the
               pipeline's calls for guidance terms of its own (LTX-2's STG and modality isolation)
    token_coords  the keyword argument of per-token coordinates (of TOKEN_COORDS) a packed-token
               denoiser takes, where the call may give no grid sizes (LTXConditionPipeline)
    kept       frames the loop keeps as given: "mask" when a channels-last denoiser's config has
               `visual_cond` (Kandinsky 5: its input is [latents, condition, mask] along the channels,
               the mask 1 on the image's frame); "first_frame" when its `image_condition_type` is
               `token_replace` (HunyuanVideo I2V: the first latent frame is the image's)

Pipelines that guide through a `guider` component (HunyuanVideo 1.5) have no adapter:
`apply` puts the method in that slot (`hook.GuiderHandle`); modular pipelines take
`samg_video.pipelines.SAMGGuider`. `EXCEPTIONS` holds what cannot
be derived this way.
"""

from __future__ import annotations

import functools
import inspect
import re

import torch

from .hook import Adapter

DENOISER = re.compile(r"^(unet|transformer(_\d+)?)$")  # diffusers' names for the denoiser components
BATCHED = re.compile(r"torch\.cat\(\s*\[\s*(latents|latent_model_input)\s*\]\s*\*\s*2")
UNCOND_CALL = re.compile(r"\b(\w*uncond\w*|neg_\w+)\s*=\s*(self\.\w+|current_model)\(")
COND_CALL = re.compile(r"\b(noise_pred|pred_velocity|model_output)\s*=\s*(self\.\w+|current_model)\(")
# a prediction cast to float32 in place before the CFG line (CogVideoX's noise_pred, LTX-2's noise_pred_video)
UPCAST = re.compile(r"\b(noise_pred\w*)\s*=\s*\1\.(float\(\)|to\(\s*(dtype\s*=\s*)?torch\.float32\s*\))")
DELTA = re.compile(r"\(\s*self\.guidance_scale\s*-\s*1\s*\)\s*\*")  # c + (w - 1)(c - u): LTX-2
SHAPE = re.compile(r"\bshape\s*=\s*\(")
RAMP = re.compile(r"\bguidance_scale\s*=\s*torch\.linspace\(")  # one CFG scale per frame (Stable Video Diffusion)

OWN_PASSES = ("spatio_temporal_guidance_blocks", "isolate_modalities")  # diffusers' names for them
TOKEN_COORDS = ("video_coords",)

# class name -> adapter, for what the rules above cannot read (none of diffusers' own at present)
EXCEPTIONS: dict[str, Adapter] = {}


def defining_class(cls: type, name: str) -> type:
    """The class of `cls`'s MRO that defines attribute `name`."""
    return next(k for k in cls.__mro__ if name in vars(k))


@functools.lru_cache(maxsize=256)
def loop_source(cls: type) -> str:
    """The source of the class that defines `cls.__call__` (the loop and the helpers beside it)."""
    try:
        return inspect.getsource(defining_class(cls, "__call__"))
    except (OSError, TypeError, StopIteration):  # no source, or no __call__ at all
        return ""


def denoiser_names(pipe) -> tuple[str, ...]:
    components = getattr(pipe, "components", None) or {}
    return tuple(sorted(name for name, module in components.items()
                        if isinstance(module, torch.nn.Module) and DENOISER.match(name)))


def calls_of(source: str) -> str | None:
    """'batched', 'two' (cond call first) or None (not recognised)."""
    if BATCHED.search(source):
        return "batched"
    uncond = UNCOND_CALL.search(source)
    cond = COND_CALL.search(source)
    if uncond and cond and cond.start() < uncond.start():
        return "two"
    return None


def latent_shape(source: str) -> list[str]:
    """The elements of the first `shape = (...)` tuple in `source`, as text (top-level commas)."""
    match = SHAPE.search(source)
    if not match:
        return []
    depth, parts, current = 1, [], ""
    for char in source[match.end():]:
        depth += (char == "(") - (char == ")")
        if depth == 0:
            break
        if char == "," and depth == 1:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [p for p in [*parts, current.strip()] if p]


def layout_of(pipe, denoiser) -> str:
    forward = inspect.signature(type(denoiser).forward).parameters  # the class's: a wrapped instance forward hides it
    if {"num_frames", "height", "width"} <= set(forward) and "hidden_states" in forward:
        return "tokens"
    prepare = getattr(type(pipe), "prepare_latents", None)
    try:
        shape = latent_shape(inspect.getsource(prepare)) if prepare else []
    except (OSError, TypeError):
        shape = []
    if len(shape) == 5 and "channels" in shape[-1]:
        return "BFHWC"
    if len(shape) == 5 and "frame" in shape[1] and "channels" in shape[2]:
        return "BFCHW"
    if len(shape) == 5:
        return "BCFHW"
    if len(shape) == 4 or "2D" in type(denoiser).__name__:  # an image pipeline's (B, C, H, W) latents
        return "BCHW"
    raise ValueError(f"{type(pipe).__name__} is not supported by samg_video.apply: its prepare_latents gives no "
                     "latent shape samg_video can read (a tuple of 4 or 5 sizes), so the layout of its predictions "
                     "is unknown.")


def derive_adapter(pipe) -> Adapter:
    """The `Adapter` of a pipeline, derived as the module docstring says; one sentence naming
    what was not recognised otherwise."""
    cls = type(pipe)
    for k in cls.__mro__:
        if k.__name__ in EXCEPTIONS:
            return EXCEPTIONS[k.__name__]
    name = cls.__name__
    if RAMP.search(loop_source(cls)):
        raise ValueError(f"{name} ramps its CFG scale across frames (min_guidance_scale to max_guidance_scale), "
                         "which one SAMG range would replace, so samg_video.apply does not guide it.")
    components = getattr(pipe, "components", None) or {}
    if components.get("guider") is not None:
        raise ValueError(f"{name} guides through its `guider` component, not in its loop: samg_video.apply puts "
                         "the method in that slot (GuiderHandle) instead of wrapping the denoiser.")
    names = denoiser_names(pipe)
    if not names:
        raise ValueError(f"{name} is not supported by samg_video.apply: none of its components is a denoiser "
                         "(a module named unet, transformer or transformer_2).")
    source = loop_source(cls)
    calls = calls_of(source)
    if calls is None:
        raise ValueError(f"{name} is not supported by samg_video.apply: its denoising loop neither stacks the latents "
                         "for one call on [uncond, cond] (torch.cat([latents] * 2)) nor makes a second, "
                         "unconditional denoiser call after the conditional one, so it may not run "
                         "classifier-free guidance at all.")
    denoiser = getattr(pipe, names[0])
    layout = layout_of(pipe, denoiser)
    combine = "delta" if DELTA.search(source) else "line"
    takes = set(inspect.signature(type(denoiser).forward).parameters)
    return Adapter(names, layout, calls, upcast=bool(UPCAST.search(source)), combine=combine,
                   kept=kept_frames(getattr(denoiser, "config", None), layout),
                   own_passes=tuple(k for k in OWN_PASSES if k in takes),
                   token_coords=next((k for k in TOKEN_COORDS if k in takes), None) if layout == "tokens" else None)


def kept_frames(config, layout: str) -> str | None:
    """How the denoiser's config marks frames its loop keeps as given (module docstring: kept)."""
    if layout == "BFHWC" and getattr(config, "visual_cond", False):
        return "mask"
    if getattr(config, "image_condition_type", None) == "token_replace":
        return "first_frame"
    return None
