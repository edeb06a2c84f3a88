"""ComfyUI nodes for samg-video: spatio-temporal SAMG (and every other samg-video method) as the
sampler's CFG function, a preview of SAMG's scale field, and the temporal metrics of decoded
frames. The math is `samg_video`'s own.

How SAMG enters a ComfyUI sampler (comfy/samplers.py, `cfg_function`): a MODEL patched with
`set_model_sampler_cfg_function(fn)` has `fn(args)` called once per step with
`args["cond_denoised"]`, `args["uncond_denoised"]` (the denoised predictions, B C T H W for
video models, B C H W for images), `args["input"]` (x), `args["cond_scale"]` and
`args["sigma"]` (B,); ComfyUI then takes `x - fn(args)` as the step's denoised result. So
`GuidanceCFG` returns `x - g` with

    g = u + W (c - u),   u, c: the denoised predictions,  W: SAMG's scale field,

computed by `samg_video.guidance` with ComfyUI's own operation order, so at `w_min == w_max ==
s` g is ComfyUI's CFG formula `uncond + (cond - uncond) * s` bit for bit (ComfyUI's own
`x - (x - g)` round trip then costs at most one rounding of x, as for every CFG-function
node). The step index comes from `model_options["transformer_options"]["sample_sigmas"]`, and
a sigma above the previous one starts a new run (state reset), as ComfyUI's APG node does.
Guide latents appended at the end of the frame axis (LTXVAddGuide's keyframes) take no part
in the field's statistics (`guide_frames`). A method with a perturbation (samg+stg, stg, slg)
gets the conditional prediction with blocks skipped from one more model call per step, made
with ComfyUI's own block-replace patches and `calc_cond_batch` (as core's SkipLayerGuidanceDiT):

    g = u + W (c - u) + s (c - p),   p: the conditional prediction with the blocks skipped.
"""

from __future__ import annotations

import json
import math

import torch

from samg_video import guidance

CATEGORY = "sampling/samg-video"
DERIVED = -1.0  # w_min / w_max at this value follow the sampler's cfg: 2/3 cfg and 1.6 cfg
SPACES = ("denoised", "noise")  # what the method combines: the denoised predictions, or x - denoised


def derived_range(w_min: float, w_max: float, cond_scale: float) -> tuple[float, float]:
    """The SAMG range for a sampler at `cond_scale`: a value left at -1 follows it (2/3 and 1.6 x cfg,
    the convention of ComfyUI's existing SAMG node), so a workflow keeps its KSampler setting."""
    low = cond_scale * 2 / 3 if w_min == DERIVED else w_min
    high = cond_scale * 1.6 if w_max == DERIVED else w_max
    return low, max(low, high)


def step_of(sigmas, sigma: float) -> tuple[int, int]:
    """(index of `sigma` in the sampler's schedule, number of steps); (0, 1) without a schedule."""
    if not torch.is_tensor(sigmas) or sigmas.numel() < 2:
        return 0, 1
    index = int((sigmas.float().cpu() - sigma).abs().argmin())
    return min(index, len(sigmas) - 2), len(sigmas) - 1


def parse_options(text: str) -> dict:
    """'KEY=VALUE KEY=VALUE' (spaces or new lines between them; values as `samg-video --set`
    reads them: numbers, booleans, [lists]) -> {key: value}."""
    from samg_video.guidance.spec import value

    options = {}
    for item in text.split():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"Write method options as KEY=VALUE separated by spaces (e.g. scale_stg=1 layers=[9]); "
                             f"got {item!r}.")
        options[key] = value(raw)
    return options


def block_count(model) -> int:
    """Blocks of a ComfyUI diffusion model that its 'dit' / 'double_block' patches address."""
    net = getattr(model, "diffusion_model", model)
    for name in ("blocks", "transformer_blocks", "double_blocks"):
        if hasattr(net, name):
            return len(getattr(net, name))
    raise ValueError(f"{type(net).__name__} has no block list (blocks / transformer_blocks / double_blocks) whose "
                     "blocks ComfyUI can skip; give layers=[...] or use a method without a perturbation.")


def skip_block(args: dict, extra: dict) -> dict:
    """A 'dit' block replacement that returns its input: the block is skipped (ComfyUI's SLG)."""
    return args


def perturbed_prediction(args: dict, perturbation) -> torch.Tensor:
    """The conditional denoised prediction with `perturbation.layers` skipped, from one extra
    model call through ComfyUI's own mechanism: 'dit' / 'double_block' replace patches and
    `comfy.samplers.calc_cond_batch` (as core's SkipLayerGuidanceDiT). Wan, LTX-Video and
    HunyuanVideo read these patches; the middle block when `layers` is None."""
    import comfy.model_patcher
    import comfy.samplers

    if perturbation.mode != "block":
        raise ValueError(f"In ComfyUI a perturbation skips whole blocks (mode=block); mode={perturbation.mode!r} is "
                         "for samg-video's diffusers pipelines.")
    layers = perturbation.layers if perturbation.layers is not None else (block_count(args["model"]) // 2,)
    options = args["model_options"].copy()  # the patch helper replaces its transformer_options entry
    for layer in layers:
        options = comfy.model_patcher.set_model_options_patch_replace(options, skip_block, "dit", "double_block",
                                                                      int(layer))
    (pred,) = comfy.samplers.calc_cond_batch(args["model"], [args["input_cond"]], args["input"], args["sigma"],
                                             options)
    return pred


class GuidanceCFG:
    """The sampler CFG function of one patched MODEL (module docstring) for any samg-video method;
    keeps the scale fields of its last run for `SAMGFieldPreview`.

    `options` are the method's parameters; what they leave out follows the sampler: `scale` is the
    sampler's cfg, a SAMG range (`w_min`, `w_max`, -1 or absent) is 2/3 and 1.6 x cfg. `space`:
    the method combines the denoised predictions (`denoised`, ComfyUI's CFG and APG) or
    `x - denoised` (`noise`: the model's own epsilon / velocity up to the step's sigma, where
    CFG-Zero* computes its projection)."""

    def __init__(self, name: str, options: dict, guide_frames: int = 0, space: str = "denoised"):
        if space not in SPACES:
            raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}.")
        self.name, self.options, self.guide_frames, self.space = name, dict(options), int(guide_frames), space
        self.method, self.key = None, None
        self.previous_sigma = None
        self.fields: list[torch.Tensor] = []  # (B, 1, F, H, W) per step of the last run, on the CPU
        self.method_for(7.0)  # every value checked now, not at the first step

    def config(self, cond_scale: float) -> dict:
        """The method's full parameters for a sampler at `cond_scale`."""
        params = dict(self.options)
        fields = guidance.create(self.name).to_dict()
        if "w_min" in fields:
            params["w_min"], params["w_max"] = derived_range(params.get("w_min", DERIVED), params.get("w_max", DERIVED),
                                                             cond_scale)
        elif "scale" in fields:
            params.setdefault("scale", cond_scale)
        return params

    def method_for(self, cond_scale: float):
        params = self.config(cond_scale)
        key = repr(sorted(params.items()))
        if key != self.key:
            self.method, self.key = guidance.create(self.name, **params), key
        return self.method

    def generated(self, x: torch.Tensor) -> torch.Tensor | None:
        """False on the trailing guide frames of a video latent (B C T H W), else None."""
        if not self.guide_frames or x.ndim != 5:
            return None
        if self.guide_frames >= x.shape[2]:
            raise ValueError(f"guide_frames={self.guide_frames} leaves no generated frame in a latent of "
                             f"{x.shape[2]} frames.")
        mask = torch.ones(x.shape[0], 1, x.shape[2], 1, 1, dtype=torch.bool, device=x.device)
        mask[:, :, -self.guide_frames:] = False
        return mask

    def __call__(self, args: dict) -> torch.Tensor:
        x, u, c = args["input"], args["uncond_denoised"], args["cond_denoised"]
        sigma = float(torch.as_tensor(args["sigma"]).reshape(-1)[0])
        sigmas = args.get("model_options", {}).get("transformer_options", {}).get("sample_sigmas")
        step, num_steps = step_of(sigmas, sigma)
        method = self.method_for(float(args["cond_scale"]))
        if self.previous_sigma is None or sigma > self.previous_sigma or step == 0:  # a new run
            method.reset()
            self.fields = []
        self.previous_sigma = sigma
        perturbation = method.perturbation(step, num_steps)
        p = perturbed_prediction(args, perturbation) if perturbation is not None else None
        if self.space == "noise":  # ComfyUI's own x - denoised tensors, then no round trip
            u, c, p = args["uncond"], args["cond"], (x - p if p is not None else None)
        layout = "BCFHW" if x.ndim == 5 else "BCHW"
        guided = method(u, c, step=step, num_steps=num_steps, layout=layout, sigma=sigma, pred_perturbed=p,
                        generated=self.generated(x))
        field = getattr(method.state, "scale_field", None)
        if field is not None:
            self.fields.append(field.detach().float().cpu())
        return guided if self.space == "noise" else x - guided


def tooltip(text: str, **spec) -> dict:
    return {**spec, "tooltip": text}


class SAMGVideo:
    """Patch a MODEL so that its sampler guides with spatio-temporal SAMG (the single CFG slot)."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    DESCRIPTION = ("Spatial adaptive multi guidance across frames: a per-location CFG scale from the energy of "
                   "cond - uncond (high energy -> w_min, low -> w_max), smoothed over frames. Takes the sampler's "
                   "CFG slot, as RescaleCFG does; pre- and post-CFG nodes stack with it.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "the model to guide (Wan, LTX-Video, HunyuanVideo, or any other)"}),
            "w_min": ("FLOAT", tooltip("scale where the guidance energy is highest; -1: 2/3 of the sampler's cfg",
                                       default=DERIVED, min=-1.0, max=100.0, step=0.05)),
            "w_max": ("FLOAT", tooltip("scale where the guidance energy is lowest; -1: 1.6 x the sampler's cfg",
                                       default=DERIVED, min=-1.0, max=100.0, step=0.05)),
            "normalize": (["clip", "frame"], {"default": "clip", "tooltip": "map the energy to [0, 1] over the "
                                                                           "whole clip or per frame"}),
            "temporal_sigma": ("FLOAT", tooltip("Gaussian smoothing of the field across latent frames (0: none)",
                                                default=1.0, min=0.0, max=16.0, step=0.05)),
            "temporal_mode": (["fixed", "motion"], {"default": "fixed", "tooltip": "smooth at fixed positions or "
                                                                                   "along the field's own motion"}),
            "spatial_sigma": ("FLOAT", tooltip("Gaussian smoothing of the field in latent pixels (0: none)",
                                               default=0.0, min=0.0, max=16.0, step=0.05)),
            "renormalize": ("BOOLEAN", tooltip("map the smoothed field back to the full [w_min, w_max] range",
                                               default=False)),
            "step_ema": ("FLOAT", tooltip("weight of the previous step's field (0: none)", default=0.0, min=0.0,
                                          max=0.99, step=0.01)),
            "quantile_low": ("FLOAT", tooltip("lower energy quantile mapped to w_max (0: the minimum)", default=0.0,
                                              min=0.0, max=0.5, step=0.01)),
            "quantile_high": ("FLOAT", tooltip("upper energy quantile mapped to w_min (1: the maximum)", default=1.0,
                                               min=0.5, max=1.0, step=0.01)),
            "bound": ("FLOAT", tooltip("cap on the guided update relative to the conditional prediction's size "
                                       "(0: no cap)", default=0.0, min=0.0, max=100.0, step=0.1)),
            "start": ("FLOAT", tooltip("fraction of the steps after which SAMG starts (before: CFG at w_max)",
                                       default=0.0, min=0.0, max=1.0, step=0.01)),
            "end": ("FLOAT", tooltip("fraction of the steps after which SAMG stops (after: CFG at w_max)",
                                     default=1.0, min=0.0, max=1.0, step=0.01)),
            "guide_frames": ("INT", tooltip("latent frames appended at the end as guides (LTXVAddGuide keyframes): "
                                            "left out of the field's statistics", default=0, min=0, max=1024)),
        }}

    def patch(self, model, w_min, w_max, normalize, temporal_sigma, temporal_mode, spatial_sigma, renormalize,
              step_ema, quantile_low, quantile_high, bound, start, end, guide_frames):
        params = dict(w_min=w_min, w_max=w_max, normalize=normalize, temporal_sigma=temporal_sigma,
                      temporal_mode=temporal_mode, spatial_sigma=spatial_sigma, renormalize=renormalize,
                      step_ema=step_ema, quantiles=(quantile_low, quantile_high), bound=bound or None,
                      interval=(start, end))
        if w_min != DERIVED and w_max != DERIVED and w_min > w_max:
            raise ValueError(f"w_min ({w_min}) must not exceed w_max ({w_max}).")
        patched = model.clone()
        patched.set_model_sampler_cfg_function(GuidanceCFG("samg", params, guide_frames), disable_cfg1_optimization=True)
        return (patched,)


DEFAULT_SPACE = {"cfg_zero_star": "noise"}  # where each method's authors (and ComfyUI's own node) compute it


class GuidanceMethod:
    """Patch a MODEL so that its sampler guides with any samg-video method: SAMG with STG through
    ComfyUI's block skipping, CFG-Zero*, APG, TCFG and the rest, with video reductions."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    DESCRIPTION = ("Any samg-video guidance method as the sampler's CFG function (the single CFG slot). Methods "
                   "with a perturbation (samg+stg, stg, slg) make one extra model call per step with the chosen "
                   "blocks skipped, as SkipLayerGuidanceDiT does; reductions run per frame or per clip of the "
                   "video latent, never over channels alone.")

    @classmethod
    def INPUT_TYPES(cls):
        methods = [m for m in guidance.available() if m != "pag"]  # PAG's identity attention has no ComfyUI hook
        return {"required": {
            "model": ("MODEL", {"tooltip": "the model to guide (Wan, LTX-Video, HunyuanVideo, or any other)"}),
            "method": (methods, {"default": "samg+stg", "tooltip": "the guidance method (samg-video's names; "
                                                                   "`samg-video methods` lists them)"}),
            "options": ("STRING", tooltip("the method's parameters as KEY=VALUE separated by spaces, e.g. "
                                          "'w_min=3 w_max=9 temporal_sigma=1 scale_stg=1 layers=[9]'. Left out: "
                                          "scale = the sampler's cfg, w_min / w_max = 2/3 and 1.6 x cfg, the "
                                          "method's defaults for the rest; layers: the middle block",
                                          default="", multiline=True)),
            "space": (["auto", *SPACES], {"default": "auto", "tooltip": "combine the denoised predictions or "
                                          "x - denoised (the model's noise / velocity up to sigma); auto: "
                                          "x - denoised for cfg_zero_star, denoised for the rest"}),
            "guide_frames": ("INT", tooltip("latent frames appended at the end as guides (LTXVAddGuide keyframes): "
                                            "left out of SAMG's field statistics", default=0, min=0, max=1024)),
        }}

    def patch(self, model, method, options, space, guide_frames):
        space = DEFAULT_SPACE.get(method, "denoised") if space == "auto" else space
        fn = GuidanceCFG(method, parse_options(options), guide_frames, space)
        patched = model.clone()
        patched.set_model_sampler_cfg_function(fn, disable_cfg1_optimization=True)
        return (patched,)


def samg_function(model) -> GuidanceCFG:
    fn = getattr(model, "model_options", {}).get("sampler_cfg_function")
    if not isinstance(fn, GuidanceCFG) or "w_min" not in fn.method.to_dict():
        raise ValueError("This MODEL is not patched by a SAMG node (SAMG (video), or the guidance-method node with "
                         "samg / samg+stg); connect that node's output.")
    return fn


class SAMGFieldPreview:
    """The scale field of the last run as an IMAGE batch: one heatmap per latent frame (the mean over
    steps, or one step), with a colour bar from w_min to w_max."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "preview"
    DESCRIPTION = "Where SAMG guided harder: its per-location scale, bright = high."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "the MODEL output of the SAMG (video) node that sampled"}),
            "samples": ("LATENT", {"tooltip": "the sampler's output (so the preview runs after the sampling)"}),
            "step": ("INT", tooltip("-1: the mean over steps; else that step", default=-1, min=-1, max=10000)),
            "upscale": ("INT", tooltip("nearest-neighbour enlargement of the latent grid", default=8, min=1, max=64)),
        }}

    def preview(self, model, samples, step, upscale):
        from samg_video import viz

        fn = samg_function(model)
        if not fn.fields:
            raise ValueError("The SAMG (video) model has not sampled yet; run a sampler with it first.")
        if step >= len(fn.fields):
            raise ValueError(f"step {step} is past the last run's {len(fn.fields)} steps.")
        field = torch.stack(fn.fields).mean(0) if step < 0 else fn.fields[step]
        field = field[0, 0] if field.ndim == 5 else field[0]  # (F, H, W) of the first sample
        if field.ndim == 2:
            field = field[None]
        method = fn.method
        frames = viz.scale_map(field.numpy(), method.w_min, method.w_max, upscale)  # uint8 (F, H, W, 3)
        return (torch.from_numpy(frames).float() / 255,)


class TemporalMetrics:
    """Temporal metrics of decoded frames (an IMAGE batch, one clip): flicker, motion-compensated
    flicker, warp error, LPIPS-temporal and motion, as JSON text (shown on the node) and numbers."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "FLOAT")
    RETURN_NAMES = ("json", "flicker", "flicker_compensated", "warp_error", "lpips_temporal", "motion")
    FUNCTION = "measure"
    OUTPUT_NODE = True  # runs (and shows its numbers) without a downstream node
    DESCRIPTION = "samg-video's temporal metrics of a clip; connect two branches to compare them."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "decoded frames of one clip (VAE Decode output)"}),
            "lpips": ("BOOLEAN", tooltip("also LPIPS-temporal (slower; NaN when off)", default=False)),
        }}

    def measure(self, images, lpips):
        from samg_video import metrics

        names = ["flicker", "warp_error", "motion", "saturation"] + (["lpips_temporal"] if lpips else [])
        frames = images.detach().cpu().float().clamp(0, 1).numpy()  # ComfyUI IMAGE: (F, H, W, 3) in [0, 1]
        result = metrics.compute(frames, metrics=names)
        value = lambda key: float(result[key]) if isinstance(result.get(key), (int, float)) else math.nan
        text = json.dumps(result, default=float)
        numbers = tuple(value(k) for k in self.RETURN_NAMES[1:])
        return {"ui": {"text": [text]}, "result": (text, *numbers)}


NODE_CLASS_MAPPINGS = {"SAMGVideo": SAMGVideo, "SAMGGuidanceMethod": GuidanceMethod,
                       "SAMGFieldPreview": SAMGFieldPreview, "SAMGTemporalMetrics": TemporalMetrics}
NODE_DISPLAY_NAME_MAPPINGS = {"SAMGVideo": "SAMG (video)", "SAMGGuidanceMethod": "Guidance method (samg-video)",
                              "SAMGFieldPreview": "SAMG scale-field preview",
                              "SAMGTemporalMetrics": "Temporal metrics (samg-video)"}
