"""Tiny random-weight Stable Diffusion pipelines, built offline from configs.

Tests and examples need real diffusers pipelines (so that the real loading, encoding, UNet and VAE
code runs) but cannot download weights. These builders make SD (epsilon or v-prediction) and SDXL
pipelines with the block sizes diffusers' own tests use (UNet blocks (32, 64), 32-dim text
encoders) and a byte-level CLIP tokenizer written on the spot. A 32x32 image has a 4x16x16 latent;
a 10-step run takes well under a second on a CPU.

Every model is seeded, so a builder returns the same weights every time, and put in ``eval()``
mode (models built from a config start in train mode, with dropout on). ``write_*`` functions save
with ``save_pretrained`` (safetensors) so callers exercise ``from_pretrained`` on a local folder.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from zsampling.core.sampling import initial_noise

# diffusers and transformers are imported inside the builders (they are slow to import), and their
# classes are annotated as Any: their lazy-module stubs confuse type checkers.

PredictionType = Literal["epsilon", "v_prediction"]

#: Stable Diffusion's training noise schedule and DDIM settings (as in the released configs).
SD_SCHEDULE = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    steps_offset=1,
)
IMAGE_SIZE = 32
TEXT_DIM = 32
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> list[str]:
    """The 256 printable stand-ins for bytes that GPT-2/CLIP byte-level BPE uses."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_tokenizer() -> Any:
    """A CLIP tokenizer over single bytes (no merges): every prompt tokenizes, nothing downloads."""
    from transformers import CLIPTokenizer

    chars = _bytes_to_unicode()
    vocab = {tok: i for i, tok in enumerate(chars + [c + "</w>" for c in chars] + [BOS, EOS])}
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = Path(tmp, "vocab.json"), Path(tmp, "merges.txt")
        vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
        merges_file.write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77)


def _text_config(tokenizer: Any, projection: bool) -> Any:
    from transformers import CLIPTextConfig

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.convert_tokens_to_ids(BOS),
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        pad_token_id=tokenizer.convert_tokens_to_ids(EOS),
        hidden_size=TEXT_DIM,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
    )
    if projection:
        config.projection_dim = TEXT_DIM  # SDXL's second encoder: pooled, projected text
    return config


#: What the tiny SD and SDXL UNets share: 4 latent channels, 16x16 latents, blocks (32, 64).
TINY_UNET = dict(
    sample_size=IMAGE_SIZE // 2,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=1,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(2, 4),
    norm_num_groups=32,
)


def tiny_sd_unet(seed: int = 0) -> Any:
    """An SD-style UNet: 4 latent channels, 16x16 latents, cross-attention on 32-dim text."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet: Any = UNet2DConditionModel(**TINY_UNET, cross_attention_dim=TEXT_DIM)
    return unet.eval()


def tiny_sdxl_unet(seed: int = 0) -> Any:
    """An SDXL-style UNet: two concatenated text encoders, pooled text and size ids added."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet: Any = UNet2DConditionModel(
        **TINY_UNET,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + TEXT_DIM,
        cross_attention_dim=2 * TEXT_DIM,
    )
    return unet.eval()


def _tiny_vae(seed: int) -> Any:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae: Any = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=IMAGE_SIZE,
        norm_num_groups=32,
    )
    return vae.eval()


def tiny_sd_pipeline(prediction_type: PredictionType = "epsilon", seed: int = 0) -> Any:
    """SD 1.x/2.x in miniature, with SD's DDIM scheduler config (epsilon or v-prediction)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed + 1)
    text_encoder = CLIPTextModel(_text_config(tokenizer, False)).eval()
    scheduler = DDIMScheduler(
        **SD_SCHEDULE,
        clip_sample=False,
        set_alpha_to_one=False,
        prediction_type=prediction_type,
    )
    return StableDiffusionPipeline(
        vae=_tiny_vae(seed + 2),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=tiny_sd_unet(seed),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_sdxl_pipeline(seed: int = 0) -> Any:
    """SDXL in miniature, with SDXL's Euler scheduler config ("leading" spacing)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed + 1)
    text_encoder = CLIPTextModel(_text_config(tokenizer, False)).eval()
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer, True)).eval()
    # SDXL's released scheduler config: Euler, "leading", plus DDIM keys Euler ignores but keeps
    # (so DDIMScheduler.from_config(pipe.scheduler.config) is SDXL's DDIM, without clipping).
    scheduler = EulerDiscreteScheduler.from_config(
        dict(
            **SD_SCHEDULE,
            timestep_spacing="leading",
            clip_sample=False,
            set_alpha_to_one=False,
            skip_prk_steps=True,
        )
    )
    return StableDiffusionXLPipeline(
        vae=_tiny_vae(seed + 2),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tiny_tokenizer(),
        unet=tiny_sdxl_unet(seed),
        scheduler=scheduler,
    )


def write_tiny_pipeline(
    folder: str | Path, family: Literal["sd", "sd-v", "sdxl"] = "sd", seed: int = 0
) -> Path:
    """Save a tiny pipeline (safetensors) to ``folder``; load it back with ``from_pretrained``."""
    if family == "sdxl":
        pipe = tiny_sdxl_pipeline(seed)
    else:
        pipe = tiny_sd_pipeline("v_prediction" if family == "sd-v" else "epsilon", seed)
    pipe.save_pretrained(str(folder))
    return Path(folder)


def write_tiny_unet(
    folder: str | Path,
    family: Literal["sd", "sdxl"] = "sd",
    seed: int = 1,
    safetensors: bool = True,
) -> Path:
    """Save a tiny UNet with other weights (``seed``) to ``folder``, as a fine-tune would ship."""
    unet = tiny_sdxl_unet(seed) if family == "sdxl" else tiny_sd_unet(seed)
    unet.save_pretrained(str(folder), safe_serialization=safetensors)
    return Path(folder)


def latents_noise(
    seeds: Sequence[int], shape: tuple[int, ...] = (4, 16, 16), dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Starting noise as diffusers draws it: one CPU generator per seed, in the pipeline's dtype
    (tiny SD latents in float32 by default). Half-precision noise must be drawn in half precision,
    not cast down from float32: on some torch releases the two differ (see `initial_noise`)."""
    return initial_noise(shape, seeds, dtype)[0]
