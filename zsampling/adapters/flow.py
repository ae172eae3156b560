"""Flow-matching models (Stable Diffusion 3) from diffusers as zsampling models.

A rectified-flow model sees ``x_t = (1 - t) x0 + t eps`` for ``t`` in [0, 1] (the
``FlowMatchEulerDiscreteScheduler``'s "sigmas" are these ``t``) and predicts the velocity
``v = eps - x0``. On zsampling's levels (process ``flow``, see `zsampling.core.levels`) that is::

    sigma = t / (1 - t)        alpha = 1 - t = 1 / (1 + sigma)        s = t = sigma / (1 + sigma)
    x0 = x - t v               eps = x + (1 - t) v

(``t = 1``, pure noise, is ``sigma = inf``.) The DDIM/Euler step ``x' = alpha' x0 + s' eps``
is then exactly the scheduler's Euler step ``x' = x + (t' - t) v``, in both directions, so
Z-Sampling's inversion, Restart and W2SD all run on flow models with the same solvers.

The ``flow-match`` schedule (`zsampling.schedules.flow_match`) walks the pipeline scheduler's own
(shifted) ``t`` values, converted to levels, so
``sample(model, Standard(guidance=g), schedule=FlowMatch(steps=n), seeds=[s])`` reproduces
``pipe(prompt, guidance_scale=g, num_inference_steps=n, output_type="latent")`` with the same
noise (tested). For config files the component `SD3Adapter` (``name = "sd3"``) loads a
``StableDiffusion3Pipeline`` folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from zsampling.adapters.folders import PipelineFolder, load_pipeline_folder
from zsampling.adapters.perturbation import TRANSFORMER_STACK, PipelineNetwork
from zsampling.core.errors import InvalidArgument
from zsampling.core.inference import inference
from zsampling.core.levels import Process, sigma_from_t, t_from_sigma
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction

if TYPE_CHECKING:
    from PIL.Image import Image

PIPELINES = ("StableDiffusion3Pipeline",)


class FlowMatchModel(PipelineNetwork):
    """A `ModelAdapter` over a ``StableDiffusion3Pipeline`` (velocity prediction, process ``flow``).

    SD3 and SD3.5 alike (one pipeline class; SD3.5's transformer differs only in its config).
    ``height`` and ``width`` default to the pipeline's default image size;
    ``max_sequence_length`` is the T5 prompt length (the pipeline's default, 256).
    """

    process = Process("flow")
    table = None
    family: str = "sd3"
    stack: ClassVar[str] = TRANSFORMER_STACK
    pipelines: ClassVar[tuple[str, ...]] = PIPELINES

    def __init__(
        self,
        pipeline: Any,
        height: int | None = None,
        width: int | None = None,
        max_sequence_length: int = 256,
    ) -> None:
        if not any(c.__name__ in self.pipelines for c in type(pipeline).mro()):
            kind = type(pipeline).__name__
            raise InvalidArgument("pipeline", kind, f"one of {', '.join(self.pipelines)}")
        self.pipeline = pipeline
        default = pipeline.default_sample_size * pipeline.vae_scale_factor
        self.height = int(height or default)
        self.width = int(width or default)
        multiple = self.size_multiple()
        for field, value in (("height", self.height), ("width", self.width)):
            if value % multiple:
                raise InvalidArgument(
                    field, value, f"a multiple of {multiple} (VAE scale x patch size)"
                )
        self.max_sequence_length = int(max_sequence_length)
        self.dtype: torch.dtype = pipeline.transformer.dtype
        self.device: torch.device = pipeline.transformer.device

    def size_multiple(self) -> int:
        """What image sizes must be a multiple of: the VAE's scale times the patch size."""
        pipe = self.pipeline
        patch = getattr(pipe, "patch_size", None) or pipe.transformer.config.patch_size
        return int(pipe.vae_scale_factor * patch)

    def schedule_sigmas(self, steps: int) -> np.ndarray | None:
        """The ``sigmas`` the pipeline hands ``set_timesteps`` (None: SD3 passes none)."""
        return None

    def dynamic_shift_mu(self, config: Any) -> float:
        """Dynamic shifting's ``mu`` for this image size, as the SD3 pipeline computes it."""
        from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import (
            calculate_shift,
        )

        return float(
            calculate_shift(
                self.image_seq_len(),
                config.get("base_image_seq_len", 256),
                config.get("max_image_seq_len", 4096),
                config.get("base_shift", 0.5),
                config.get("max_shift", 1.16),
            )
        )

    @property
    def network(self) -> Any:
        return self.pipeline.transformer

    transformer = network

    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler_config.get("num_train_timesteps", 1000))

    def latent_shape(self) -> tuple[int, ...]:
        f = self.pipeline.vae_scale_factor
        return (int(self.transformer.config.in_channels), self.height // f, self.width // f)

    def image_seq_len(self) -> int:
        """Number of image tokens (what resolution-dependent shifting is computed from)."""
        _, h, w = self.latent_shape()
        p = int(self.transformer.config.patch_size)
        return (h // p) * (w // p)

    def sigma_range(self) -> tuple[float, float]:
        """Smallest and largest *finite* trained level.

        The training grid runs from ``t = 1`` (``sigma = inf``, pure noise) down; a Karras-type
        schedule needs a finite top, so the top is the grid's next level below pure noise.
        """
        from diffusers import FlowMatchEulerDiscreteScheduler

        # a fresh scheduler: the pipeline's own one holds the last run's inference levels
        fresh = FlowMatchEulerDiscreteScheduler.from_config(self.scheduler_config)
        t = fresh.sigmas.to(torch.float64)
        finite = sigma_from_t(t[(t < 1.0) & (t > 0.0)])
        return float(finite.min()), float(finite.max())

    @torch.inference_mode()
    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        """The pipeline's ``encode_prompt`` (all three text encoders, the same prompt for each);
        without negative prompts the empty prompt is the unconditional branch, as in diffusers."""
        prompts = list(prompts)
        negatives = list(negative_prompts) if negative_prompts is not None else None
        if negatives is not None and len(negatives) != len(prompts):
            raise InvalidArgument(
                "negative_prompts", negatives, f"one negative prompt per prompt ({len(prompts)})"
            )
        cond, uncond, pooled, neg_pooled = self.pipeline.encode_prompt(
            prompt=prompts,
            prompt_2=None,
            prompt_3=None,
            device=self.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negatives,
            max_sequence_length=self.max_sequence_length,
        )
        return (
            {"encoder_hidden_states": cond, "pooled_projections": pooled},
            {"encoder_hidden_states": uncond, "pooled_projections": neg_pooled},
        )

    def timestep(self, sigma: Tensor) -> Tensor:
        """The transformer's timestep, ``t * num_train_timesteps``, rounded as diffusers rounds it
        (``t`` in float32, then the product in float32)."""
        return t_from_sigma(sigma).to(torch.float32) * self.num_train_timesteps

    @inference
    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        """One transformer call; the velocity becomes ``x0 = x - t v``, ``eps = x + (1 - t) v``."""
        sigma = sigma.to(torch.float64)
        v = self.transformer(
            hidden_states=x.to(self.dtype),
            timestep=self.timestep(sigma).to(x.device),
            encoder_hidden_states=cond["encoder_hidden_states"],
            pooled_projections=cond["pooled_projections"],
            return_dict=False,
        )[0]
        return velocity_pair(x, sigma, v)

    @torch.inference_mode()
    def decode(self, x: Tensor) -> list[Image]:
        """Latents to PIL images, as the pipeline's ``__call__`` ends."""
        pipe = self.pipeline
        vae = pipe.vae
        latents = x.to(device=vae.device, dtype=vae.dtype)
        latents = latents / vae.config.scaling_factor + vae.config.shift_factor
        image = vae.decode(latents, return_dict=False)[0]
        images: list[Image] = pipe.image_processor.postprocess(image, output_type="pil")
        return images


def velocity_pair(x: Tensor, sigma: Tensor, v: Tensor) -> Prediction:
    """The pair of a velocity ``v`` at level ``sigma`` (one per row): ``x0 = x - t v`` and
    ``eps = x + (1 - t) v``, computed in float64 and returned in ``x``'s dtype."""
    t = t_from_sigma(sigma).to(x.device).view(-1, *([1] * (x.ndim - 1)))
    x64, v64 = x.to(torch.float64), v.to(torch.float64)
    return Prediction((x64 - t * v64).to(x.dtype), (x64 + (1.0 - t) * v64).to(x.dtype))


class SD3Adapter(PipelineFolder):
    """A Stable Diffusion 3 or 3.5 pipeline folder (flow matching, velocity prediction).

    The folder is what ``save_pretrained`` writes (``model_index.json`` plus one folder per
    component); weights must be safetensors. Loading happens in `load`, never on validation.
    """

    name: ClassVar[str] = "sd3"

    max_sequence_length: int = Field(256, ge=1, description="T5 prompt length in tokens.")

    def load(self) -> ModelAdapter:
        pipe = load_pipeline_folder(self.path, PIPELINES, self.dtype, self.device)
        return FlowMatchModel(
            pipe,
            height=self.height,
            width=self.width,
            max_sequence_length=self.max_sequence_length,
        )
