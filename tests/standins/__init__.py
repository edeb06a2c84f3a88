"""Stand-ins for every registry model: the real repo layout with tiny random weights.

`write(name, folder)` writes a diffusers folder that loads exactly as the real
repository does: its `model_index.json` and `scheduler/scheduler_config.json` are the
real repo's, kept verbatim in `repos/<name>/`; every other component is the real
class (pipeline, transformer / U-Net, VAE, text encoder, tokenizer) with its sizes
shrunk so that one generation takes seconds on a CPU. Structure that the pipelines
depend on is kept: VAE compression ratios (CogVideoX, Wan, HunyuanVideo 8x spatial /
4x temporal; LTX-Video 32x / 8x), CogVideoX-5B's rotary embeddings and 1.5's temporal
patching, SD 1.5's safety checker, SDXL's and SD3's extra text encoders.

Tokenizers are built offline: T5 / UMT5 from a small Unigram vocabulary, CLIP and
Llama from a character-level BPE vocabulary. Every module is in `eval()` before it is
saved.
"""

from __future__ import annotations

import shutil
import string
from pathlib import Path

import torch

REPOS = Path(__file__).resolve().parent / "repos"
WORDS = "a red fox runs dance monkey cat on the beach blurry bad low quality".split()
NAMES = sorted(p.name for p in REPOS.iterdir() if p.is_dir())


def t5_tokenizer():
    """T5 tokenizer from a Unigram vocabulary: the prompt words, then letters as a fallback."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -3.0)]
    vocab += [("\u2581" + w, -1.0 - i / 100) for i, w in enumerate(WORDS)] + [(c, -5.0) for c in string.ascii_lowercase]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def clip_tokenizer():
    """CLIP tokenizer from a character-level BPE vocabulary (no merges)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in string.ascii_lowercase:
            vocab[c + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def gemma_tokenizer():
    """Gemma tokenizer from a character-level BPE vocabulary (no merges)."""
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4, "\u2581": 5}
    for c in string.ascii_letters + string.digits + string.punctuation:
        vocab.setdefault(c, len(vocab))
    return GemmaTokenizer(vocab=vocab, merges=[])


def llama_tokenizer():
    from transformers import LlamaTokenizer

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "\u2581": 4}
    for c in string.ascii_lowercase:
        vocab[c] = len(vocab)
    return LlamaTokenizer(vocab=vocab, merges=[], model_max_length=1024, pad_token="<pad>")


def qwen_tokenizer():
    """Qwen2 tokenizer: byte-level BPE over the 256 byte symbols (no merges), Qwen's chat markers
    and a ChatML chat template, as HunyuanVideo 1.5's prompt template needs."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[special] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], pad_token="<|endoftext|>", padding_side="right")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = (  # content as a string, or as Qwen2-VL's list of {"type": "text", "text": ...}
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
        "{% else %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    return tokenizer


def llama3_tokenizer(template: str):
    """A word-level fast tokenizer with Llama 3's special tokens and LLaVA's `<image>`: the template's
    words and punctuation, the stand-ins' words, one token per newline run ("\n\n" is one token, as
    in Llama 3), a leading `<|begin_of_text|>`. HunyuanVideo I2V's prompt template comes out 102
    tokens long before the prompt (Llama 3's: 103) with `<image>` at position 5, where the pipeline
    splices in the image's tokens."""
    import re

    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaTokenizerFast

    special = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
               "<image>", "<pad>", "<unk>"]
    pattern = r"\n+|\w+|[^\w\s]"
    pieces = set(re.findall(pattern, re.sub("|".join(map(re.escape, special)), " ", template))) | set(WORDS)
    model = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(special + sorted(pieces))}, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(" +"), behavior="removed"),
                                                   pre_tokenizers.Split(Regex(pattern), behavior="isolated")])
    tokenizer = LlamaTokenizerFast(tokenizer_object=model, bos_token=special[0], eos_token=special[1],
                                   pad_token="<pad>",
                                   unk_token="<unk>", add_bos_token=True, add_eos_token=False)
    tokenizer.add_special_tokens({"additional_special_tokens": special[2:6]})
    return tokenizer


def t5_encoder(umt5: bool = False, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    torch.manual_seed(0)
    return model_cls(config_cls(vocab_size=64, d_model=d_model, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
                                relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1))


def clip_encoder(hidden: int = 32, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    config = CLIPTextConfig(vocab_size=64, hidden_size=hidden, intermediate_size=37, num_hidden_layers=1,
                            num_attention_heads=4, max_position_embeddings=77, pad_token_id=1, bos_token_id=0,
                            eos_token_id=1, projection_dim=32)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def sd_vae(**extra):
    """AutoencoderKL with SD's 8x spatial compression (four blocks, three downsamples)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=(8, 8, 8, 8), in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                         latent_channels=extra.pop("latent_channels", 4), sample_size=64, norm_num_groups=2,
                         layers_per_block=1, **extra)


def cogvideox(rope: bool, patch_size_t: int | None = None, image: bool = False):
    """CogVideoX; `image`: the I2V model, whose transformer takes the first frame's latents as as many
    channels again (in_channels 32 -> out 16 in the real one) and learns its position embeddings."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel

    torch.manual_seed(0)
    extra = dict(use_learned_positional_embeddings=True) if image else {}
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=8 if image else 4, out_channels=4, time_embed_dim=8,
        text_embed_dim=32, num_layers=1, sample_width=4, sample_height=4, sample_frames=9, patch_size=2,
        patch_size_t=patch_size_t, temporal_compression_ratio=4, max_text_seq_length=226,
        use_rotary_positional_embeddings=rope, **extra)
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    return dict(transformer=transformer, vae=vae, text_encoder=t5_encoder(), tokenizer=t5_tokenizer())


# Wan's transformer at tiny widths: the real patch size (1, 2, 2), QK norm and cross-attention norm
WAN_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
                       out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                       qk_norm="rms_norm_across_heads", rope_max_seq_len=32)


def wan():
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(**WAN_TRANSFORMER)
    return dict(transformer=transformer, vae=vae, text_encoder=t5_encoder(umt5=True), tokenizer=t5_tokenizer())


def wan_vace():
    """Wan 2.1 VACE: the T2V stand-in's VAE and text encoder with a WanVACETransformer3DModel (96 VACE
    input channels: the control video's latents, inactive and reactive, and the 64-channel mask)."""
    from diffusers import WanVACETransformer3DModel

    parts = wan()
    torch.manual_seed(0)
    parts["transformer"] = WanVACETransformer3DModel(**WAN_TRANSFORMER, vace_layers=[0], vace_in_channels=96)
    return parts


def clip_vision(hidden: int = 16, image_size: int = 32, projection: bool = False):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    model = (CLIPVisionModelWithProjection if projection else CLIPVisionModel)(CLIPVisionConfig(
        hidden_size=hidden, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=image_size,
        patch_size=8))
    processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                   crop_size={"height": image_size, "width": image_size})
    return model, processor


def wan_i2v():
    """Wan 2.1 I2V: the T2V stand-in's VAE and text encoder; a transformer taking 36 channels (16 noise
    + 4 mask + 16 first-frame latents, as the 14B's `in_channels`) and CLIP image tokens through its
    added key / value projections (`image_dim`, `added_kv_proj_dim`)."""
    from diffusers import WanTransformer3DModel

    parts = wan()
    encoder, processor = clip_vision()
    torch.manual_seed(0)
    parts["transformer"] = WanTransformer3DModel(**{**WAN_TRANSFORMER, "in_channels": 36}, image_dim=16,
                                                 added_kv_proj_dim=24)
    return dict(parts, image_encoder=encoder, image_processor=processor)


def mochi():
    """Mochi 1: a 12-channel latent at 8x spatial / 6x temporal compression (the VAE's expansions,
    kept; widths shrunk), a T5 text encoder, the asymmetric MochiTransformer3DModel."""
    from diffusers import AutoencoderKLMochi, MochiTransformer3DModel

    torch.manual_seed(0)
    vae = AutoencoderKLMochi(latent_channels=12, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
                             decoder_block_out_channels=(32, 32, 32, 32), layers_per_block=(1, 1, 1, 1, 1))
    torch.manual_seed(0)
    transformer = MochiTransformer3DModel(patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2,
                                          pooled_projection_dim=16, in_channels=12, text_embed_dim=32,
                                          time_embed_dim=4, max_sequence_length=16)
    return dict(transformer=transformer, vae=vae, text_encoder=t5_encoder(), tokenizer=t5_tokenizer())


def wan22_ti2v():
    """Wan 2.2 TI2V-5B: the Wan 2.2 VAE (48 latent channels, a 2x2 patchify before 8x: 16x spatial,
    4x temporal, residual blocks) and a 48-channel transformer; per-token timesteps
    (`expand_timesteps` in model_index.json)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    parts = wan()
    torch.manual_seed(0)
    parts["vae"] = AutoencoderKLWan(base_dim=8, decoder_base_dim=8, z_dim=48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                    temperal_downsample=[False, True, True], is_residual=True, in_channels=12,
                                    out_channels=12, patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
                                    latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
    torch.manual_seed(0)
    parts["transformer"] = WanTransformer3DModel(**{**WAN_TRANSFORMER, "in_channels": 48, "out_channels": 48})
    return parts


def wan22_a14b():
    """Wan 2.2 T2V-A14B: two experts of the same architecture, `transformer` (high noise) and
    `transformer_2` (low noise; its own weights), switched at boundary_ratio (model_index.json)."""
    from diffusers import WanTransformer3DModel

    parts = wan()
    torch.manual_seed(1)
    parts["transformer_2"] = WanTransformer3DModel(**parts["transformer"].config)
    return parts


def wan22_i2v_a14b():
    """Wan 2.2 I2V-A14B: two experts (`transformer` high noise, `transformer_2` low noise, their own
    weights) taking 36 channels (16 noise + 4 mask + 16 first-frame latents) with no CLIP image
    tokens (the repo has no image encoder), switched at boundary_ratio 0.9 (model_index.json)."""
    from diffusers import WanTransformer3DModel

    parts = wan()
    torch.manual_seed(0)
    parts["transformer"] = WanTransformer3DModel(**{**WAN_TRANSFORMER, "in_channels": 36})
    torch.manual_seed(1)
    parts["transformer_2"] = WanTransformer3DModel(**{**WAN_TRANSFORMER, "in_channels": 36})
    return parts


def skyreels_v2():
    """SkyReels-V2 T2V: Wan's VAE and UMT5 text encoder with SkyReels' own Wan-style transformer."""
    from diffusers import SkyReelsV2Transformer3DModel

    parts = wan()
    torch.manual_seed(0)
    parts["transformer"] = SkyReelsV2Transformer3DModel(**WAN_TRANSFORMER)
    return parts


def skyreels_v2_i2v():
    """SkyReels-V2 I2V: as the T2V stand-in, with Wan 2.1 I2V's conditioning: 36 input channels (16 noise
    + 4 mask + 16 first-frame latents) and CLIP image tokens (`image_dim`, `added_kv_proj_dim`) from a
    CLIPVisionModelWithProjection's penultimate hidden states."""
    from diffusers import SkyReelsV2Transformer3DModel

    parts = wan()
    encoder, processor = clip_vision(projection=True)
    torch.manual_seed(0)
    parts["transformer"] = SkyReelsV2Transformer3DModel(**{**WAN_TRANSFORMER, "in_channels": 36}, image_dim=16,
                                                        added_kv_proj_dim=24)
    return dict(parts, image_encoder=encoder, image_processor=processor)


def ltx():
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=32)
    torch.manual_seed(0)
    # the real VAE's layout (patch 4, three spatio-temporal downsamples: 32x spatial, 8x temporal), tiny widths
    vae = AutoencoderKLLTXVideo(
        latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False), decoder_spatio_temporal_scaling=(True, True, True, False),
        patch_size=4, patch_size_t=1, encoder_causal=True, decoder_causal=False)
    return dict(transformer=transformer, vae=vae, text_encoder=t5_encoder(), tokenizer=t5_tokenizer())


def latte():
    """Latte-1: a 2-D-patch video transformer (patch 2, AdaLN-single, learned variance: 4 -> 8
    channels) over SD's VAE latents, T5 captions."""
    from diffusers import LatteTransformer3DModel

    torch.manual_seed(0)
    transformer = LatteTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=1,
        cross_attention_dim=16, sample_size=8, patch_size=2, norm_type="ada_norm_single", num_embeds_ada_norm=1000,
        caption_channels=32, video_length=4)
    return dict(transformer=transformer, vae=sd_vae(), text_encoder=t5_encoder(), tokenizer=t5_tokenizer())


def allegro():
    """Allegro: a 3-D transformer (patch 2, 3-D RoPE over the head dimension) over the Allegro VAE's
    latents (8x spatial, 4x temporal, 4 channels), T5 captions."""
    from diffusers import AllegroTransformer3DModel, AutoencoderKLAllegro

    torch.manual_seed(0)
    transformer = AllegroTransformer3DModel(num_attention_heads=2, attention_head_dim=12, num_layers=1,
                                            cross_attention_dim=24, caption_channels=32, sample_height=8,
                                            sample_width=8, sample_frames=2)
    torch.manual_seed(0)
    vae = AutoencoderKLAllegro(block_out_channels=(8, 8, 8, 8), norm_num_groups=4, layers_per_block=1)
    return dict(transformer=transformer, vae=vae, text_encoder=t5_encoder(), tokenizer=t5_tokenizer())


def sana_video():
    """SANA-Video 2B 480p: a linear-attention video transformer over Wan 2.1 VAE latents (16 channels,
    8x / 4x), Gemma 2 captions; `sample_size` 30 keeps the pipeline's 480p resolution bins."""
    from diffusers import SanaVideoTransformer3DModel
    from transformers import Gemma2Config, Gemma2Model

    tokenizer = gemma_tokenizer()
    torch.manual_seed(0)
    text = Gemma2Model(Gemma2Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                    num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, head_dim=8))
    torch.manual_seed(0)
    transformer = SanaVideoTransformer3DModel(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=16,
        sample_size=30)
    return dict(transformer=transformer, vae=wan()["vae"], text_encoder=text, tokenizer=tokenizer)


def easyanimate():
    """EasyAnimate V5.1: an MMDiT video transformer (patch 2, 3-D RoPE) over the MagViT VAE's latents
    (16 channels, 8x spatial / 4x temporal), Qwen2-VL captions (the pipeline reads its second-to-
    last hidden state)."""
    from diffusers import AutoencoderKLMagvit, EasyAnimateTransformer3DModel
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    text = Qwen2VLForConditionalGeneration(Qwen2VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1,
                         rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]}),
        vision_config=dict(depth=1, embed_dim=16, hidden_size=16, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2)))
    torch.manual_seed(0)
    transformer = EasyAnimateTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=16, out_channels=16, patch_size=2, sample_width=8,
        sample_height=8, num_layers=1, mmdit_layers=1, time_embed_dim=16, text_embed_dim=16)
    torch.manual_seed(0)
    vae = AutoencoderKLMagvit(latent_channels=16, block_out_channels=[8, 8, 8, 8], layers_per_block=1,
                              norm_num_groups=4)
    return dict(transformer=transformer, vae=vae, text_encoder=text, tokenizer=tokenizer)


def ltx2():
    """LTX-2: one transformer for video (4 latent channels here, packed tokens) and audio latents,
    Gemma 3 hidden states of every layer through the text connectors, the LTX-2 video and audio
    VAEs and the vocoder. Widths and depth as in diffusers' own LTX-2 test fixtures (2 blocks: the
    pipeline's default STG block, 28, perturbs nothing here; tests that need STG name block 1)."""
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    tokenizer = gemma_tokenizer()
    torch.manual_seed(0)
    text = Gemma3ForConditionalGeneration(Gemma3Config(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8, sliding_window=16),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=28, patch_size=14), mm_tokens_per_image=4))
    width = text.config.text_config.hidden_size
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
        audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2, qk_norm="rms_norm_across_heads",
        caption_channels=width, rope_double_precision=False, rope_type="split")
    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=width, text_proj_in_factor=text.config.text_config.num_hidden_layers + 1,
        video_connector_num_attention_heads=4, video_connector_attention_head_dim=8, video_connector_num_layers=1,
        video_connector_num_learnable_registers=None, audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32, rope_theta=10000.0, rope_double_precision=False,
        causal_temporal_positioning=False, rope_type="split")
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,), decoder_block_out_channels=(8,),
        layers_per_block=(1,), decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,), decoder_inject_noise=(False, False), downsample_type=("spatial",),
        upsample_residual=(False,), upsample_factor=(1,), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False)
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None, in_channels=2,
        resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", dropout=0.0,
        mid_block_add_attention=False, sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8)
    torch.manual_seed(0)
    vocoder = LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins, hidden_channels=32, out_channels=2,
        upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=16000)
    return dict(transformer=transformer, vae=vae, audio_vae=audio_vae, text_encoder=text, tokenizer=tokenizer,
                connectors=connectors, vocoder=vocoder)


def text_to_video_sd():
    from diffusers import UNet3DConditionModel

    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=2)
    return dict(unet=unet, vae=sd_vae(), text_encoder=clip_encoder(), tokenizer=clip_tokenizer())


def sd_unet(cross_attention_dim: int = 32, **extra):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim, norm_num_groups=2, **extra)


def sd15():
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(0)
    checker = StableDiffusionSafetyChecker(CLIPConfig(
        text_config=dict(hidden_size=16, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2),
        vision_config=dict(hidden_size=16, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8), projection_dim=16))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return dict(unet=sd_unet(), vae=sd_vae(), text_encoder=clip_encoder(), tokenizer=clip_tokenizer(),
                safety_checker=checker, feature_extractor=processor)


def motion_adapter():
    """AnimateDiff's motion adapter for the SD 1.5 stand-in's U-Net (its own folder, as on the Hub)."""
    from diffusers import MotionAdapter

    torch.manual_seed(0)
    return MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=2,
                         motion_num_attention_heads=4)


def sdxl():
    unet = sd_unet(cross_attention_dim=64, attention_head_dim=(2, 4), use_linear_projection=True,
                   addition_embed_type="text_time", addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                   projection_class_embeddings_input_dim=80)
    return dict(unet=unet, vae=sd_vae(), text_encoder=clip_encoder(), tokenizer=clip_tokenizer(),
                text_encoder_2=clip_encoder(projection=True), tokenizer_2=clip_tokenizer())


def sd3():
    from diffusers import SD3Transformer2DModel

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=32, joint_attention_dim=32, pooled_projection_dim=64, out_channels=4)
    return dict(transformer=transformer, vae=sd_vae(shift_factor=0.0609), text_encoder=clip_encoder(projection=True),
                tokenizer=clip_tokenizer(), text_encoder_2=clip_encoder(projection=True), tokenizer_2=clip_tokenizer(),
                text_encoder_3=t5_encoder(), tokenizer_3=t5_tokenizer())


def hunyuan_vae(latent_channels: int):
    """HunyuanVideo's VAE (8x spatial, 4x temporal) at tiny widths; HunyuanVideo T2V / I2V and Kandinsky 5 use it."""
    from diffusers import AutoencoderKLHunyuanVideo

    torch.manual_seed(0)
    return AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
        temporal_compression_ratio=4, mid_block_add_attention=True)


def hunyuan_clip():
    """HunyuanVideo's second text encoder: CLIP text, 8 wide."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    return CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, hidden_size=8, intermediate_size=37,
                                        num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=64,
                                        projection_dim=32))


def hunyuan():
    from diffusers import HunyuanVideoTransformer3DModel
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4))
    vae = hunyuan_vae(4)
    torch.manual_seed(0)
    llama = LlamaModel(LlamaConfig(bos_token_id=1, eos_token_id=2, hidden_size=16, intermediate_size=37,
                                   num_attention_heads=4, num_hidden_layers=2, pad_token_id=0, vocab_size=64))
    clip = hunyuan_clip()
    return dict(transformer=transformer, vae=vae, text_encoder=llama, tokenizer=llama_tokenizer(),
                text_encoder_2=clip, tokenizer_2=clip_tokenizer())


def hunyuan_i2v():
    """HunyuanVideo I2V (`token_replace`): a 16-channel transformer (patch 2 x 2, 1 in time) whose
    first latent frame is the image's, kept by the loop; HunyuanVideo's VAE with 16 channels; a
    LLaVA text encoder (Llama text model, CLIP vision tower at 336 px / 14 px patches: the 576
    image tokens the prompt template makes room for) with a Llama 3-style tokenizer; CLIP text."""
    from diffusers import HunyuanVideoTransformer3DModel
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_image2video import DEFAULT_PROMPT_TEMPLATE
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration)

    tokenizer = llama3_tokenizer(DEFAULT_PROMPT_TEMPLATE["template"])
    torch.manual_seed(0)
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4), image_condition_type="token_replace")
    vae = hunyuan_vae(16)
    torch.manual_seed(0)
    llava = LlavaForConditionalGeneration(LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_attention_heads=2, num_hidden_layers=2,
                                       image_size=336, patch_size=14, projection_dim=8),
        text_config=LlamaConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=3,
                                vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), pad_token_id=tokenizer.pad_token_id))
    clip = hunyuan_clip()
    images = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    return dict(transformer=transformer, vae=vae, text_encoder=llava, tokenizer=tokenizer, text_encoder_2=clip,
                tokenizer_2=clip_tokenizer(), image_processor=images)


def hunyuan15(task: str = "t2v", target_size: int = 640):
    """HunyuanVideo 1.5 (480p T2V): a 65 -> 32 channel transformer (32 noise + 32 condition latents
    + a mask), the 1.5 VAE (32 latent channels, 16x spatial / 4x temporal), a Qwen2.5-VL text model
    (the pipeline reads its third-to-last hidden state), a ByT5 glyph encoder, and CFG in a
    `guider` component (ClassifierFreeGuidance at 6, the 480p recipe). `task="i2v"`: the I2V
    transformer and a SigLIP image encoder (384 px, 14 px patches: the 729 image tokens the
    pipeline expects); the I2V pipeline sizes its clip from `target_size` (640 at 480p, shrunk
    to 64 like every stand-in's size)."""
    from diffusers import AutoencoderKLHunyuanVideo15, HunyuanVideo15Transformer3DModel
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel
    from transformers.models.qwen2_5_vl import Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel

    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=65, out_channels=32, num_attention_heads=2, attention_head_dim=16, num_layers=1,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16, text_embed_2_dim=16,
        image_embed_dim=16, rope_axes_dim=(4, 6, 6), target_size=target_size, task_type=task)
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(latent_channels=32, block_out_channels=(8, 8, 16, 64, 64), layers_per_block=1,
                                      spatial_compression_ratio=16, temporal_compression_ratio=4)
    torch.manual_seed(0)
    text = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=2048, rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>")))
    torch.manual_seed(0)
    glyph = T5EncoderModel(T5Config(vocab_size=384, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2))
    parts = dict(transformer=transformer, vae=vae, text_encoder=text, tokenizer=tokenizer, text_encoder_2=glyph,
                 tokenizer_2=ByT5Tokenizer(), guider=ClassifierFreeGuidance(guidance_scale=6.0))
    if task == "i2v":
        from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

        torch.manual_seed(0)
        parts["image_encoder"] = SiglipVisionModel(SiglipVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=384,
            patch_size=14))
        parts["feature_extractor"] = SiglipImageProcessor(size={"height": 384, "width": 384})
    return parts


def kandinsky5():
    """Kandinsky 5.0 video (T2V Lite and I2V Pro: one structure): latents channels-last (B, F, H, W, C),
    the transformer's input [16 noise, 16 condition, 1 mask] channels (`visual_cond`) -> 16, patch
    1 x 2 x 2; Qwen2.5-VL (the full vision-language model, with its processor as tokenizer) and CLIP
    text encoders; HunyuanVideo's VAE with 16 latent channels (8x spatial, 4x temporal). diffusers
    zero-initialises the transformer's modulation layers, which makes a random model ignore its
    prompt; they are drawn N(0, 0.1^2) here, as a trained model's are not zero."""
    from diffusers import Kandinsky5Transformer3DModel
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor,
                              Qwen2VLProcessor, Qwen2VLVideoProcessor)

    tokenizer = qwen_tokenizer()
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor())
    torch.manual_seed(0)
    text = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1,
                         rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]}),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=16),
        vocab_size=len(tokenizer)))
    torch.manual_seed(0)
    transformer = Kandinsky5Transformer3DModel(
        in_visual_dim=16, out_visual_dim=16, in_text_dim=16, in_text_dim2=32, time_dim=32, patch_size=(1, 2, 2),
        model_dim=48, ff_dim=64, num_text_blocks=1, num_visual_blocks=1, axes_dims=(8, 8, 8), visual_cond=True)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in transformer.modules():
            if type(module).__name__ == "Kandinsky5Modulation":
                module.out_layer.weight.copy_(torch.randn(module.out_layer.weight.shape, generator=g) * 0.1)
    vae = hunyuan_vae(16)
    return dict(transformer=transformer, vae=vae, text_encoder=text, tokenizer=processor,
                text_encoder_2=clip_encoder(), tokenizer_2=clip_tokenizer())


COMPONENTS = {
    "cogvideox-2b": lambda: cogvideox(rope=False),
    "cogvideox-5b": lambda: cogvideox(rope=True),
    "cogvideox-5b-i2v": lambda: cogvideox(rope=True, image=True),
    "cogvideox-5b-v2v": lambda: cogvideox(rope=True),
    "cogvideox-fun-v1.1-5b-pose": lambda: cogvideox(rope=True, image=True),  # control latents beside the noise
    "cogvideox1.5-5b": lambda: cogvideox(rope=True, patch_size_t=2),
    "modelscope-1.7b": text_to_video_sd,
    "zeroscope-v2": text_to_video_sd,
    "wan2.1-t2v-1.3b": wan,
    "wan2.1-i2v-14b-480p": wan_i2v,
    "wan2.1-i2v-14b-720p": wan_i2v,
    "wan2.1-v2v-1.3b": wan,
    "wan2.1-vace-1.3b": wan_vace,
    "wan2.2-t2v-a14b": wan22_a14b,
    "wan2.2-ti2v-5b": wan22_ti2v,
    "wan2.2-i2v-a14b": wan22_i2v_a14b,
    "ltx-video": ltx,
    "ltx-video-i2v": ltx,
    "ltx-video-0.9.5": ltx,
    "skyreels-v2-t2v-14b-540p": skyreels_v2,
    "skyreels-v2-i2v-14b-540p": skyreels_v2_i2v,
    "skyreels-v2-df-14b-540p": skyreels_v2,
    "mochi-1-preview": mochi,
    "latte-1": latte,
    "allegro": allegro,
    "sana-video-2b-480p": sana_video,
    "easyanimate-v5.1-7b-zh": easyanimate,
    "kandinsky-5.0-t2v-lite-sft-5s": kandinsky5,
    "kandinsky-5.0-i2v-pro-sft-5s": kandinsky5,
    "ltx-2": ltx2,
    "ltx-2-i2v": ltx2,
    "hunyuanvideo": hunyuan,
    "hunyuanvideo-i2v": hunyuan_i2v,
    "hunyuanvideo-1.5-480p-t2v": hunyuan15,
    "hunyuanvideo-1.5-480p-i2v": lambda: hunyuan15("i2v", target_size=64),
    "sd15": sd15,
    "animatediff": sd15,
    "animatediff-v2v": sd15,
    "animatediff-controlnet": sd15,
    "sdxl": sdxl,
    "animatediff-sdxl": sdxl,
    "sd35-medium": sd3,
}

# per model: frames, height, width of a generation that takes seconds (frame rules respected)
SIZES = {
    "cogvideox-2b": (9, 32, 32), "cogvideox-5b": (9, 32, 32), "cogvideox-5b-i2v": (9, 32, 32),
    "cogvideox-5b-v2v": (9, 32, 32), "cogvideox-fun-v1.1-5b-pose": (9, 32, 32), "cogvideox1.5-5b": (17, 32, 32),
    "modelscope-1.7b": (4, 32, 32), "zeroscope-v2": (4, 32, 32), "wan2.1-t2v-1.3b": (9, 32, 32),
    "wan2.1-i2v-14b-480p": (9, 32, 32), "wan2.1-i2v-14b-720p": (9, 32, 32), "wan2.1-v2v-1.3b": (9, 32, 32),
    "wan2.1-vace-1.3b": (9, 32, 32), "wan2.2-t2v-a14b": (9, 32, 32), "wan2.2-i2v-a14b": (9, 32, 32),
    "wan2.2-ti2v-5b": (9, 64, 64),
    "ltx-video": (9, 64, 64), "ltx-video-i2v": (9, 64, 64), "ltx-video-0.9.5": (9, 64, 64),
    "mochi-1-preview": (7, 32, 32), "latte-1": (4, 64, 64), "allegro": (8, 64, 64),
    "sana-video-2b-480p": (9, 36, 64), "easyanimate-v5.1-7b-zh": (9, 64, 64),
    "kandinsky-5.0-t2v-lite-sft-5s": (9, 32, 32),
    # the I2V loop renormalises its first 4 latent frames by the next ones
    "kandinsky-5.0-i2v-pro-sft-5s": (21, 32, 32),
    "ltx-2": (9, 32, 32), "ltx-2-i2v": (9, 32, 32), "skyreels-v2-t2v-14b-540p": (9, 32, 32),
    "skyreels-v2-i2v-14b-540p": (9, 32, 32), "skyreels-v2-df-14b-540p": (9, 32, 32), "hunyuanvideo": (5, 32, 32),
    "hunyuanvideo-i2v": (9, 32, 32), "hunyuanvideo-1.5-480p-t2v": (5, 64, 64),
    "hunyuanvideo-1.5-480p-i2v": (5, 64, 64), "animatediff": (4, 32, 32), "animatediff-v2v": (4, 32, 32),
    "animatediff-controlnet": (4, 32, 32),
    "sd15": (1, 32, 32), "sdxl": (1, 32, 32), "animatediff-sdxl": (4, 32, 32), "sd35-medium": (1, 32, 32),
}


def inputs(name: str) -> dict:
    """What the stand-in's pipeline is conditioned on besides the prompt: a first frame (of the
    stand-in's size) for an image-to-video card, a moving gradient clip for a video-to-video one
    (whose frame count then comes from the clip), else nothing."""
    from samg_video.cards import card

    kind = card(name).get("input")
    if kind not in ("image", "video"):
        return {}
    from PIL import Image

    frames, height, width = SIZES[name]
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    clip = [Image.fromarray(torch.stack([(xx + t / frames) % 1, yy, (xx + yy) / 2], -1).mul(255).round()
                            .to(torch.uint8).numpy()) for t in range(frames if kind == "video" else 1)]
    if kind == "image":
        return {"image": clip[0]}
    import inspect

    import diffusers

    from samg_video.arguments import VIDEO_INPUTS

    takes = inspect.signature(getattr(diffusers, card(name)["pipeline"]).__call__).parameters
    return {next(n for n in VIDEO_INPUTS if n in takes): clip}  # a source, control video or conditioning frames


def save_component(obj, folder: Path) -> None:
    if isinstance(obj, torch.nn.Module):
        obj.eval()
    obj.save_pretrained(folder)


def write(name: str, folder: Path) -> Path:
    """Write the stand-in of registry model `name` into `folder` (a diffusers pipeline folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, obj in COMPONENTS[name]().items():
        save_component(obj, folder / key)
    shutil.copy(REPOS / name / "model_index.json", folder / "model_index.json")
    (folder / "scheduler").mkdir(exist_ok=True)
    shutil.copy(REPOS / name / "scheduler_config.json", folder / "scheduler" / "scheduler_config.json")
    return folder


def write_motion_adapter(folder: Path) -> Path:
    save_component(motion_adapter(), Path(folder))
    return Path(folder)


def write_controlnet(folder: Path) -> Path:
    """A ControlNet for the SD 1.5 stand-in's U-Net (its own folder, as on the Hub): the U-Net's
    encoder, and a conditioning embedding that brings the image down by the VAE's 8x."""
    from diffusers import ControlNetModel

    torch.manual_seed(0)
    save_component(ControlNetModel.from_unet(sd_unet(), conditioning_embedding_out_channels=(8, 8, 8, 8)), Path(folder))
    return Path(folder)


def write_clip(folder: Path) -> Path:
    """A tiny random-weight CLIP (CLIPModel + CLIPProcessor) saved like openai/clip-vit-base-patch32."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    text = dict(vocab_size=64, hidden_size=16, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = dict(hidden_size=16, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    folder = Path(folder)
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=clip_tokenizer()).save_pretrained(folder)
    return folder
