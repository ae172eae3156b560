"""FLUX.1 (dev and schnell) from diffusers as zsampling models.

FLUX is rectified flow like SD3 (``x_t = (1 - t) x0 + t eps``, the transformer predicts the
velocity ``eps - x0``; levels and the prediction pair as in `zsampling.adapters.flow`). What
differs, each handled as ``FluxPipeline.__call__`` does it (diffusers 0.42):

- **Packed latents.** The transformer sees 2x2 patches of the VAE latent packed into tokens
  (``(B, C, H, W) -> (B, H/2 * W/2, 4C)``). zsampling keeps latents *unpacked* (image-shaped,
  so noise is drawn per seed in the pipeline's order and patches such as dynamic thresholding
  see channels), and packs them around each transformer call; `pack` gives the pipeline's
  ``output_type="latent"`` layout.
- **Levels.** The pipeline hands its scheduler ``sigmas = linspace(1, 1/n, n)`` and, with
  dynamic shifting, ``mu`` from the *packed* token count (the SD3 rule would count 4x as many
  tokens); the ``flow-match`` schedule asks the model for both (`FluxModel.schedule_sigmas`,
  `FluxModel.dynamic_shift_mu`).
- **Timestep and guidance.** The pipeline passes ``timestep / 1000`` and the guidance scale; the
  transformer multiplies both by 1000 inside. Done here with the pipeline's float32 rounding.
- **Guidance.** FLUX.1-dev is guidance-distilled: the scale is an input of the transformer, in
  every call, including at scale 1 and in both branches of true CFG. `FluxGuidedModel` therefore
  has ``predict_guided`` (`zsampling.core.model.GuidanceEmbedding`): a `GuidanceRule` guider hands
  it each call's scale, so a zig at ``guidance`` and a zag at ``inversion_guidance`` are two
  embedded scales. True CFG (a negative prompt, ``true_cfg_scale``: two branches combined as
  ``neg + s * (cond - neg)``) is the ``true-cfg`` guider (`zsampling.guiders.TrueCFG`).
  FLUX.1-schnell has no guidance embedding: `FluxModel` has plain ``predict`` only, and the
  sampler's guidance is an ordinary CFG scale against the negative (by default the empty) prompt.
- **Prompts.** CLIP's pooled output and T5's hidden states; T5 prompt length 512 by default (SD3
  uses 256), which changes the embeddings.

For config files the component `FluxAdapter` (``name = "flux"``) loads a ``FluxPipeline``
folder; `flux_model` wraps a live pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from zsampling.adapters.flow import FlowMatchModel, velocity_pair
from zsampling.adapters.folders import PipelineFolder, load_pipeline_folder
from zsampling.core.errors import InvalidArgument
from zsampling.core.inference import inference
from zsampling.core.levels import t_from_sigma
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction

PIPELINES = ("FluxPipeline",)
DEFAULT_GUIDANCE = 3.5
"""``FluxPipeline.__call__``'s default ``guidance_scale``: the embedded scale of a bare
``predict`` on FLUX.1-dev."""


def pack(latents: Tensor) -> Tensor:
    """``(B, C, H, W)`` latents as FLUX's tokens ``(B, H/2 * W/2, 4C)`` (2x2 patches)."""
    b, c, h, w = latents.shape
    patches = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: Tensor, height: int, width: int) -> Tensor:
    """FLUX's tokens back to ``(B, C, height, width)`` latents (the inverse of `pack`)."""
    b, _, features = tokens.shape
    patches = tokens.view(b, height // 2, width // 2, features // 4, 2, 2)
    return patches.permute(0, 3, 1, 4, 2, 5).reshape(b, features // 4, height, width)


class FluxModel(FlowMatchModel):
    """A `ModelAdapter` over a ``FluxPipeline`` without guidance embedding (FLUX.1-schnell).

    ``height`` and ``width`` default to the pipeline's default image size and must be multiples
    of twice the VAE scale (the packing's 2x2 patches); ``max_sequence_length`` is the T5 prompt
    length (the pipeline's default, 512). Use `flux_model` to get the right class for a pipeline.
    """

    family: str = "flux"
    pipelines: ClassVar[tuple[str, ...]] = PIPELINES

    def __init__(
        self,
        pipeline: Any,
        height: int | None = None,
        width: int | None = None,
        max_sequence_length: int = 512,
        guidance: float = DEFAULT_GUIDANCE,
    ) -> None:
        super().__init__(pipeline, height, width, max_sequence_length)
        self.guidance = float(guidance)

    def size_multiple(self) -> int:
        return int(self.pipeline.vae_scale_factor * 2)

    @property
    def guidance_embeds(self) -> bool:
        return bool(self.transformer.config.get("guidance_embeds", False))

    def latent_shape(self) -> tuple[int, ...]:
        f = self.pipeline.vae_scale_factor
        return (int(self.transformer.config.in_channels) // 4, self.height // f, self.width // f)

    def image_seq_len(self) -> int:
        """Packed tokens: what FLUX's dynamic shifting counts."""
        _, h, w = self.latent_shape()
        return (h // 2) * (w // 2)

    def schedule_sigmas(self, steps: int) -> np.ndarray:
        """``linspace(1, 1/steps, steps)``: what ``FluxPipeline`` hands its scheduler (an array,
        as the pipeline passes it; older schedulers need one)."""
        return np.linspace(1.0, 1 / steps, steps)

    def dynamic_shift_mu(self, config: Any) -> float:
        """``mu`` from the packed token count, with FLUX's defaults (``calculate_shift``)."""
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        return float(
            calculate_shift(
                self.image_seq_len(),
                config.get("base_image_seq_len", 256),
                config.get("max_image_seq_len", 4096),
                config.get("base_shift", 0.5),
                config.get("max_shift", 1.15),
            )
        )

    @torch.inference_mode()
    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        """The pipeline's ``encode_prompt`` for the prompts and for the negative prompts (the
        empty prompt when there are none: what ``negative_prompt=""`` gives the pipeline)."""
        prompts = list(prompts)
        negatives = list(negative_prompts) if negative_prompts is not None else [""] * len(prompts)
        if len(negatives) != len(prompts):
            raise InvalidArgument(
                "negative_prompts", negatives, f"one negative prompt per prompt ({len(prompts)})"
            )
        return self._encode(prompts), self._encode(negatives)

    def _encode(self, prompts: list[str]) -> Conditioning:
        embeds, pooled, _ = self.pipeline.encode_prompt(
            prompt=prompts,
            prompt_2=None,
            device=self.device,
            num_images_per_prompt=1,
            max_sequence_length=self.max_sequence_length,
        )
        return {"encoder_hidden_states": embeds, "pooled_projections": pooled}

    def timestep(self, sigma: Tensor) -> Tensor:
        """What the pipeline passes: its scheduler's ``t * 1000`` (float32), in the latents'
        dtype, divided by 1000."""
        t = t_from_sigma(sigma).to(torch.float32) * self.num_train_timesteps
        return t.to(self.dtype) / 1000

    @inference
    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        """One transformer call (FLUX.1-dev: at the model's default embedded scale)."""
        scale = self.guidance if self.guidance_embeds else None
        return self._velocity(x, sigma, cond, scale)

    def _velocity(
        self, x: Tensor, sigma: Tensor, cond: Conditioning, scale: float | None
    ) -> Prediction:
        sigma = sigma.to(torch.float64)
        batch, _, h, w = x.shape
        hidden = cond["encoder_hidden_states"]
        guidance = None
        if scale is not None:
            guidance = torch.full((batch,), float(scale), device=x.device, dtype=torch.float32)
        v = self.transformer(
            hidden_states=pack(x.to(self.dtype)),
            timestep=self.timestep(sigma).to(x.device),
            guidance=guidance,
            pooled_projections=cond["pooled_projections"],
            encoder_hidden_states=hidden,
            txt_ids=torch.zeros(hidden.shape[1], 3, device=x.device, dtype=self.dtype),
            img_ids=image_ids(h // 2, w // 2).to(device=x.device, dtype=self.dtype),
            return_dict=False,
        )[0]
        return velocity_pair(x, sigma, unpack(v, h, w))

    def pack(self, x: Tensor) -> Tensor:
        """Latents in the pipeline's own ``output_type="latent"`` layout (packed tokens).

        ``decode`` is SD3's: zsampling's latents are unpacked already, as the VAE takes them.
        """
        return pack(x)


class FluxGuidedModel(FluxModel):
    """`FluxModel` for FLUX.1-dev: the guidance scale is an input of the transformer.

    ``predict_guided(x, sigma, cond, scale)`` makes the call at that scale; guiders built on
    `zsampling.core.rules.GuidanceRule` use it for every call (`GuidanceEmbedding`).
    """

    @inference
    def predict_guided(
        self, x: Tensor, sigma: Tensor, cond: Conditioning, scale: float
    ) -> Prediction:
        return self._velocity(x, sigma, cond, scale)


def image_ids(height: int, width: int) -> Tensor:
    """FLUX's position ids of a ``height x width`` grid of tokens: ``(0, row, column)``."""
    ids = torch.zeros(height, width, 3)
    ids[..., 1] = torch.arange(height)[:, None]
    ids[..., 2] = torch.arange(width)[None, :]
    return ids.reshape(height * width, 3)


def flux_model(
    pipeline: Any,
    height: int | None = None,
    width: int | None = None,
    max_sequence_length: int = 512,
    guidance: float = DEFAULT_GUIDANCE,
) -> FluxModel:
    """The adapter over a live ``FluxPipeline``: `FluxGuidedModel` when its transformer embeds
    the guidance scale (FLUX.1-dev), else `FluxModel` (FLUX.1-schnell)."""
    config = getattr(getattr(pipeline, "transformer", None), "config", None)
    embeds = bool(config is not None and config.get("guidance_embeds", False))
    cls = FluxGuidedModel if embeds else FluxModel
    return cls(pipeline, height, width, max_sequence_length, guidance)


class FluxAdapter(PipelineFolder):
    """A FLUX.1 pipeline folder (dev: guidance-distilled; schnell: no guidance embedding).

    The folder is what ``save_pretrained`` writes; weights must be safetensors. On FLUX.1-dev the
    sampler's guidance is the embedded scale (see the FLUX docs page for what zigzag's
    ``inversion_guidance`` means then); true CFG is the ``true-cfg`` guider.
    """

    name: ClassVar[str] = "flux"

    max_sequence_length: int = Field(
        512, ge=1, le=512, description="T5 prompt length in tokens (the pipeline's default)."
    )
    guidance: float = Field(
        DEFAULT_GUIDANCE,
        ge=0,
        description="FLUX.1-dev: the embedded scale of calls made without one (guiders not "
        "built on GuidanceRule); samplers' own scales reach the transformer otherwise.",
    )

    def load(self) -> ModelAdapter:
        pipe = load_pipeline_folder(self.path, PIPELINES, self.dtype, self.device)
        return flux_model(pipe, self.height, self.width, self.max_sequence_length, self.guidance)
