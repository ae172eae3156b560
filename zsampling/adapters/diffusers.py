"""Stable Diffusion and SDXL pipelines from diffusers as zsampling models.

(To sample with a pipeline you hold in two lines, see `zsampling.integrations.diffusers.generate`.)

For config files the component `DiffusersAdapter` (``name = "diffusers"``) loads a pipeline
folder; `DiffusersModel` is the `zsampling.core.model.ModelAdapter` over a pipeline object.

How the model is answered (see `zsampling.core.levels`): latents stay in diffusers' VP latent space
(``x = alpha * x0 + s * eps``, ``alpha^2 + s^2 = 1``); a level ``sigma`` becomes the UNet timestep
``table.timestep(sigma)`` (exact integers on the training grid); epsilon or v predictions (the
scheduler config's ``prediction_type``) become the pair ``(x0, eps)`` in float64 and are returned
in the latent dtype. Prompts are encoded once per run by the pipeline's own ``encode_prompt``, and
the VAE decodes once, at the end, with the pipeline's image processor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from zsampling.adapters.folders import PipelineFolder, load_pipeline_folder, pipeline_class
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process, TimestepTable
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction

if TYPE_CHECKING:
    from PIL.Image import Image

PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")
PREDICTION_TYPES = ("epsilon", "v_prediction")


class DiffusersModel:
    """A `ModelAdapter` over a ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``.

    ``height`` and ``width`` (pixels) default to the pipeline's own default image size. The
    pipeline object is used, not copied: patches that must not touch it (``unet-weights``) build
    a new pipeline sharing the other components and wrap that with `with_pipeline`.
    """

    process = Process("vp")

    def __init__(self, pipeline: Any, height: int | None = None, width: int | None = None) -> None:
        kind = type(pipeline).__name__
        if not any(c.__name__ in PIPELINES for c in type(pipeline).mro()):  # subclasses welcome
            raise InvalidArgument("pipeline", kind, f"one of {', '.join(PIPELINES)}")
        self.pipeline = pipeline
        self.family: Literal["sd", "sdxl"] = "sdxl" if _is_sdxl(pipeline) else "sd"
        config = pipeline.scheduler.config
        self.prediction_type: str = config.get("prediction_type", "epsilon")
        if self.prediction_type not in PREDICTION_TYPES:
            raise InvalidArgument(
                "scheduler.prediction_type", self.prediction_type, f"one of {PREDICTION_TYPES}"
            )
        # Reuse the scheduler's own tensor so our levels are bit-identical to diffusers'. A config
        # without set_alpha_to_one (Euler's) gets DDIMScheduler's default, as from_config would.
        self.table = TimestepTable(
            pipeline.scheduler.alphas_cumprod,
            steps_offset=int(config.get("steps_offset", 0)),
            set_alpha_to_one=bool(config.get("set_alpha_to_one", True)),
        )
        default = pipeline.unet.config.sample_size * pipeline.vae_scale_factor
        self.height = int(height or default)
        self.width = int(width or default)
        for field, value in (("height", self.height), ("width", self.width)):
            if value % pipeline.vae_scale_factor:
                raise InvalidArgument(
                    field, value, f"a multiple of the VAE scale factor {pipeline.vae_scale_factor}"
                )

        # The run's dtype and device are the UNet's (fp16 runs get the fp16 non-finite hint).
        self.dtype: torch.dtype = pipeline.unet.dtype
        self.device: torch.device = pipeline.unet.device

    # -- the ModelAdapter protocol ------------------------------------------------------------

    @property
    def unet(self) -> Any:
        return self.pipeline.unet

    @property
    def scheduler_config(self) -> Any:
        """The pipeline scheduler's config, which the ``scheduler`` schedule builds on."""
        return self.pipeline.scheduler.config

    @property
    def reinterpret_keeps(self) -> Literal["eps", "v"]:
        """What a step from a level other than the evaluated one keeps: the UNet's own output
        (v for v-prediction), as diffusers' schedulers, and so the released Z-Sampling code's
        inverse step, convert it at the level they step from."""
        return "v" if self.prediction_type == "v_prediction" else "eps"

    @property
    def scheduler_class_name(self) -> str:
        """The pipeline scheduler's class (a pipeline built in memory has no ``_class_name``)."""
        return type(self.pipeline.scheduler).__name__

    def latent_shape(self) -> tuple[int, ...]:
        f = self.pipeline.vae_scale_factor
        return (int(self.unet.config.in_channels), self.height // f, self.width // f)

    def sigma_range(self) -> tuple[float, float]:
        sig = self.table.sigmas
        return float(sig[0]), float(sig[-1])

    @torch.inference_mode()
    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        """The pipeline's ``encode_prompt``; SDXL also gets its pooled text and size ids.

        Without negative prompts the pipeline's own default applies (the empty prompt for SD,
        zeros for SDXL with ``force_zeros_for_empty_prompt``).
        """
        prompts = list(prompts)
        negatives = list(negative_prompts) if negative_prompts is not None else None
        if negatives is not None and len(negatives) != len(prompts):
            raise InvalidArgument(
                "negative_prompts", negatives, f"one negative prompt per prompt ({len(prompts)})"
            )
        pipe = self.pipeline
        if self.family == "sd":
            cond, uncond = pipe.encode_prompt(
                prompts, self.device, 1, True, negative_prompt=negatives
            )
            return {"encoder_hidden_states": cond}, {"encoder_hidden_states": uncond}
        cond, uncond, pooled, neg_pooled = pipe.encode_prompt(
            prompt=prompts,
            device=self.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negatives,
        )
        # Default SDXL micro-conditioning: original = target = image size, no crop.
        size = (self.height, self.width)
        projection = (
            int(pooled.shape[-1])
            if pipe.text_encoder_2 is None
            else pipe.text_encoder_2.config.projection_dim
        )
        time_ids = pipe._get_add_time_ids(
            size, (0, 0), size, dtype=cond.dtype, text_encoder_projection_dim=projection
        )
        time_ids = time_ids.to(self.device).repeat(len(prompts), 1)
        return (
            {"encoder_hidden_states": cond, "text_embeds": pooled, "time_ids": time_ids},
            {"encoder_hidden_states": uncond, "text_embeds": neg_pooled, "time_ids": time_ids},
        )

    @torch.inference_mode()
    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        """One UNet call at ``timestep = table.timestep(sigma)``, the latent fed as it is."""
        sigma = sigma.to(torch.float64)
        timesteps = self.table.timestep(sigma).to(device=x.device, dtype=torch.float32)
        added = {k: cond[k] for k in ("text_embeds", "time_ids") if k in cond}
        out = self.unet(
            x.to(self.dtype),
            timesteps,
            encoder_hidden_states=cond["encoder_hidden_states"],
            added_cond_kwargs=added or None,
            return_dict=False,
        )[0]
        alpha, s = (c.to(x.device).view(-1, *([1] * (x.ndim - 1))) for c in _vp(sigma))
        x64, out64 = x.to(torch.float64), out.to(torch.float64)
        if self.prediction_type == "epsilon":
            eps = out64
            x0 = (x64 - s * eps) / alpha
        else:  # v = alpha * eps - s * x0, hence (with alpha^2 + s^2 = 1):
            x0 = alpha * x64 - s * out64
            eps = s * x64 + alpha * out64
        return Prediction(x0.to(x.dtype), eps.to(x.dtype))

    @torch.inference_mode()
    def decode(self, x: Tensor) -> list[Image]:
        """Latents to PIL images, as the pipeline's ``__call__`` ends.

        An fp16 VAE whose config says ``force_upcast`` (SDXL's overflows in fp16) decodes in
        float32 and is cast back afterwards, exactly as diffusers does.
        """
        pipe = self.pipeline
        vae = pipe.vae
        upcast = vae.dtype == torch.float16 and bool(vae.config.get("force_upcast", False))
        if upcast:
            vae.to(dtype=torch.float32)
        try:
            latents = x.to(device=vae.device, dtype=vae.dtype)
            mean, std = vae.config.get("latents_mean"), vae.config.get("latents_std")
            if mean is not None and std is not None:
                shape = (1, -1, 1, 1)
                m = torch.tensor(mean).view(shape).to(latents)
                sd = torch.tensor(std).view(shape).to(latents)
                latents = latents * sd / vae.config.scaling_factor + m
            else:
                latents = latents / vae.config.scaling_factor
            image = vae.decode(latents, return_dict=False)[0]
        finally:
            if upcast:
                vae.to(dtype=torch.float16)
        denormalize = None
        if getattr(pipe, "safety_checker", None) is not None:
            image, nsfw = pipe.run_safety_checker(image, self.device, image.dtype)
            denormalize = [not flagged for flagged in nsfw]
        images: list[Image] = pipe.image_processor.postprocess(
            image, output_type="pil", do_denormalize=denormalize
        )
        return images

    # -- helpers ------------------------------------------------------------------------------

    def with_pipeline(self, pipeline: Any) -> DiffusersModel:
        """The same adapter settings over another pipeline (how patches return a new model)."""
        return DiffusersModel(pipeline, height=self.height, width=self.width)


def _vp(sigma: Tensor) -> tuple[Tensor, Tensor]:
    return Process("vp").coefficients(sigma)


def _is_sdxl(pipeline: Any) -> bool:
    return any(c.__name__ == "StableDiffusionXLPipeline" for c in type(pipeline).mro())


class DiffusersAdapter(PipelineFolder):
    """A Stable Diffusion (1.x/2.x, epsilon or v-prediction) or SDXL pipeline folder.

    The folder is what ``save_pretrained`` writes (``model_index.json`` plus one folder per
    component); weights must be safetensors. Loading happens in `load`, never on validation, so a
    config file can be checked without touching the weights.
    """

    name: ClassVar[str] = "diffusers"

    variant: str | None = Field(
        None, description="Weights variant to load, e.g. 'fp16' (diffusion_pytorch_model.fp16.*)."
    )

    def pipeline_class(self) -> str:
        """The pipeline class named by the folder's ``model_index.json``, checked."""
        return pipeline_class(self.path, PIPELINES)

    def load(self) -> ModelAdapter:
        pipe = load_pipeline_folder(self.path, PIPELINES, self.dtype, self.device, self.variant)
        return DiffusersModel(pipe, height=self.height, width=self.width)
