"""Tiny diffusers pipelines built from configs (no Hub): for tests and overhead benchmarks.

Each `build_*()` returns `(pipe, call_kwargs, layout)`; components are random, small and
in eval mode. The tokenizers are word-level and built locally with `tokenizers`.
"""

from __future__ import annotations

import torch

WORDS = ["a", "red", "fox", "runs", "dance", "monkey", "cat", "on", "the", "beach", "blurry", "bad"]


def word_tokenizer(max_length: int = 16):
    """A word-level fast tokenizer built locally (stands in for T5 / CLIP tokenizers)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   bos_token="<s>", model_max_length=max_length)


def tiny_t5(d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    return T5EncoderModel(T5Config(vocab_size=32, d_model=d_model, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
                                   relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1))


def tiny_clip(hidden: int = 32, projection: bool = False):
    """A one-layer CLIP text encoder from a config (with a text projection for SDXL / SD3)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    config = CLIPTextConfig(vocab_size=32, hidden_size=hidden, intermediate_size=37, num_hidden_layers=1,
                            num_attention_heads=4, max_position_embeddings=77, pad_token_id=0, bos_token_id=3,
                            eos_token_id=1, projection_dim=32)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def build_cogvideox():
    from diffusers import AutoencoderKLCogVideoX, CogVideoXPipeline, CogVideoXTransformer3DModel, DDIMScheduler

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16)
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    pipe = CogVideoXPipeline(tokenizer=word_tokenizer(), text_encoder=tiny_t5(), vae=vae, transformer=transformer,
                             scheduler=DDIMScheduler(prediction_type="v_prediction"))
    kwargs = dict(height=16, width=16, num_frames=9, max_sequence_length=16)
    return pipe, kwargs, "BFCHW"


def build_wan():
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32)
    pipe = WanPipeline(tokenizer=word_tokenizer(), text_encoder=tiny_t5(), vae=vae, transformer=transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    kwargs = dict(height=16, width=16, num_frames=9, max_sequence_length=16, negative_prompt="blurry")
    return pipe, kwargs, "BCFHW"


def build_ltx():
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline, LTXVideoTransformer3DModel

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=32)
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8, block_out_channels=(8, 8, 8, 8), spatio_temporal_scaling=(True, True, False, False),
        layers_per_block=(1, 1, 1, 1, 1), patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False)
    vae.use_framewise_encoding = vae.use_framewise_decoding = False
    pipe = LTXPipeline(tokenizer=word_tokenizer(), text_encoder=tiny_t5(), vae=vae, transformer=transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler())
    kwargs = dict(height=32, width=32, num_frames=9, max_sequence_length=16)
    return pipe, kwargs, "tokens"


def build_text_to_video_sd():
    from diffusers import DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=2)
    vae = tiny_vae()
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=tiny_clip(), tokenizer=word_tokenizer(77), unet=unet,
                                 scheduler=DDIMScheduler(clip_sample=False))
    kwargs = dict(height=16, width=16, num_frames=4)
    return pipe, kwargs, "BCFHW"


def build_stable_diffusion():
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=2)
    vae = tiny_vae()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=tiny_clip(), tokenizer=word_tokenizer(77), unet=unet,
                                   scheduler=DDIMScheduler(clip_sample=False), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    kwargs = dict(height=16, width=16)
    return pipe, kwargs, "BCHW"


def tiny_vae(latent_channels: int = 4, **extra):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=(8,), in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"],
                         up_block_types=["UpDecoderBlock2D"], latent_channels=latent_channels, sample_size=32,
                         norm_num_groups=2, **extra)


def build_animatediff():
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, norm_num_groups=2)
    torch.manual_seed(0)
    adapter = MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=2,
                            motion_num_attention_heads=4)
    pipe = AnimateDiffPipeline(vae=tiny_vae(), text_encoder=tiny_clip(), tokenizer=word_tokenizer(77), unet=unet,
                               motion_adapter=adapter, scheduler=DDIMScheduler(clip_sample=False))
    return pipe, dict(height=16, width=16, num_frames=4), "BCFHW"


def build_sdxl():
    from diffusers import DDIMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=2)
    pipe = StableDiffusionXLPipeline(
        vae=tiny_vae(), text_encoder=tiny_clip(), text_encoder_2=tiny_clip(projection=True),
        tokenizer=word_tokenizer(77), tokenizer_2=word_tokenizer(77), unet=unet,
        scheduler=DDIMScheduler(clip_sample=False))
    return pipe, dict(height=16, width=16), "BCHW"


def build_sd3():
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=32, joint_attention_dim=32, pooled_projection_dim=64, out_channels=4)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_vae(shift_factor=0.0609),
        text_encoder=tiny_clip(projection=True), tokenizer=word_tokenizer(77),
        text_encoder_2=tiny_clip(projection=True), tokenizer_2=word_tokenizer(77),
        text_encoder_3=tiny_t5(), tokenizer_3=word_tokenizer(77))
    return pipe, dict(height=16, width=16, max_sequence_length=16), "BCHW"


def build_hunyuan_video():
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler, HunyuanVideoPipeline,
                           HunyuanVideoTransformer3DModel)
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    torch.manual_seed(0)
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4))
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
        temporal_compression_ratio=4, mid_block_add_attention=True)
    torch.manual_seed(0)
    llama = LlamaModel(LlamaConfig(bos_token_id=3, eos_token_id=1, hidden_size=16, intermediate_size=37,
                                   num_attention_heads=4, num_hidden_layers=2, pad_token_id=0, vocab_size=32))
    torch.manual_seed(0)
    clip = CLIPTextModel(CLIPTextConfig(bos_token_id=3, eos_token_id=1, hidden_size=8, intermediate_size=37,
                                        num_attention_heads=4, num_hidden_layers=2, pad_token_id=0, vocab_size=32,
                                        projection_dim=32))
    pipe = HunyuanVideoPipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                                text_encoder=llama, tokenizer=word_tokenizer(), text_encoder_2=clip,
                                tokenizer_2=word_tokenizer(77))
    kwargs = dict(height=16, width=16, num_frames=9, max_sequence_length=16, negative_prompt="blurry",
                  prompt_template={"template": "{}", "crop_start": 0}, guidance_scale=4.5)
    return pipe, kwargs, "BCFHW"


BUILDERS = {
    "CogVideoXPipeline": build_cogvideox,
    "WanPipeline": build_wan,
    "LTXPipeline": build_ltx,
    "TextToVideoSDPipeline": build_text_to_video_sd,
    "StableDiffusionPipeline": build_stable_diffusion,
    "AnimateDiffPipeline": build_animatediff,
    "StableDiffusionXLPipeline": build_sdxl,
    "StableDiffusion3Pipeline": build_sd3,
    "HunyuanVideoPipeline": build_hunyuan_video,
}


def build(name: str):
    """A tiny pipeline by class name, in eval mode (built from configs they start in training mode)."""
    pipe, kwargs, layout = BUILDERS[name]()
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    return pipe, kwargs, layout
