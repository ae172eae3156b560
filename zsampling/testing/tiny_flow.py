"""Tiny random-weight flow-matching pipelines (SD3, SD3.5, FLUX), built offline from configs.

Like `zsampling.testing.tiny` for SD and SDXL: real diffusers pipelines, so the real loading,
encoding, transformer and VAE code runs, with layers small enough for a CPU test. The T5
tokenizer is a unigram model over single characters built with ``tokenizers`` (no sentencepiece
file, no download; the same on transformers 4.x and 5.x). A 32x32 image takes well under a
second. Every model is seeded and in ``eval()`` mode.

- SD3: an ``SD3Transformer2DModel`` with 2x2 patches over 4x16x16 latents, two CLIPs with
  projection and a T5, SD3's scheduler (shift 3).
- SD3.5: the same pipeline class; the transformer has SD3.5's RMS-normed attention
  (``qk_norm="rms_norm"``) and an MMDiT-X dual-attention layer (``dual_attention_layers``), as
  in SD3.5 Medium.
- FLUX: a ``FluxTransformer2DModel`` (one double and one single block) over packed latents (16
  channels, 2x2 patches packed into 64 features), one CLIP (pooled) and a T5. ``"flux"`` is
  FLUX.1-dev (guidance embedding, dynamic shifting); ``"flux-schnell"`` has no guidance embedding
  and schnell's scheduler (shift 1, no dynamic shifting).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

from zsampling.testing.tiny import BOS, EOS, tiny_tokenizer

FlowFamily = Literal["sd3", "sd3.5", "flux", "flux-schnell"]
FLOW_FAMILIES: tuple[FlowFamily, ...] = ("sd3", "sd3.5", "flux", "flux-schnell")

#: FLUX.1-dev's scheduler config (FLUX.1-schnell: shift 1, no dynamic shifting).
FLUX_DEV_SCHEDULER = dict(
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)


def tiny_t5(width: int, seed: int) -> tuple[Any, Any]:
    """A T5 tokenizer over single characters and a one-layer T5 encoder ``width`` wide."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import (  # type: ignore[attr-defined]  # v5 stubs lack the alias
        T5Config,
        T5EncoderModel,
        T5TokenizerFast,
    )

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(chr(c), -2.0) for c in range(33, 127)]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = T5TokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_ids=0,
    )
    settings: dict[str, Any] = dict(
        vocab_size=len(pieces),
        d_model=width,
        d_ff=width,
        d_kv=16,
        num_layers=1,
        num_heads=width // 16,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    encoder = T5EncoderModel(T5Config(**settings)).eval()
    return tokenizer, encoder


def tiny_clip(seed: int, projection: bool) -> tuple[Any, Any]:
    """A byte-level CLIP tokenizer and a 2-layer, 32-wide CLIP text encoder (with a 32-wide
    projection for SD3's encoders, without for FLUX's, which uses the pooled output)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tok = tiny_tokenizer()
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in (("bos", BOS), ("eos", EOS))}
    config = CLIPTextConfig(
        vocab_size=len(tok),
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        pad_token_id=ids["eos"],
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=32,
        hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model = CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)
    return tok, model.eval()


def _flow_vae(seed: int, channels: int, shift: float, scale: float) -> Any:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae: Any = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=channels,
        sample_size=32,
        norm_num_groups=4,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=shift,
        scaling_factor=scale,
    )
    return vae.eval()


def tiny_sd3_pipeline(seed: int = 0, shift: float = 3.0, version: str = "3") -> Any:
    """A random-weight ``StableDiffusion3Pipeline``: 32x32 images, 4x16x16 latents.

    ``version="3.5"`` gives the transformer SD3.5's RMS-normed attention and an MMDiT-X
    dual-attention layer (the rest of the pipeline is the same class and code).
    """
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    tokenizer, text_encoder = tiny_clip(seed + 1, projection=True)
    tokenizer_2, text_encoder_2 = tiny_clip(seed + 2, projection=True)
    tokenizer_3, text_encoder_3 = tiny_t5(64, seed + 3)
    sd35 = {"qk_norm": "rms_norm", "dual_attention_layers": (0,)} if version == "3.5" else {}
    torch.manual_seed(seed)
    transformer: Any = SD3Transformer2DModel(
        sample_size=16,
        patch_size=2,
        in_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=64,  # T5's width; the two CLIPs (2 x 32) are padded to it
        caption_projection_dim=32,
        pooled_projection_dim=64,  # the two CLIP projections, concatenated
        out_channels=4,
        **sd35,
    )
    transformer.eval()
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
        vae=_flow_vae(seed + 4, 4, shift=0.0609, scale=1.5035),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
    )


def tiny_flux_pipeline(seed: int = 0, schnell: bool = False) -> Any:
    """A random-weight ``FluxPipeline``: latents of 16 channels at half the image size, packed
    2x2 into 64 features (a 32x32 image is 64 tokens).

    FLUX.1-dev by default (guidance embedding, dynamic shifting); ``schnell=True``: no guidance
    embedding and schnell's scheduler (shift 1).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    tokenizer, text_encoder = tiny_clip(seed + 1, projection=False)
    tokenizer_2, text_encoder_2 = tiny_t5(32, seed + 2)
    torch.manual_seed(seed)
    transformer: Any = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=not schnell,
        axes_dims_rope=(4, 6, 6),
    )
    transformer.eval()
    scheduler = (
        FlowMatchEulerDiscreteScheduler(shift=1.0)
        if schnell
        else FlowMatchEulerDiscreteScheduler(**FLUX_DEV_SCHEDULER)
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=_flow_vae(seed + 4, 16, shift=0.1159, scale=0.3611),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def tiny_flow_pipeline(family: FlowFamily = "flux", seed: int = 0) -> Any:
    """One of the tiny flow pipelines by family name."""
    if family == "sd3":
        return tiny_sd3_pipeline(seed)
    if family == "sd3.5":
        return tiny_sd3_pipeline(seed, version="3.5")
    return tiny_flux_pipeline(seed, schnell=family == "flux-schnell")


def write_tiny_flow_pipeline(
    folder: str | Path, family: FlowFamily = "flux", seed: int = 0
) -> Path:
    """Save a tiny flow pipeline (safetensors) to ``folder``; load it with ``from_pretrained``."""
    tiny_flow_pipeline(family, seed).save_pretrained(str(folder))
    return Path(folder)
