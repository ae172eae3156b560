"""The parts of the tiny shapes Stable Diffusion pipeline, built from their configs.

It is a real ``StableDiffusionPipeline``: a ``UNet2DConditionModel`` (self- and cross-attention on
its 8x8 level and in its mid block), a two-layer ``CLIPTextModel`` (trained with the UNet until
the weak checkpoint, then frozen), a word-level tokenizer built with the
``tokenizers`` library and saved as a transformers ``PreTrainedTokenizerFast`` (``tokenizer.json``),
an ``AutoencoderKL`` trained on the renders (32x32x3 images <-> 4x16x16 latents) and SD's DDIM
scheduler config. Nothing here is trained; `zsampling.shapes.train` does that.
"""

from __future__ import annotations

from typing import Any

import torch

from zsampling.shapes.grammar import COUNTS, RELATIONS
from zsampling.shapes.world import COLOURS, SHAPES, SIZE

BOS, EOS, UNK = "<|startoftext|>", "<|endoftext|>", "<|unk|>"
MAX_TOKENS = 12
TEXT_DIM = 64
LATENT = SIZE // 2


def vocabulary() -> dict[str, int]:
    """Every word of the grammar, the three special tokens last."""
    words = ["a", "and", *sorted({w for r in RELATIONS for w in r.split()}), *COUNTS]
    words += [*COLOURS, *SHAPES, *(s + "s" for s in SHAPES)]
    return {w: i for i, w in enumerate([*words, BOS, EOS, UNK])}


def build_tokenizer() -> Any:
    """A word-level tokenizer: lower-case, split on whitespace, ``BOS ... EOS``, padded with EOS
    to `MAX_TOKENS` (as CLIP pads)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = vocabulary()
    backend = Tokenizer(WordLevel(vocab, unk_token=UNK))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=UNK,
        model_max_length=MAX_TOKENS,
    )


def build_text_encoder(seed: int) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    vocab = vocabulary()
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        bos_token_id=vocab[BOS],
        eos_token_id=vocab[EOS],
        pad_token_id=vocab[EOS],
        hidden_size=TEXT_DIM,
        intermediate_size=2 * TEXT_DIM,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=MAX_TOKENS,
    )
    torch.manual_seed(seed)
    model: Any = CLIPTextModel(config)
    return model.eval().requires_grad_(False)


def build_vae(seed: int) -> Any:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae: Any = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=SIZE,
    )
    return vae


def build_unet(seed: int) -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet: Any = UNet2DConditionModel(
        sample_size=LATENT,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 48),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=4,
        norm_num_groups=16,
        cross_attention_dim=TEXT_DIM,
    )
    return unet


def build_scheduler() -> Any:
    """Stable Diffusion 1.x's DDIM scheduler config (scaled-linear betas, epsilon)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        clip_sample=False,
        set_alpha_to_one=False,
        prediction_type="epsilon",
    )


def assemble(vae: Any, text_encoder: Any, tokenizer: Any, unet: Any, scheduler: Any) -> Any:
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def token_ids(tokenizer: Any, prompts: list[str]) -> torch.Tensor:
    """Token ids of ``prompts``, padded to the tokenizer's maximum length as the pipeline's
    ``encode_prompt`` pads them."""
    out: torch.Tensor = tokenizer(
        prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
    ).input_ids
    return out


@torch.no_grad()
def text_states(tokenizer: Any, text_encoder: Any, prompts: list[str]) -> torch.Tensor:
    """The text encoder's last hidden states, tokenized exactly as the pipeline's
    ``encode_prompt`` does (padded to the tokenizer's maximum length, no attention mask)."""
    return text_states_of(text_encoder, token_ids(tokenizer, prompts))


@torch.no_grad()
def text_states_of(text_encoder: Any, ids: torch.Tensor) -> torch.Tensor:
    """The text encoder's last hidden states of token ids."""
    out: torch.Tensor = text_encoder(ids)[0]
    return out
