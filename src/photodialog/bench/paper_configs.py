"""The paper's architectures as published config values (written out: nothing is downloaded).

* LLM: ``meta-llama/Llama-2-7b-chat-hf`` (hidden 4096, 32 layers, 32 heads, MLP 11008, vocabulary
  32,000; the two photo tokens make 32,002).
* Image perceptron: ``Salesforce/blip2-opt-2.7b-coco``'s EVA ViT-g/14 vision tower (hidden 1408,
  39 layers, 16 heads, MLP 6144, 224 px, patch 14) and Q-Former (hidden 768, 12 layers, 12 heads,
  cross-attention every 2nd layer to the 1408-wide image features, 32 queries).
* Image generator: ``stabilityai/stable-diffusion-2-1-base``: UNet (320/640/1280/1280 channels,
  2 layers per block, cross-attention 1024, ``attention_head_dim`` [5, 10, 20, 20] (SD 2's config
  name for the *number* of heads), linear projections, 64 x 64 latents = 512 px), VAE (128/256/512/512,
  4 latent channels, scaling 0.18215), OpenCLIP ViT-H text encoder (hidden 1024, 23 layers,
  16 heads, MLP 4096, GELU, vocabulary 49,408, 77 positions), DDPM training schedule
  (scaled-linear betas 0.00085-0.012, 1000 steps, epsilon prediction).

``standin()`` keeps every structure (block types, cross-attention pattern, dtypes, training
modes) at toy sizes, so that tests build and step the same code on a CPU in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CROSS_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
CROSS_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]


def _llama_2_7b() -> dict:
    return dict(vocab_size=32_000, hidden_size=4096, intermediate_size=11_008, num_hidden_layers=32, num_attention_heads=32,
                num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5, hidden_act="silu",
                tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)


def _blip2_vision() -> dict:
    return dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16, image_size=224,
                patch_size=14, hidden_act="gelu", layer_norm_eps=1e-6, qkv_bias=True)


def _blip2_qformer() -> dict:
    return dict(vocab_size=30_522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                cross_attention_frequency=2, encoder_hidden_size=1408, max_position_embeddings=512)


def _sd21_unet() -> dict:
    return dict(sample_size=64, in_channels=4, out_channels=4, block_out_channels=[320, 640, 1280, 1280], layers_per_block=2,
                down_block_types=CROSS_DOWN, up_block_types=CROSS_UP, cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
                use_linear_projection=True, norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0, act_fn="silu")


def _sd21_vae() -> dict:
    return dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
                down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, norm_num_groups=32,
                act_fn="silu", sample_size=512, scaling_factor=0.18215)


def _openclip_h_text() -> dict:
    return dict(vocab_size=49_408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                max_position_embeddings=77, hidden_act="gelu", projection_dim=512, layer_norm_eps=1e-5)


def _sd21_scheduler() -> dict:
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="epsilon", clip_sample=False, steps_offset=1)


@dataclass
class PaperArchitecture:
    """Config values of every part, in the keyword arguments of the classes that build them."""

    llm: dict = field(default_factory=_llama_2_7b)
    vision: dict = field(default_factory=_blip2_vision)
    qformer: dict = field(default_factory=_blip2_qformer)
    num_query_tokens: int = 32
    unet: dict = field(default_factory=_sd21_unet)
    vae: dict = field(default_factory=_sd21_vae)
    text_encoder: dict = field(default_factory=_openclip_h_text)
    scheduler: dict = field(default_factory=_sd21_scheduler)
    image_size: int = 512
    caption_tokens: int = 20
    name: str = "paper"


def standin() -> PaperArchitecture:
    """The same structures at toy sizes (tests only)."""
    arch = PaperArchitecture(name="stand-in (toy sizes)", num_query_tokens=4, image_size=64, caption_tokens=4)
    arch.llm.update(vocab_size=500, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4)
    arch.vision.update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=28)
    arch.qformer.update(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        encoder_hidden_size=32, max_position_embeddings=64)
    arch.unet.update(sample_size=8, block_out_channels=[32, 32, 64, 64], layers_per_block=1, cross_attention_dim=32,
                     attention_head_dim=[2, 2, 4, 4], norm_num_groups=8)
    arch.vae.update(block_out_channels=[8, 8, 16, 16], layers_per_block=1, norm_num_groups=4, sample_size=64)
    arch.text_encoder.update(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    return arch
