"""The bundled denoiser: a small text-conditioned video U-Net, and its tokenizer.

`TinyVideoUNet` maps a noisy clip `(B, 3, F, H, W)` (pixels in [-1, 1]), a timestep
and text states `(B, L, D)` to the predicted velocity v = sqrt(abar) eps - sqrt(1 - abar) x0 (same shape). Frames are
space-to-depth packed 2x2 (so a 32x32 clip is processed at 16x16 and 8x8); each
block is a 2-D spatial conv pair with FiLM from time + pooled text (+ a frame-index
embedding), a temporal conv (k=3 along frames, or 3x3x3 over frames and space), and
cross-attention to the text tokens; optionally one space-time self-attention over the
8x8 x frames cells, and temporal self-attention (every cell attends to itself in all
frames) at both levels.

With `motion_align` (the shipped model), one velocity per clip is read from the prompt
and every temporal conv / attention runs on features shifted into the frame of reference
moving at that velocity (`in_moving_frame`), where an object that moves as the prompt
says stands still.

The model may be trained with frame-correlated noise (`noise_frame_share` > 0, the
"mixed" noise prior of Ge et al. 2023, "Preserve Your Own Correlation"): a share of
the noise variance is common to all frames, so the frames of a clip start from
consistent noise; `frame_correlated_noise` draws it, for training and sampling alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from einops import rearrange

from .world import MOTIONS, VOCABULARY, ObjectSpec, prompt_of

SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
MAX_TOKENS = 16


def build_tokenizer():
    """A word-level tokenizer over the world's vocabulary (built locally, no Hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + VOCABULARY)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 1), ("[EOS]", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]",
        unk_token="[UNK]", model_max_length=MAX_TOKENS)


def build_text_encoder(hidden: int = 64, layers: int = 2):
    """A tiny CLIP text transformer from a config (random init; trained with the U-Net)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=len(SPECIAL_TOKENS) + len(VOCABULARY), hidden_size=hidden,
        intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return CLIPTextModel(cfg)


@torch.no_grad()
def motion_word_velocities(unet, text_encoder, tokenizer) -> dict[str, list[float]] | None:
    """The moving frame's velocity (vx, vy) px/frame that `unet` reads for "a red circle ..."
    with each motion word, rounded to 0.01; None for a U-Net without motion_align."""
    prompts = [prompt_of([ObjectSpec("red", "circle", m)]) for m in MOTIONS]
    tok = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
    states = text_encoder(input_ids=tok.input_ids, attention_mask=tok.attention_mask).last_hidden_state
    v = unet.clip_velocity(states, tok.attention_mask == 0) if hasattr(unet, "clip_velocity") else None
    return None if v is None else {m: [round(float(a), 2) for a in row] for m, row in zip(MOTIONS, v)}


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)


def shift_frames(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Translate every frame by its own sub-cell offset (bilinear, zeros outside).

        out[n, c, y, x] = x[n, c, y + oy_n, x + ox_n]

    x: (N, C, H, W); offsets: (N, 2) as (ox, oy) in cells. Integer offsets move cells
    exactly; a zero offset returns x (up to float rounding).
    """
    n, _, h, w = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 2 * offsets[:, 0].to(x.dtype) / w  # normalised units: the image spans 2
    theta[:, 1, 2] = 2 * offsets[:, 1].to(x.dtype) / h
    grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def frame_offsets(velocity: torch.Tensor, frames: int, stride: int) -> torch.Tensor:
    """Offsets of a clip's moving frame, (B, 2) pixels per frame -> (B*F, 2) cells.

        o[b, f] = v_b (f - (F - 1) / 2) / stride

    (relative to the middle frame, so the largest shift is half the clip's travel).
    """
    t = torch.arange(frames, dtype=velocity.dtype, device=velocity.device) - (frames - 1) / 2
    return (velocity[:, None, :] * t[None, :, None] / stride).reshape(-1, 2)


def in_moving_frame(fn, x: torch.Tensor, offsets: torch.Tensor | None) -> torch.Tensor:
    """Apply a temporal operator in the clip's moving frame of reference.

        out = shift(fn(shift(x, o)), -o)

    With o = v (f - c) for the clip's velocity v, an object moving at v stands still
    in the shifted frames, so a temporal conv or attention at one cell sees the same
    object in every frame (motion compensation). offsets None: fn(x).
    """
    if offsets is None:
        return fn(x)
    return shift_frames(fn(shift_frames(x, offsets)), -offsets)


def dynamic_depthwise3d(x: torch.Tensor, kernel: torch.Tensor, frames: int) -> torch.Tensor:
    """Per-clip depthwise 3x3x3 conv over (frames, height, width), zero padding.

    x: (B*F, C, H, W); kernel: (B, C*27), one kernel per clip; returns (B*F, C, H, W).
    One grouped conv with B*C groups.
    """
    bf, c, h, w = x.shape
    b = bf // frames
    v = rearrange(x, "(b f) c h w -> 1 (b c) f h w", f=frames)
    out = F.conv3d(v, kernel.reshape(b * c, 1, 3, 3, 3), padding=1, groups=b * c)
    return rearrange(out, "1 (b c) f h w -> (b f) c h w", b=b)


class ResBlock(nn.Module):
    """Spatial conv pair with FiLM conditioning, then a residual temporal conv.

    temporal="conv1d": a k=3 conv along frames at each location (no spatial extent);
    temporal="conv3d": a 3x3x3 conv over (frames, height, width), which can match an
    object at shifted positions in neighbouring frames, i.e. represent motion.
    temporal="dynamic": a depthwise 3x3x3 conv whose kernel is generated per clip from
    the clip's conditioning (time + pooled text), followed by a 1x1 channel mix:

        t[b, c] = sum_{df, dy, dx} K_b[c, df, dy, dx] * h[b, c, f + df, y + dy, x + dx],
        K_b = reshape(W_k cond_b + k_0)                      (C, 3, 3, 3)

    so the prompt's motion word can choose the spatial offset between neighbouring
    frames directly (a text-conditioned shift), instead of through channel gating.
    """

    def __init__(self, cin: int, cout: int, cond_dim: int, temporal: str = "conv1d"):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.tnorm = nn.GroupNorm(8, cout)
        self.temporal = temporal
        if temporal == "dynamic":
            self.kernel = nn.Linear(cond_dim, cout * 27)
            nn.init.normal_(self.kernel.weight, std=0.01)
            with torch.no_grad():  # start from a mix of the identity and a 3x3x3 mean
                self.kernel.bias.copy_(torch.full((cout, 27), 1 / 27).index_fill_(1, torch.tensor([13]), 1.0).flatten())
            self.tconv = nn.Conv2d(cout, cout, 1)
        elif temporal == "conv1d":
            self.tconv = nn.Conv1d(cout, cout, 3, padding=1)
        else:
            self.tconv = nn.Conv3d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.tconv.weight)
        nn.init.zeros_(self.tconv.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, frames: int,
                offsets: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B*F, C, H, W); cond: (B*F, cond_dim); offsets: (B*F, 2) cells of the clip's
        moving frame (see `in_moving_frame`), or None for the fixed frame."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h)) + self.skip(x)
        return h + in_moving_frame(lambda z: self._temporal(z, cond, frames), self.tnorm(h), offsets)

    def _temporal(self, t: torch.Tensor, cond: torch.Tensor, frames: int) -> torch.Tensor:
        """The temporal branch on normalised features (B*F, C, H, W) -> same shape."""
        hw = t.shape[-2:]
        if self.temporal == "dynamic":
            # the clip's mean conditioning (a frame embedding averages out): K_b = W_k mean_f(cond) + k_0
            kernel = self.kernel(cond.reshape(-1, frames, cond.shape[-1]).mean(1))
            return self.tconv(dynamic_depthwise3d(F.silu(t), kernel, frames))
        if self.temporal == "conv3d":
            t = rearrange(t, "(b f) c h w -> b c f h w", f=frames)
            return rearrange(self.tconv(F.silu(t)), "b c f h w -> (b f) c h w")
        t = rearrange(t, "(b f) c h w -> (b h w) c f", f=frames)
        return rearrange(self.tconv(F.silu(t)), "(b h w) c f -> (b f) c h w", h=hw[0], w=hw[1])


class CrossAttention(nn.Module):
    """Every spatio-temporal cell attends to the text tokens."""

    def __init__(self, channels: int, text_dim: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, kdim=text_dim, vdim=text_dim, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)

    def forward(self, x, text, text_mask, frames: int):
        """x: (B*F, C, H, W); text: (B, L, D); text_mask: (B, L) True where padded."""
        bf, c, h, w = x.shape
        q = rearrange(self.norm(x), "(b f) c h w -> b (f h w) c", f=frames)
        out, _ = self.attn(q, text, text, key_padding_mask=text_mask, need_weights=False)
        return x + rearrange(out, "b (f h w) c -> (b f) c h w", f=frames, h=h, w=w)


def sinusoid(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of integer positions (N,) -> (N, dim), wavelengths 2..64."""
    half = dim // 2
    freqs = math.pi * torch.exp(-math.log(32.0) * torch.arange(half, device=pos.device) / max(half - 1, 1))
    args = pos.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class SpaceTimeAttention(nn.Module):
    """Self-attention over all (frame, y, x) cells of a clip, with 3-D sinusoidal positions.

    Lets every cell compare itself with every cell of every other frame, so an object's
    trajectory can be made consistent over the whole clip. Used at the coarsest level
    (8x8 x 8 frames = 512 tokens for the 32x32 world).
    """

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)

    def positions(self, f: int, h: int, w: int, c: int, device) -> torch.Tensor:
        """(f*h*w, c): concatenated sinusoids of frame, row and column index (zero-padded to c)."""
        d = (c // 3) // 2 * 2
        pf, py, px = (sinusoid(torch.arange(n, device=device), d) for n in (f, h, w))
        grid = torch.cat([pf[:, None, None].expand(f, h, w, d), py[None, :, None].expand(f, h, w, d),
                          px[None, None, :].expand(f, h, w, d)], dim=-1)
        return F.pad(grid.reshape(f * h * w, 3 * d), (0, c - 3 * d))

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x: (B*F, C, H, W) -> same shape."""
        bf, c, h, w = x.shape
        tokens = rearrange(self.norm(x), "(b f) c h w -> b (f h w) c", f=frames)
        qk = tokens + self.positions(frames, h, w, c, x.device)[None]
        out, _ = self.attn(qk, qk, tokens, need_weights=False)
        return x + rearrange(out, "b (f h w) c -> (b f) c h w", f=frames, h=h, w=w)


def frame_correlated_noise(shape: tuple[int, ...], share: float = 0.0, generator: torch.Generator | None = None,
                           device="cpu") -> torch.Tensor:
    """Gaussian noise (B, C, F, H, W) whose variance is `share` common to all frames.

        eps[:, :, f] = sqrt(share) * z_shared + sqrt(1 - share) * z_f,   z ~ N(0, I)

    so every element is N(0, 1) and the correlation between two frames is `share`.
    share = 0 gives `torch.randn(shape, generator=generator)` exactly (same draws).
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"noise share must be in [0, 1), got {share}.")
    z = torch.randn(shape, generator=generator, device=device)
    if share == 0.0:
        return z
    b, c, _, h, w = shape
    shared = torch.randn((b, c, 1, h, w), generator=generator, device=device)
    return math.sqrt(share) * shared + math.sqrt(1.0 - share) * z


class TemporalAttention(nn.Module):
    """Self-attention along frames at every spatial cell, with sinusoidal frame positions.

    (B*F, C, H, W) -> same shape; sequences of length F, one per (b, y, x). Gives every
    frame the whole clip as context at the cost of F x F scores per cell.
    """

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)

    def forward(self, x: torch.Tensor, frames: int, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """offsets: (B*F, 2) cells of the clip's moving frame (`in_moving_frame`), or None."""
        return x + in_moving_frame(lambda z: self._attend(z, frames), self.norm(x), offsets)

    def _attend(self, z: torch.Tensor, frames: int) -> torch.Tensor:
        bf, c, h, w = z.shape
        tokens = rearrange(z, "(b f) c h w -> (b h w) f c", f=frames)
        qk = tokens + sinusoid(torch.arange(frames, device=z.device), c)[None]
        out, _ = self.attn(qk, qk, tokens, need_weights=False)
        return rearrange(out, "(b h w) f c -> (b f) c h w", h=h, w=w)


@dataclass
class TinyVideoOutput(BaseOutput):
    sample: torch.Tensor


TEMPORAL_KINDS = ("conv1d", "conv3d", "conv3d-coarse", "dynamic", "dynamic-fine")


class TinyVideoUNet(ModelMixin, ConfigMixin):
    """Text-conditioned video U-Net on (B, 3, F, H, W) clips; predicts v (see the scheduler config)."""

    @register_to_config
    def __init__(self, channels: int = 32, mult: int = 3, text_dim: int = 64, cond_dim: int = 128, patch: int = 2,
                 temporal: str = "conv1d", frame_embedding: bool = False, space_time_attention: bool = False,
                 temporal_attention: bool = False, noise_frame_share: float = 0.0, joint_cond: bool = False,
                 motion_align: bool = False, max_speed: float = 4.0, spatial_attention: bool = False):
        super().__init__()
        if temporal not in TEMPORAL_KINDS:
            raise ValueError(f"temporal must be one of {', '.join(TEMPORAL_KINDS)}, got {temporal!r}.")
        c1, c2, pc = channels, channels * mult, 3 * patch * patch
        # conv3d-coarse: 3x3x3 temporal convs at the coarse (8x8) level only, k=3 ones at the fine level;
        # dynamic-fine: text-conditioned depthwise 3x3x3 at the fine (16x16) level only, k=3 at the coarse
        tm = {"conv3d-coarse": "conv1d", "dynamic-fine": "dynamic"}.get(temporal, temporal)
        tc = {"conv3d-coarse": "conv3d", "dynamic-fine": "conv1d"}.get(temporal, temporal)
        self.time_mlp = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.text_proj = nn.Linear(text_dim, cond_dim)
        self.conv_in = nn.Conv2d(pc, c1, 3, padding=1)
        self.frame_mlp = nn.Linear(cond_dim, cond_dim) if frame_embedding else None
        if self.frame_mlp is not None:
            nn.init.zeros_(self.frame_mlp.weight)
            nn.init.zeros_(self.frame_mlp.bias)
        # joint_cond: cond += MLP(cond) after the frame embedding is added, so FiLM can depend on
        # products of text and frame index (plain FiLM is linear in the sum time + text + frame)
        self.joint_mlp = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(),
                                       nn.Linear(cond_dim, cond_dim)) if joint_cond else None
        if self.joint_mlp is not None:
            nn.init.zeros_(self.joint_mlp[2].weight)
            nn.init.zeros_(self.joint_mlp[2].bias)
        # motion_align: the prompt sets one velocity per clip, v = max_speed tanh(MLP(pooled text)) pixels per
        # frame (zero at init), and every temporal conv / attention runs in the frame moving at v
        self.velocity = nn.Sequential(nn.Linear(text_dim, cond_dim), nn.SiLU(),
                                      nn.Linear(cond_dim, 2)) if motion_align else None
        if self.velocity is not None:
            nn.init.zeros_(self.velocity[2].weight)
            nn.init.zeros_(self.velocity[2].bias)
        self.down1 = nn.ModuleList([ResBlock(c1, c1, cond_dim, tm)])
        self.tattn1 = TemporalAttention(c1) if temporal_attention else None
        self.attn1 = CrossAttention(c1, text_dim)
        self.downsample = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.mid = nn.ModuleList([ResBlock(c2, c2, cond_dim, tc), ResBlock(c2, c2, cond_dim, tc)])
        self.st_attn = SpaceTimeAttention(c2) if space_time_attention else None
        # spatial_attention: self-attention over the 8x8 cells of each frame on its own (SpaceTimeAttention
        # with one frame per sequence), so every cell sees the whole frame: is there an object already?
        self.s_attn = SpaceTimeAttention(c2) if spatial_attention else None
        self.tattn2 = TemporalAttention(c2) if temporal_attention else None
        self.tattn3 = TemporalAttention(c1) if temporal_attention else None
        self.attn2 = CrossAttention(c2, text_dim)
        self.mid2 = ResBlock(c2, c2, cond_dim, tc)
        self.upsample = nn.Conv2d(c2, c1 * 4, 3, padding=1)
        self.up1 = nn.ModuleList([ResBlock(2 * c1, c1, cond_dim, tm)])
        self.attn3 = CrossAttention(c1, text_dim)
        self.norm_out = nn.GroupNorm(8, c1)
        self.conv_out = nn.Conv2d(c1, pc, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @staticmethod
    def _pooled(text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the real tokens' states: (B, L, D), (B, L) True where padded -> (B, D)."""
        keep = (~text_mask).float()[..., None]
        return (text * keep).sum(1) / keep.sum(1).clamp(min=1)

    def clip_velocity(self, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor | None:
        """The velocity of each clip's moving frame, (B, 2) as (vx, vy) pixels per frame
        (y down), from the text states (B, L, D) and padding mask (B, L) (True = padded);
        None without motion_align."""
        if self.velocity is None:
            return None
        return self.config.max_speed * torch.tanh(self.velocity(self._pooled(text, text_mask)))

    def _cond(self, timestep, text, text_mask, batch: int, frames: int) -> torch.Tensor:
        t = timestep.reshape(-1).expand(batch) if timestep.numel() == 1 else timestep
        pooled = self._pooled(text, text_mask)
        temb = self.time_mlp(timestep_embedding(t, self.config.cond_dim)) + self.text_proj(pooled)
        cond = temb.repeat_interleave(frames, dim=0)  # (B*F, cond_dim)
        if self.frame_mlp is not None:
            fpos = sinusoid(torch.arange(frames, device=cond.device), self.config.cond_dim)
            cond = cond + self.frame_mlp(fpos).repeat(batch, 1)
        if self.joint_mlp is not None:
            cond = cond + self.joint_mlp(cond)
        return cond

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor,
                encoder_attention_mask: torch.Tensor | None = None, return_dict: bool = True,
                velocity: torch.Tensor | None = None):
        """sample: (B, 3, F, H, W); encoder_attention_mask: (B, L), 1 = real token.

        velocity: (B, 2) moving-frame velocities to use instead of the head's reading of
        the prompt (motion_align only; the trainer passes the head's output detached, so
        that only its own loss trains the head).
        """
        b, _, f, h, w = sample.shape
        timestep = torch.as_tensor(timestep, device=sample.device)
        if encoder_attention_mask is None:
            encoder_attention_mask = torch.ones(encoder_hidden_states.shape[:2], device=sample.device)
        pad = encoder_attention_mask == 0
        text = encoder_hidden_states
        cond = self._cond(timestep, text, pad, b, f)
        if velocity is not None and self.velocity is None:
            raise ValueError("velocity= needs a motion_align U-Net; this one has no moving frame.")
        velocity = self.clip_velocity(text, pad) if velocity is None else velocity
        fine, coarse = ((None, None) if velocity is None else
                        (frame_offsets(velocity, f, self.config.patch), frame_offsets(velocity, f, 2 * self.config.patch)))
        x = F.pixel_unshuffle(rearrange(sample, "b c f h w -> (b f) c h w"), self.config.patch)
        x = self.conv_in(x)
        for blk in self.down1:
            x = blk(x, cond, f, fine)
        if self.tattn1 is not None:
            x = self.tattn1(x, f, fine)
        skip = self.attn1(x, text, pad, f)
        x = self.downsample(skip)
        for blk in self.mid:
            x = blk(x, cond, f, coarse)
        if self.st_attn is not None:
            x = self.st_attn(x, f)
        if self.s_attn is not None:
            x = self.s_attn(x, 1)
        if self.tattn2 is not None:
            x = self.tattn2(x, f, coarse)
        x = self.mid2(self.attn2(x, text, pad, f), cond, f, coarse)
        x = F.pixel_shuffle(self.upsample(x), 2)
        x = torch.cat([x, skip], dim=1)
        for blk in self.up1:
            x = blk(x, cond, f, fine)
        if self.tattn3 is not None:
            x = self.tattn3(x, f, fine)
        x = self.attn3(x, text, pad, f)
        x = F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(x))), self.config.patch)
        out = rearrange(x, "(b f) c h w -> b c f h w", b=b)
        return TinyVideoOutput(sample=out) if return_dict else (out,)
