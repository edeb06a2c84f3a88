"""The bundled denoiser: a small text-conditioned video U-Net, and its tokenizer.

`TinyVideoUNet` maps a noisy clip `(B, 3, F, H, W)` (pixels in [-1, 1]), a timestep and
text states `(B, L, D)` to the predicted velocity v = sqrt(abar) eps - sqrt(1 - abar) x0
(same shape). Frames are space-to-depth packed 2x2 (a 32x32 clip is processed at 16x16
and 8x8). Each block is a 2-D spatial conv pair with FiLM from time + pooled text, then a
k=3 temporal conv along frames, and cross-attention to the text tokens. Self-attention
runs along frames at every cell of both levels, and over the 8x8 cells of each frame at
the coarse level (every cell sees its whole frame: is an object already drawn?).

Objects and motion: the text comes in `slots` slots (`encode_slots`): the whole prompt
(slots = 1, the first training stage), or one object phrase each (slots = 2, the shipped model). Each slot's
pooled states give a velocity (`slot_velocities`), and every temporal conv and temporal
attention runs in each slot's moving frame of reference, where an object that moves as
its phrase says stands still; with several slots the results are blended per cell by
which object the cell belongs to (`SlotAssignment`, `in_moving_frames`), and an
object-count embedding joins the conditioning (each phrase is encoded alone, so no text
state knows how many objects the prompt names).
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

from .world import MOTIONS, VOCABULARY, ObjectSpec, normalise, prompt_of

SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
MAX_TOKENS = 16


def phrases_of(prompt: str) -> list[str]:
    """The object phrases of a prompt ("a red circle moving left and a blue square ..." -> two);
    the empty prompt is one empty phrase (the unconditional input)."""
    parts = [p.strip() for p in normalise(prompt).split(" and ")]
    return [p for p in parts if p] or [""]


def encode_slots(text_encoder, tokenizer, prompts: list[str], slots: int = 1,
                 device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Text states (B, MAX_TOKENS, D) and mask (B, MAX_TOKENS), 1 = real token, in `slots` slots
    of MAX_TOKENS // slots tokens.

    slots == 1: the whole prompt in one slot. slots > 1: each object phrase is encoded on
    its own into slot k, so a phrase's states know nothing of the other objects; absent
    slots are all padding. A one-object prompt gives the same states either way (the text
    encoder is causal and padding is masked). Raises ValueError for more objects than slots
    (slots > 1).
    """
    per_slot = MAX_TOKENS // slots
    rows = []
    for prompt in prompts:
        phrases = [normalise(prompt)] if slots == 1 else phrases_of(prompt)
        if len(phrases) > slots:
            raise ValueError(f"This model draws at most {slots} objects; {prompt!r} has {len(phrases)}.")
        rows.append(phrases + [None] * (slots - len(phrases)))
    flat = [p or "" for row in rows for p in row]
    tok = tokenizer(flat, padding="max_length", truncation=True, max_length=per_slot, return_tensors="pt")
    present = torch.tensor([p is not None for row in rows for p in row])[:, None]
    ids, mask = tok.input_ids.to(device), (tok.attention_mask * present).to(device)
    states = text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    b = len(prompts)
    return states.reshape(b, slots * per_slot, -1), mask.reshape(b, slots * per_slot)


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
    """A tiny CLIP text transformer from a config (random init, kept frozen in training)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=len(SPECIAL_TOKENS) + len(VOCABULARY), hidden_size=hidden,
        intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return CLIPTextModel(cfg)


@torch.no_grad()
def motion_word_velocities(unet, text_encoder, tokenizer) -> dict[str, list[float]]:
    """The moving frame's velocity (vx, vy) px/frame that `unet` reads for "a red circle ..."
    with each motion word, rounded to 0.01."""
    prompts = [prompt_of([ObjectSpec("red", "circle", m)]) for m in MOTIONS]
    states, mask = encode_slots(text_encoder, tokenizer, prompts, unet.config.slots)
    v = unet.slot_velocities(states, mask == 0)[:, 0]
    return {m: [round(float(a), 2) for a in row] for m, row in zip(MOTIONS, v)}


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


def in_moving_frames(fn, x: torch.Tensor, offsets: list[torch.Tensor], weights: torch.Tensor | None) -> torch.Tensor:
    """A temporal operator in each object's moving frame, blended by where each object is.

        out = sum_k m_k * shift(fn(shift(x, o_k)), -o_k)

    x: (B*F, C, H, W); offsets: one (B*F, 2) per slot; weights m: (B*F, K, H, W), summing
    to 1 over the slots (a slot with zero weight everywhere is skipped). weights None:
    only the first slot holds an object, and this is `in_moving_frame` in its frame.
    """
    if weights is None:
        return in_moving_frame(fn, x, offsets[0])
    out = None
    for k, o in enumerate(offsets):
        m = weights[:, k:k + 1]
        if not m.any():
            continue
        part = m * in_moving_frame(fn, x, o)
        out = part if out is None else out + part
    return out


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


class SlotAssignment(nn.Module):
    """Which object each cell belongs to: softmax over the present slots of

        logit_k(cell) = <W_q h(cell), W_e e_k> / sqrt(d),   e_k = mean of slot k's text states

    (B*F, C, H, W) features and (B, K, D) slot embeddings -> (B*F, K, H, W). Zero-initialised
    query: equal weights over the present slots; a single present slot gets weight 1.
    """

    def __init__(self, channels: int, text_dim: int, dim: int = 32):
        super().__init__()
        self.query = nn.Conv2d(channels, dim, 1)
        self.key = nn.Linear(text_dim, dim)
        nn.init.zeros_(self.query.weight)
        nn.init.zeros_(self.query.bias)

    def forward(self, h: torch.Tensor, slot_states: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """present: (B, K) bool; absent slots get weight 0."""
        frames = h.shape[0] // slot_states.shape[0]
        keys = self.key(slot_states).repeat_interleave(frames, dim=0)  # (B*F, K, d)
        logits = torch.einsum("ndhw,nkd->nkhw", self.query(h), keys) / math.sqrt(keys.shape[-1])
        absent = ~present.repeat_interleave(frames, dim=0)[:, :, None, None]
        return torch.softmax(logits.masked_fill(absent, float("-inf")), dim=1)


@dataclass
class SlotFrames:
    """The objects' moving frames for one forward pass at one resolution level.

    offsets: one (B*F, 2) per slot (cells, `frame_offsets`); states: (B, K, D) slot
    embeddings; present: (B, K) bool.
    """

    offsets: list[torch.Tensor]
    states: torch.Tensor
    present: torch.Tensor

    def weights(self, assign: SlotAssignment | None, h: torch.Tensor) -> torch.Tensor | None:
        """Per-cell slot weights (B*F, K, H, W), or None when only the first slot holds an object."""
        if assign is None or not self.present[:, 1:].any():  # one object everywhere: no blending
            return None
        return assign(h, self.states, self.present)


class ResBlock(nn.Module):
    """Spatial conv pair with FiLM conditioning, then a residual temporal conv.

        h = conv2(silu(norm2(conv1(silu(norm1(x)))) * (1 + s) + b)) + skip(x),  (s, b) = film(cond)
        out = h + in_moving_frame(conv1d_f(silu(tnorm(h))))

    The temporal conv has k=3 along frames at each cell (no spatial extent); it starts at
    zero, so a fresh block is a per-frame image block.
    """

    def __init__(self, cin: int, cout: int, cond_dim: int, text_dim: int, slots: int = 1):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.tnorm = nn.GroupNorm(8, cout)
        self.assign = SlotAssignment(cout, text_dim) if slots > 1 else None
        self.tconv = nn.Conv1d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.tconv.weight)
        nn.init.zeros_(self.tconv.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, frames: int, slots: "SlotFrames") -> torch.Tensor:
        """x: (B*F, C, H, W); cond: (B*F, cond_dim); slots: the objects' moving frames."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h)) + self.skip(x)
        t = self.tnorm(h)
        weights = slots.weights(self.assign, t)
        return h + in_moving_frames(lambda z: self._temporal(z, frames), t, slots.offsets, weights)

    def _temporal(self, t: torch.Tensor, frames: int) -> torch.Tensor:
        """The temporal conv on normalised features (B*F, C, H, W) -> same shape."""
        h, w = t.shape[-2:]
        t = rearrange(t, "(b f) c h w -> (b h w) c f", f=frames)
        return rearrange(self.tconv(F.silu(t)), "(b h w) c f -> (b f) c h w", h=h, w=w)


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


class FrameAttention(nn.Module):
    """Self-attention over the cells of each frame on its own, with sinusoidal positions.

    (B*F, C, H, W) -> same shape; one sequence of H*W tokens per frame. Every cell sees the
    whole frame, which is what lets the model notice an object it has already drawn.
    Positions are the concatenated sinusoids of (frame 0, row, column), zero-padded to C.
    """

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        nn.init.zeros_(self.attn.out_proj.weight)

    @staticmethod
    def positions(h: int, w: int, c: int, device) -> torch.Tensor:
        """(h*w, c): sinusoids of (0, row, column), each of width d = (c // 3) // 2 * 2."""
        d = (c // 3) // 2 * 2
        pf, py, px = (sinusoid(torch.arange(n, device=device), d) for n in (1, h, w))
        grid = torch.cat([pf[:, None, None].expand(1, h, w, d), py[None, :, None].expand(1, h, w, d),
                          px[None, None, :].expand(1, h, w, d)], dim=-1)
        return F.pad(grid.reshape(h * w, 3 * d), (0, c - 3 * d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B*F, C, H, W) -> same shape."""
        _, c, h, w = x.shape
        tokens = rearrange(self.norm(x), "n c h w -> n (h w) c")
        qk = tokens + self.positions(h, w, c, x.device)[None]
        out, _ = self.attn(qk, qk, tokens, need_weights=False)
        return x + rearrange(out, "n (h w) c -> n c h w", h=h, w=w)


class TemporalAttention(nn.Module):
    """Self-attention along frames at every spatial cell, with sinusoidal frame positions.

    (B*F, C, H, W) -> same shape; sequences of length F, one per (b, y, x). Gives every
    frame the whole clip as context at the cost of F x F scores per cell.
    """

    def __init__(self, channels: int, text_dim: int, slots: int = 1, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.assign = SlotAssignment(channels, text_dim) if slots > 1 else None
        nn.init.zeros_(self.attn.out_proj.weight)

    def forward(self, x: torch.Tensor, frames: int, slots: "SlotFrames") -> torch.Tensor:
        """x: (B*F, C, H, W) -> same shape, attending along frames in each object's moving frame."""
        z = self.norm(x)
        return x + in_moving_frames(lambda y: self._attend(y, frames), z, slots.offsets, slots.weights(self.assign, z))

    def _attend(self, z: torch.Tensor, frames: int) -> torch.Tensor:
        bf, c, h, w = z.shape
        tokens = rearrange(z, "(b f) c h w -> (b h w) f c", f=frames)
        qk = tokens + sinusoid(torch.arange(frames, device=z.device), c)[None]
        out, _ = self.attn(qk, qk, tokens, need_weights=False)
        return rearrange(out, "(b h w) f c -> (b f) c h w", h=h, w=w)


@dataclass
class TinyVideoOutput(BaseOutput):
    sample: torch.Tensor


class TinyVideoUNet(ModelMixin, ConfigMixin):
    """Text-conditioned video U-Net on (B, 3, F, H, W) clips; predicts v (see the scheduler config).

    Layout (c1 = channels, c2 = channels * mult), with the clip's moving frame applied to
    every temporal conv and temporal attention:

        pack 2x2 -> conv_in -> [res, temporal_attn1, cross_attn1] (16x16, c1, skip)
        -> downsample -> [res, res, frame_attn, temporal_attn2, cross_attn2, res] (8x8, c2)
        -> upsample, concat skip -> [res, temporal_attn3, cross_attn3] (16x16) -> conv_out -> unpack

    `skippable_blocks` names its residual self-attention layers in depth order, the stack
    that perturbation guidance (STG, PAG) indexes: skipping one leaves its input unchanged.
    """

    skippable_blocks = ("temporal_attn1", "frame_attn", "temporal_attn2", "temporal_attn3")

    @register_to_config
    def __init__(self, channels: int = 32, mult: int = 3, text_dim: int = 64, cond_dim: int = 128, patch: int = 2,
                 max_speed: float = 4.0, slots: int = 1):
        super().__init__()
        c1, c2, pc = channels, channels * mult, 3 * patch * patch
        self.time_mlp = nn.Sequential(nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.text_proj = nn.Linear(text_dim, cond_dim)
        self.conv_in = nn.Conv2d(pc, c1, 3, padding=1)
        # v = max_speed tanh(MLP(pooled text)) pixels per frame, zero at init
        self.velocity_head = nn.Sequential(nn.Linear(text_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, 2))
        nn.init.zeros_(self.velocity_head[2].weight)
        nn.init.zeros_(self.velocity_head[2].bias)
        # slots > 1: how many objects the prompt names (1..slots), added to the conditioning; each
        # phrase is encoded alone, so no text state knows the count. Zero at init.
        self.count_embed = nn.Embedding(slots, cond_dim) if slots > 1 else None
        if self.count_embed is not None:
            nn.init.zeros_(self.count_embed.weight)
        self.down1 = nn.ModuleList([ResBlock(c1, c1, cond_dim, text_dim, slots)])
        self.temporal_attn1 = TemporalAttention(c1, text_dim, slots)
        self.attn1 = CrossAttention(c1, text_dim)
        self.downsample = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.mid = nn.ModuleList([ResBlock(c2, c2, cond_dim, text_dim, slots),
                                  ResBlock(c2, c2, cond_dim, text_dim, slots)])
        self.frame_attn = FrameAttention(c2)
        self.temporal_attn2 = TemporalAttention(c2, text_dim, slots)
        self.temporal_attn3 = TemporalAttention(c1, text_dim, slots)
        self.attn2 = CrossAttention(c2, text_dim)
        self.mid2 = ResBlock(c2, c2, cond_dim, text_dim, slots)
        self.upsample = nn.Conv2d(c2, c1 * 4, 3, padding=1)
        self.up1 = nn.ModuleList([ResBlock(2 * c1, c1, cond_dim, text_dim, slots)])
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

    def _slots(self, text: torch.Tensor, text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slot embeddings (B, K, D) (mean of each slot's real tokens) and presence (B, K)."""
        b, length, d = text.shape
        k = self.config.slots
        states = text.reshape(b * k, length // k, d)
        pad = text_mask.reshape(b * k, length // k)
        return self._pooled(states, pad).reshape(b, k, d), (~pad).any(-1).reshape(b, k)

    def slot_velocities(self, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """The velocity of each object's moving frame, (B, K, 2) as (vx, vy) pixels per frame
        (y down), from the text states (B, L, D) in K slots and padding mask (True = padded)."""
        slot_states, _ = self._slots(text, text_mask)
        return self.config.max_speed * torch.tanh(self.velocity_head(slot_states))

    def _cond(self, timestep, text, text_mask, present, batch: int, frames: int) -> torch.Tensor:
        """Time + pooled-text (+ object count, slots > 1) conditioning, repeated per frame:
        (B*F, cond_dim); present: (B, K) bool, the slots that hold a phrase."""
        t = timestep.reshape(-1).expand(batch) if timestep.numel() == 1 else timestep
        temb = (self.time_mlp(timestep_embedding(t, self.config.cond_dim))
                + self.text_proj(self._pooled(text, text_mask)))
        if self.count_embed is not None:
            temb = temb + self.count_embed((present.sum(-1) - 1).clamp(min=0))
        return temb.repeat_interleave(frames, dim=0)

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor,
                encoder_attention_mask: torch.Tensor | None = None, return_dict: bool = True):
        """sample: (B, 3, F, H, W); encoder_attention_mask: (B, L), 1 = real token."""
        b, _, f, h, w = sample.shape
        timestep = torch.as_tensor(timestep, device=sample.device)
        if encoder_attention_mask is None:
            encoder_attention_mask = torch.ones(encoder_hidden_states.shape[:2], device=sample.device)
        pad = encoder_attention_mask == 0
        text = encoder_hidden_states
        slot_states, present = self._slots(text, pad)
        cond = self._cond(timestep, text, pad, present, b, f)
        velocity = self.config.max_speed * torch.tanh(self.velocity_head(slot_states))  # (B, K, 2)
        fine, coarse = (SlotFrames([frame_offsets(velocity[:, k], f, stride) for k in range(velocity.shape[1])],
                                   slot_states, present) for stride in (self.config.patch, 2 * self.config.patch))
        x = F.pixel_unshuffle(rearrange(sample, "b c f h w -> (b f) c h w"), self.config.patch)
        x = self.conv_in(x)
        for blk in self.down1:
            x = blk(x, cond, f, fine)
        x = self.temporal_attn1(x, f, fine)
        skip = self.attn1(x, text, pad, f)
        x = self.downsample(skip)
        for blk in self.mid:
            x = blk(x, cond, f, coarse)
        x = self.frame_attn(x)
        x = self.temporal_attn2(x, f, coarse)
        x = self.mid2(self.attn2(x, text, pad, f), cond, f, coarse)
        x = F.pixel_shuffle(self.upsample(x), 2)
        x = torch.cat([x, skip], dim=1)
        for blk in self.up1:
            x = blk(x, cond, f, fine)
        x = self.temporal_attn3(x, f, fine)
        x = self.attn3(x, text, pad, f)
        x = F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(x))), self.config.patch)
        out = rearrange(x, "(b f) c h w -> b c f h w", b=b)
        return TinyVideoOutput(sample=out) if return_dict else (out,)
