"""`DemoVideoPipeline`: the bundled model as a diffusers `DiffusionPipeline`.

Its loop is the one the diffusers video pipelines use: one denoiser call per step on
the batch `[uncond, cond]`, then `u + w (c - u)`, then the scheduler step. Guidance
methods enter by wrapping `pipe.unet` (`samg_video.pipelines.apply`), never by
editing this loop.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from . import check_objects
from .world import NUM_FRAMES, SIZE


@contextmanager
def flush_denormals():
    """Flush denormal floats to zero inside the block, then restore torch's default (off).

    Guided latents (SAMG, smoothing) drive some of the U-Net's activations into the
    denormal range, where x86 CPU arithmetic is many times slower: measured with
    `benchmarks/bench_pipeline.py`, a whole generation took 1.16x (SAMG) and 1.38x (SAMG
    with smoothing) the time of the pipeline's own CFG, and 0.95x / 1.00x with flushing.
    Values below 1.2e-38 becoming 0 changes no visible output.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


from ..cards import MODELS_DIR  # noqa: E402

DEFAULT_MODEL_DIR = MODELS_DIR / "demo-t2v"
WEIGHT_FILES = ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors")


@dataclass
class DemoVideoOutput(BaseOutput):
    """frames: (B, F, H, W, 3) in [0, 1]; raw: (B, 3, F, H, W) unclipped model space [-1, 1]."""

    frames: np.ndarray
    raw: torch.Tensor


class DemoVideoPipeline(DiffusionPipeline):
    """Text-to-video for the synthetic world; `pipe(prompt).frames[0]` is one clip (F, H, W, 3)."""

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(self, unet, text_encoder, tokenizer, scheduler):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
        self._guidance_scale = 1.0

    @property
    def device(self) -> torch.device:
        """Device of the denoiser's first parameter or buffer (CPU when it has none)."""
        tensors = list(self.unet.parameters()) + list(self.unet.buffers())
        return tensors[0].device if tensors else torch.device("cpu")

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    def check_prompts(self, prompts: list[str]) -> None:
        """Raise ValueError on a word outside the vocabulary (the message lists it) or on more
        objects than the U-Net has text slots."""
        slots = getattr(getattr(self.unet, "config", None), "slots", 1)
        for p in prompts:
            check_objects(p, slots)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> text states (B, L, D) and attention mask (B, L), one slot per object phrase."""
        from .model import encode_slots

        slots = getattr(getattr(self.unet, "config", None), "slots", 1)
        return encode_slots(self.text_encoder, self.tokenizer, prompts, slots, self.device)

    def prepare_latents(self, batch: int, num_frames: int, height: int, width: int, generator,
                        latents: torch.Tensor | None = None) -> torch.Tensor:
        """The starting noise (B, C, F, H, W) (drawn on the CPU from `generator`, one per clip or one for
        the batch), scaled by the scheduler's `init_noise_sigma` (after `set_timesteps`)."""
        shape = (batch, 3, num_frames, height, width)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)
        return latents.to(self.device) * self.scheduler.init_noise_sigma

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], num_frames: int = NUM_FRAMES, height: int = SIZE,
                 width: int = SIZE, num_inference_steps: int = 25, guidance_scale: float = 7.5,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 latents: torch.Tensor | None = None, output_type: str = "np", return_dict: bool = True):
        """Generate clips, as the diffusers video pipelines do: `generator` is one generator or one
        per prompt (each item's noise then depends on its own generator only), `output_type` "np"
        (float (B, F, H, W, 3)), "pt" (the same as a tensor) or "latent" (the raw (B, 3, F, H, W)),
        the progress bar follows `set_progress_bar_config`. On the CPU, denormal floats are
        flushed to zero (see `flush_denormals`)."""
        if output_type not in ("np", "pt", "latent"):
            raise ValueError(f"output_type must be 'np', 'pt' or 'latent', got {output_type!r}.")
        with flush_denormals():
            return self._generate(prompt, num_frames, height, width, num_inference_steps, guidance_scale,
                                  generator, latents, output_type, return_dict)

    def _generate(self, prompt, num_frames, height, width, num_inference_steps, guidance_scale, generator,
                  latents, output_type, return_dict):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        self.check_prompts(prompts)
        self._guidance_scale = guidance_scale
        batch = len(prompts)
        states, mask = self.encode_prompt(prompts)
        if self.do_classifier_free_guidance:
            neg_states, neg_mask = self.encode_prompt([""] * batch)
            states, mask = torch.cat([neg_states, states]), torch.cat([neg_mask, mask])
        if isinstance(generator, list) and len(generator) != batch:
            raise ValueError(f"{len(generator)} generators for {batch} prompts; pass one per prompt.")
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)  # before init_noise_sigma, its sigma
        latents = self.prepare_latents(batch, num_frames, height, width, generator, latents)
        step_kwargs = step_arguments(self.scheduler, generator)
        for t in self.progress_bar(self.scheduler.timesteps):
            model_in = torch.cat([latents] * 2) if self.do_classifier_free_guidance else latents
            model_in = self.scheduler.scale_model_input(model_in, t)
            noise_pred = self.unet(model_in, t, encoder_hidden_states=states,
                                   encoder_attention_mask=mask, return_dict=False)[0]
            if self.do_classifier_free_guidance:
                noise_uncond, noise_cond = noise_pred.chunk(2)
                noise_pred = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
            latents = self.scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
        frames = ((latents + 1) / 2).clamp(0, 1).permute(0, 2, 3, 4, 1)
        frames = {"np": lambda: frames.cpu().float().numpy(), "pt": lambda: frames,
                  "latent": lambda: latents}[output_type]()
        out = DemoVideoOutput(frames=frames, raw=latents)
        return out if return_dict else (frames,)


def step_arguments(scheduler, generator) -> dict:
    """What the scheduler's `step` accepts of `generator` (and DDIM's `eta`, 0), as diffusers' pipelines
    pass them (`prepare_extra_step_kwargs`): Heun, KDPM2 and UniPC take no generator. A list of
    generators (one per clip) goes to a scheduler that draws step noise only as one generator per
    clip can serve it; the ancestral and SDE schedulers draw the batch's noise from one generator, so
    they get the first (a clip then depends on its batch, as in diffusers' own pipelines)."""
    import inspect

    accepted = set(inspect.signature(scheduler.step).parameters)
    kwargs = {}
    if "eta" in accepted:
        kwargs["eta"] = 0.0
    if "generator" in accepted:
        kwargs["generator"] = generator
    return kwargs


def scheduler_from_config(folder: str | Path, class_name: str | None = None, **overrides):
    """The diffusers scheduler a `scheduler_config.json` names (its `_class_name`, or
    `class_name` to sample the same model with another solver), with `overrides` applied.

    Raises ValueError naming the unknown class and listing the diffusers schedulers.
    """
    import diffusers

    config = json.loads((Path(folder) / "scheduler_config.json").read_text())
    name = class_name or config.get("_class_name", "DDIMScheduler")
    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        known = sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and isinstance(getattr(diffusers, n), type))
        raise ValueError(f"Unknown scheduler {name!r}; use one of diffusers' schedulers: {', '.join(known)}.")
    return cls.from_config({**config, **overrides})


def load_pipeline(path: str | Path | None = None, device: str = "cpu") -> DemoVideoPipeline:
    """Load the bundled model from its shipped weights (default: the copy shipped in the package).

    Raises FileNotFoundError naming the missing file and how to produce it.
    """
    from transformers import CLIPTextModel, PreTrainedTokenizerFast

    from .model import TinyVideoUNet

    root = Path(path) if path is not None else DEFAULT_MODEL_DIR
    for rel in WEIGHT_FILES:
        if not (root / rel).is_file():
            raise FileNotFoundError(
                f"Bundled model weight {root / rel} is missing; reinstall samg-video "
                f"or retrain it with `samg-video-train --out {root}`.")
    unet = TinyVideoUNet.from_pretrained(root / "unet")
    text_encoder = CLIPTextModel.from_pretrained(root / "text_encoder")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(root / "tokenizer")
    scheduler = scheduler_from_config(root / "scheduler")
    pipe = DemoVideoPipeline(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
    return pipe.to(device)

