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

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from zsampling.adapters.folders import PipelineFolder, load_pipeline_folder, pipeline_class
from zsampling.adapters.perturbation import UNET_STACK, PipelineNetwork
from zsampling.core.casts import cast, prediction_dtype
from zsampling.core.errors import InvalidArgument
from zsampling.core.inference import inference
from zsampling.core.levels import Process, RowLevels, TimestepTable
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction

if TYPE_CHECKING:
    from PIL.Image import Image

PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")
PREDICTION_TYPES = ("epsilon", "v_prediction")


class DiffusersModel(PipelineNetwork):
    """A `ModelAdapter` over a ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``.

    ``height`` and ``width`` (pixels) default to the pipeline's own default image size. The
    pipeline object is used, not copied: patches that must not touch it (``unet-weights``) build
    a new pipeline sharing the other components and wrap that with `with_pipeline`.
    """

    process = Process("vp")
    stack: ClassVar[str] = UNET_STACK

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
        self.table = timestep_table(
            pipeline.scheduler.alphas_cumprod,
            int(config.get("steps_offset", 0)),
            bool(config.get("set_alpha_to_one", True)),
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
        self.dtype, self.device = unet_place(pipeline.unet)
        self.levels = self.table.row_levels

    # -- the ModelAdapter protocol ------------------------------------------------------------

    @property
    def network(self) -> Any:
        return self.pipeline.unet

    unet = network

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

    @inference
    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        """One UNet call at ``timestep = table.timestep(sigma)``, the latent fed as it is (in the
        UNet's dtype); the pair is derived in float64 and returned in the latent's dtype."""
        levels = self.levels(sigma, x.device, x.ndim)
        added = None
        if self.family == "sdxl":
            added = {k: cond[k] for k in ("text_embeds", "time_ids") if k in cond}
        out = self.unet(
            cast(x, self.dtype),
            levels.timesteps,
            encoder_hidden_states=cond["encoder_hidden_states"],
            added_cond_kwargs=added or None,
            return_dict=False,
        )[0]
        if self.prediction_type == "epsilon":
            return from_eps(x, out, levels)
        return from_v(x, out, levels)

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


#: `timestep_table`'s tables, by the identity of the scheduler's ``alphas_cumprod`` and settings.
_TABLES: dict[tuple[int, int, bool], TimestepTable] = {}


def timestep_table(
    alphas_cumprod: Tensor, steps_offset: int, set_alpha_to_one: bool
) -> TimestepTable:
    """The `TimestepTable` over a scheduler's own ``alphas_cumprod`` tensor (so our levels are
    bit-identical to diffusers'), one per tensor and settings: its derived grids are computed
    once, not on every ``generate``. (Each table holds its tensor, so an id is never reused
    while its entry lives; at most 64 are kept.)"""
    key = (id(alphas_cumprod), steps_offset, set_alpha_to_one)
    table = _TABLES.get(key)
    if table is None or table.alphas_cumprod is not alphas_cumprod:
        if len(_TABLES) >= 64:
            _TABLES.clear()
        table = _TABLES[key] = TimestepTable(alphas_cumprod, steps_offset, set_alpha_to_one)
    return table


#: What `unet_place` found, per UNet: (its first parameter's dtype and device, the answer).
_PLACES: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], tuple[torch.dtype, torch.device]]]
_PLACES = weakref.WeakKeyDictionary()


def unet_place(unet: Any) -> tuple[torch.dtype, torch.device]:
    """The UNet's ``dtype`` and ``device`` as diffusers reports them (its properties honour
    casting and offloading hooks, and walk every submodule to do so: a millisecond per call on a
    tiny UNet, more on SDXL's, paid on every ``generate``). The answer is kept per UNet while its
    first parameter keeps its dtype and device (``.to()``, casting and offloading change them)."""
    first = next(iter(unet.parameters()), None)
    probe = (first.dtype, first.device) if first is not None else ()
    try:
        hit = _PLACES.get(unet)
    except TypeError:  # not weakly referenceable: ask every time
        return unet.dtype, unet.device
    if hit is not None and hit[0] == probe:
        return hit[1]
    place = (unet.dtype, unet.device)
    _PLACES[unet] = (probe, place)
    return place


def from_eps(x: Tensor, eps: Tensor, levels: RowLevels) -> Prediction:
    """The pair from an epsilon prediction: ``eps`` as the network gave it, ``x0 = (x - s * eps)
    / alpha`` in float64 when first read (`Prediction.from_eps`). Both in `prediction_dtype`
    (the latent's; float32 for half)."""
    alpha, s = levels.shared if levels.shared is not None else (levels.alpha, levels.s)
    assert alpha is not None and s is not None
    return Prediction.from_eps(x, eps, alpha, s, prediction_dtype(x.dtype))


def from_v(x: Tensor, v: Tensor, levels: RowLevels) -> Prediction:
    """The pair from a v prediction, ``v = alpha * eps - s * x0``; with ``alpha^2 + s^2 = 1``:
    ``x0 = alpha * x - s * v`` and ``eps = s * x + alpha * v`` (in float64)."""
    x64, v64 = x.to(torch.float64), v.to(torch.float64)
    alpha: Any = levels.alpha
    s: Any = levels.s
    if levels.shared is not None:
        alpha, s = levels.shared
    x0 = alpha * x64 - s * v64
    eps = s * x64 + alpha * v64
    dtype = prediction_dtype(x.dtype)
    return Prediction(cast(x0, dtype), cast(eps, dtype))


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
    compile: bool = Field(
        False,
        description="torch.compile the UNet (compiles during the first step: both CFG branches, "
        "and a zigzag's unconditional zag; never again in a run).",
    )

    def pipeline_class(self) -> str:
        """The pipeline class named by the folder's ``model_index.json``, checked."""
        return pipeline_class(self.path, PIPELINES)

    def load(self) -> ModelAdapter:
        pipe = load_pipeline_folder(self.path, PIPELINES, self.dtype, self.device, self.variant)
        if self.compile:
            pipe.unet = torch.compile(pipe.unet)
        return DiffusersModel(pipe, height=self.height, width=self.width)
