"""samg-video's bundled text-to-video model as ComfyUI objects: a MODEL that KSampler, the custom
samplers and every guidance node run, a CLIP that core's CLIP Text Encode reads, and a VAE that
core's VAE Decode reads. It draws coloured shapes that move as the prompt says (8 frames of 32x32
pixels, `samg_video/models/demo-t2v/README.md`), in seconds on a CPU, with no download.

- **MODEL**: a `comfy.model_base.BaseModel` whose `diffusion_model` is the U-Net behind an adapter
  that takes ComfyUI's call `(x, t, context=..., attention_mask=...)`, wrapped in a
  `comfy.model_patcher.ModelPatcher` as ComfyUI's own loaders wrap theirs. Its noise schedule is
  the betas of the diffusers scheduler that the model folder's `scheduler/scheduler_config.json`
  makes (handed to ComfyUI's `ModelSamplingDiscrete` as given betas: ComfyUI's own
  `squaredcos_cap_v2` returns a NumPy array that its schedule code cannot take), and its
  prediction type that file's `prediction_type` ("v_prediction" -> `ModelType.V_PREDICTION`), so
  ComfyUI's sigmas are the ones the U-Net was trained on, and the `ddim_uniform` scheduler gives
  the timesteps of the diffusers pipeline's DDIM (1, 41, ..., 961 at 25 steps).
- **Latent format**: the model works in pixels, `(B, 3, F, H, W)` in [-1, 1]: 3 channels, 3 latent
  dimensions, scale 1, and the identity as the preview's RGB factors (ComfyUI maps [-1, 1] to
  [0, 1] for previews itself), so the sampler's live preview shows the frames as they form.
- **CLIP**: `tokenize(text)` checks the prompt against the model's vocabulary (one sentence naming
  the unknown word); `encode_from_tokens_scheduled` gives ComfyUI's conditioning, `[[states (1, 16,
  64), {"attention_mask": (1, 16)}]]`, one slot per object phrase as the pipeline encodes it.
- **VAE**: `decode(samples (B, 3, F, H, W)) -> (B, F, H, W, 3)` in [0, 1], `encode` the inverse,
  no compression in space or time.

ComfyUI imports at the top: this module loads only inside ComfyUI (the loader node imports it
when it runs).
"""

from __future__ import annotations

from pathlib import Path

import torch
import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models_base

PREDICTION = {"v_prediction": comfy.model_base.ModelType.V_PREDICTION, "epsilon": comfy.model_base.ModelType.EPS}


class PixelClip(comfy.latent_formats.LatentFormat):
    """Pixels in [-1, 1] as the latent, (B, 3, F, H, W)."""

    latent_channels = 3
    latent_dimensions = 3
    scale_factor = 1.0
    latent_rgb_factors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    latent_rgb_factors_bias = [0.0, 0.0, 0.0]
    taesd_decoder_name = None


class Denoiser(torch.nn.Module):
    """The U-Net as ComfyUI calls a diffusion model: `(x, t, context=, attention_mask=)` -> its output."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def forward(self, x, timesteps, context=None, attention_mask=None, control=None, transformer_options=None,
                **kwargs):
        return self.unet(x, timesteps, encoder_hidden_states=context, encoder_attention_mask=attention_mask,
                         return_dict=False)[0]


class BundledModel(comfy.model_base.BaseModel):
    """ComfyUI's base model, with the text's attention mask handed to the U-Net."""

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        mask = kwargs.get("attention_mask")
        if mask is not None:
            out["attention_mask"] = comfy.conds.CONDRegular(mask)
        return out


def model_type(scheduler) -> comfy.model_base.ModelType:
    """ComfyUI's model type for a diffusers scheduler's `prediction_type`."""
    prediction = scheduler.config.prediction_type
    if prediction not in PREDICTION:
        raise ValueError(f"prediction_type {prediction!r} is not one ComfyUI's discrete sampling takes "
                         f"({', '.join(PREDICTION)}).")
    return PREDICTION[prediction]


class Config(comfy.supported_models_base.BASE):
    unet_config = {"disable_unet_model_creation": True}
    unet_extra_config = {}
    latent_format = PixelClip
    memory_usage_factor = 1.0
    supported_inference_dtypes = [torch.float32]


def model_patcher(unet, scheduler) -> comfy.model_patcher.ModelPatcher:
    """The MODEL: the U-Net in ComfyUI's base model with the diffusers scheduler's betas, in a ModelPatcher."""
    model = BundledModel(Config(Config.unet_config), model_type=model_type(scheduler))
    model.model_sampling._register_schedule(given_betas=scheduler.betas.double(),
                                            timesteps=scheduler.config.num_train_timesteps)
    model.diffusion_model = Denoiser(unet)
    model.eval()
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


class BundledText:
    """What ComfyUI's text nodes ask of a CLIP: `tokenize` and `encode_from_tokens(_scheduled)`."""

    def __init__(self, text_encoder, tokenizer, slots: int):
        self.text_encoder, self.tokenizer, self.slots = text_encoder, tokenizer, slots

    def tokenize(self, text: str, return_word_ids: bool = False, **kwargs) -> dict:
        """The prompt, checked against the model's words and object count (ValueError, one sentence)."""
        from samg_video.demo import check_objects, parse_prompt

        if text.strip():
            parse_prompt(text)
            check_objects(text, self.slots)
        return {"prompt": text}

    @torch.no_grad()
    def encode(self, tokens: dict) -> tuple[torch.Tensor, torch.Tensor]:
        from samg_video.demo.model import encode_slots

        return encode_slots(self.text_encoder, self.tokenizer, [tokens["prompt"]], self.slots, torch.device("cpu"))

    def encode_from_tokens_scheduled(self, tokens: dict, unprojected=False, add_dict=None, show_pbar=True) -> list:
        states, mask = self.encode(tokens)
        return [[states, {"attention_mask": mask, **(add_dict or {})}]]

    def encode_from_tokens(self, tokens: dict, return_pooled=False, return_dict=False):
        states, mask = self.encode(tokens)
        if return_dict:
            return {"cond": states, "attention_mask": mask}
        return (states, None) if return_pooled else states


class PixelVAE:
    """What ComfyUI's VAE nodes ask of a VAE, for a model that works in pixels."""

    def decode(self, samples: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) in [-1, 1] -> (B, F, H, W, 3) in [0, 1] (a 4-D latent: (B, H, W, 3))."""
        images = ((samples.float() + 1) / 2).clamp(0, 1)
        return images.movedim(1, -1)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Frames (F, H, W, C) in [0, 1] -> one clip (1, 3, F, H, W) in [-1, 1]."""
        return (pixels[..., :3].float() * 2 - 1).movedim(-1, 0).unsqueeze(0)

    def spacial_compression_decode(self) -> int:
        return 1

    def spacial_compression_encode(self) -> int:
        return 1

    def temporal_compression_decode(self) -> int:
        return 1


def load(folder: str | Path | None = None) -> tuple:
    """(MODEL, CLIP, VAE) of the bundled model (the shipped copy, or a folder `samg-video-train` wrote)."""
    from samg_video.demo.pipeline import DEFAULT_MODEL_DIR, load_pipeline

    root = Path(folder) if folder else DEFAULT_MODEL_DIR
    pipe = load_pipeline(root)
    slots = getattr(pipe.unet.config, "slots", 1)
    return model_patcher(pipe.unet, pipe.scheduler), BundledText(pipe.text_encoder, pipe.tokenizer, slots), PixelVAE()
