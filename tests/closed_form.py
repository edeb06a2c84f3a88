"""A closed-form denoiser for the synthetic world: the exact posterior mean.

The world is finite: K clips (default 4) (fixed seeds) for every single-object prompt; a
two-object prompt gets its own K clips on first use. The conditional set of a prompt
is its clips; the unconditional set is the whole single-object universe plus the sets
of the prompts in the same batch, so that late in sampling the unconditional
posterior collapses onto the same clip as the conditional one, as it should. For a
data set {x_i} and the forward process x_t = sqrt(a_t) x_0 +
sqrt(1 - a_t) eps, the optimal denoiser is

    p(x_i | x_t) = softmax_i( -|x_t - sqrt(a_t) x_i|^2 / (2 (1 - a_t)) )
    E[x_0 | x_t] = sum_i p(x_i | x_t) x_i
    eps_hat      = (x_t - sqrt(a_t) E[x_0 | x_t]) / sqrt(1 - a_t)

`closed_form_pipeline()` builds a `DemoVideoPipeline` around it, so tests and
studies can run full generation in milliseconds on an exactly known data manifold.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from samg_video.demo.model import TinyVideoOutput, build_tokenizer
from samg_video.demo.world import parse_prompt, place_all, render_batch, single_object_prompts


@functools.lru_cache(maxsize=None)
def _clip_set(prompt: str, count: int, num_frames: int, seed: int, supersample: int) -> torch.Tensor:
    """Rendered once per process; independent of the order in which prompts are asked for."""
    rng = np.random.default_rng([seed, *map(ord, prompt)])
    scenes = [place_all(parse_prompt(prompt), rng, num_frames) for _ in range(count)]
    return render_batch(scenes, num_frames, supersample)


@functools.lru_cache(maxsize=4)
def _universe(count: int, num_frames: int, seed: int, supersample: int) -> torch.Tensor:
    return torch.cat([_clip_set(p, count, num_frames, seed, supersample) for p in single_object_prompts()])


@dataclass
class TextIds:
    last_hidden_state: torch.Tensor


class TokenIdEncoder(nn.Module):
    """A "text encoder" that passes token ids through as states (B, L, 1)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TextIds:
        return TextIds(last_hidden_state=input_ids.float().unsqueeze(-1))


class ClosedFormDenoiser(nn.Module):
    """Posterior-mean epsilon for a finite clip set per prompt (module docstring)."""

    def __init__(self, alphas_cumprod: torch.Tensor, tokenizer, clips_per_prompt: int = 4,
                 seed: int = 0, supersample: int = 2):
        super().__init__()
        self.register_buffer("alphas_cumprod", alphas_cumprod.float(), persistent=False)
        self.vocab = {i: w for w, i in tokenizer.get_vocab().items()}
        self.clips_per_prompt, self.seed, self.supersample = clips_per_prompt, seed, supersample

    def universe(self, num_frames: int) -> torch.Tensor:
        """Clips of every single-object prompt, (90 K, 3, F, H, W)."""
        return _universe(self.clips_per_prompt, num_frames, self.seed, self.supersample)

    def prompt_of(self, ids: torch.Tensor) -> str:
        words = [self.vocab[int(i)] for i in ids]
        return " ".join(w for w in words if not w.startswith("["))

    def clip_set(self, prompt: str, num_frames: int) -> torch.Tensor:
        """Clips (K, 3, F, H, W) in [-1, 1] for a prompt, rendered once with fixed seeds."""
        return _clip_set(prompt, self.clips_per_prompt, num_frames, self.seed, self.supersample)

    def uncond_set(self, batch_prompts: list[str], num_frames: int) -> torch.Tensor:
        singles = set(single_object_prompts())
        extra = [self.clip_set(p, num_frames) for p in dict.fromkeys(batch_prompts) if p and p not in singles]
        return torch.cat([self.universe(num_frames)] + extra)

    def posterior_mean(self, x_t: torch.Tensor, abar: torch.Tensor, clips: torch.Tensor) -> torch.Tensor:
        """E[x_0 | x_t] for one sample x_t (3, F, H, W) over `clips` (N, 3, F, H, W)."""
        dist = (x_t[None] - abar.sqrt() * clips).flatten(1).square().sum(1)
        weights = torch.softmax(-dist / (2 * (1 - abar)), dim=0)
        return torch.einsum("n,n...->...", weights, clips)

    def forward(self, sample, timestep, encoder_hidden_states, encoder_attention_mask=None, return_dict=True):
        t = int(torch.as_tensor(timestep).reshape(-1)[0])
        abar = self.alphas_cumprod[t]
        prompts = [self.prompt_of(i) for i in encoder_hidden_states[..., 0].long()]
        frames = sample.shape[2]
        sets = [self.clip_set(p, frames) if p else self.uncond_set(prompts, frames) for p in prompts]
        x0 = torch.stack([self.posterior_mean(x.float(), abar, s) for x, s in zip(sample, sets)])
        eps = (sample - abar.sqrt() * x0) / (1 - abar).sqrt()
        return TinyVideoOutput(sample=eps) if return_dict else (eps,)


def closed_form_pipeline(clips_per_prompt: int = 4, seed: int = 0):
    """A `DemoVideoPipeline` whose denoiser is the exact posterior mean (no weights needed)."""
    from diffusers import DDIMScheduler

    from samg_video.demo.pipeline import DemoVideoPipeline

    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
    tokenizer = build_tokenizer()
    denoiser = ClosedFormDenoiser(scheduler.alphas_cumprod, tokenizer, clips_per_prompt, seed=seed)
    return DemoVideoPipeline(unet=denoiser, text_encoder=TokenIdEncoder(), tokenizer=tokenizer, scheduler=scheduler)
