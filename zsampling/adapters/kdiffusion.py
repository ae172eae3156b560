"""k-diffusion denoisers as zsampling models.

A k-diffusion *denoiser* is any callable ``denoiser(x, sigma, **extra_args) -> x0`` in
k-diffusion's VE space (``x = x0 + sigma * eps``): ``k_diffusion.external.CompVisDenoiser``,
``DiscreteEpsDDPMDenoiser`` / ``DiscreteVDDPMDenoiser`` around a diffusers UNet, a trained
``k_diffusion`` model, ... `KDiffusionModel` answers the `zsampling.core.model.ModelAdapter`
protocol for it, so every zsampling sampler, solver and schedule runs on it::

    from k_diffusion.external import DiscreteEpsDDPMDenoiser
    from zsampling import Karras, Zigzag, sample
    from zsampling.adapters.kdiffusion import KDiffusionModel, UNetEps

    denoiser = DiscreteEpsDDPMDenoiser(UNetEps(pipe.unet), pipe.scheduler.alphas_cumprod, False)
    model = KDiffusionModel(denoiser, latent_shape=(4, 64, 64))
    cond = {"encoder_hidden_states": text}       # the denoiser's keyword arguments, batch-first
    uncond = {"encoder_hidden_states": empty}
    out = sample(model, Zigzag(guidance=5.5), conditioning=(cond, uncond),
                 schedule=Karras(steps=30), seeds=[0])

How conditioning works: a `Conditioning` is the dict of keyword arguments the denoiser takes for one
branch (``{"cond": c}`` for ``CompVisDenoiser``, ``{"encoder_hidden_states": c}`` for
`UNetEps`); zsampling's guider concatenates the two branches row-wise and applies its own scale
on every call, so the denoiser itself must not do CFG. (Tools whose denoiser already does CFG use
the sampler functions of `zsampling.integrations.kdiffusion` with ``cfg="model"``.)

Levels are k-diffusion sigmas, the latent is k-diffusion's (process ``ve``: alpha = 1, s = sigma;
the starting noise is ``sigma_max * noise`` as in k-diffusion). ``predict`` returns
``x0 = denoiser(x, sigma)`` and ``eps = (x - x0) / sigma``. At sigma 0 (inverting from a clean
latent) eps is taken from the denoiser at the model's smallest level.

A denoiser with a discrete ``sigmas`` table (every ``k_diffusion.external.DiscreteSchedule``) gets
a `TimestepTable` built from it, so the ``uniform``, ``scheduler``-free ``align-your-steps`` and
``karras`` schedules all work; pass ``family="sd"`` or ``"sdxl"`` for the ``align-your-steps``
schedule's auto choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from zsampling.adapters.folders import PipelineFolder
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process, TimestepTable
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.prediction import Prediction

Encoder = Callable[[list[str], list[str] | None], tuple[Conditioning, Conditioning]]
"""``encoder(prompts, negative_prompts) -> (cond, uncond)``, one row per prompt; the same contract
as `ModelAdapter.encode` (``negative_prompts=None`` means the model's default unconditional)."""

KDIFFUSION_MISSING = (
    "an environment with k-diffusion: pip install 'zsampling[kdiffusion]' next to torch and "
    "torchvision builds that match (k-diffusion imports torchvision)"
)


def table_from_sigmas(
    sigmas: Tensor, steps_offset: int = 1, set_alpha_to_one: bool = False
) -> TimestepTable:
    """The `TimestepTable` of a discrete VE sigma table (ascending, one level per timestep).

    ``alphas_cumprod = 1 / (1 + sigma^2)`` in float64, so ``table.sigmas`` gives back the
    denoiser's levels (to float64 rounding: exactly, once cast to the denoiser's float32).
    """
    s = sigmas.detach().to(device="cpu", dtype=torch.float64).flatten()
    if s.numel() < 2 or bool((s <= 0).any()) or not bool((s[1:] > s[:-1]).all()):
        raise InvalidArgument("denoiser.sigmas", tuple(s.shape), "an ascending table of levels > 0")
    return TimestepTable(1.0 / (1.0 + s**2), steps_offset, set_alpha_to_one)


class UNetEps(nn.Module):
    """A diffusers ``UNet2DConditionModel`` as the plain ``eps = model(x, t, **cond)`` callable
    that ``k_diffusion.external.DiscreteEpsDDPMDenoiser`` (and ``DiscreteVDDPMDenoiser``) wrap.

    SDXL's added conditioning is taken as the keyword arguments ``text_embeds`` and ``time_ids``.
    """

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        encoder_hidden_states: Tensor,
        text_embeds: Tensor | None = None,
        time_ids: Tensor | None = None,
    ) -> Tensor:
        added = None
        if text_embeds is not None and time_ids is not None:
            added = {"text_embeds": text_embeds, "time_ids": time_ids}
        out: Tensor = self.unet(
            x,
            t,
            encoder_hidden_states=encoder_hidden_states,
            added_cond_kwargs=added,
            return_dict=False,
        )[0]
        return out


class KDiffusionModel:
    """A `ModelAdapter` over a k-diffusion denoiser ``denoiser(x, sigma, **kwargs) -> x0``.

    ``latent_shape`` is one latent without the batch dimension. ``encoder`` turns prompts into
    the denoiser's keyword arguments (without one, pass ready ``conditioning`` to
    `zsampling.sample`); ``decoder`` turns final latents into outputs (default: the latents).
    ``table`` defaults to the one built from ``denoiser.sigmas``; ``sigma_range`` to the table's
    ends or the denoiser's ``sigma_min``/``sigma_max``. ``extra_args`` are passed unchanged to every
    call (non-tensor options such as a ``model_options`` dict).
    """

    process = Process("ve")

    def __init__(
        self,
        denoiser: Callable[..., Tensor],
        latent_shape: Sequence[int],
        *,
        encoder: Encoder | None = None,
        decoder: Callable[[Tensor], Any] | None = None,
        table: TimestepTable | None = None,
        sigma_range: tuple[float, float] | None = None,
        family: Literal["sd", "sdxl"] | None = None,
        extra_args: Mapping[str, Any] | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.denoiser = denoiser
        self._latent_shape = tuple(int(d) for d in latent_shape)
        self.encoder = encoder
        self.decoder = decoder
        sigmas = getattr(denoiser, "sigmas", None)
        if table is None and isinstance(sigmas, Tensor) and sigmas.ndim == 1:
            table = table_from_sigmas(sigmas)
        self.table: TimestepTable | None = table
        self._sigma_range = sigma_range
        if family is not None:
            self.family: Literal["sd", "sdxl"] = family
        self.extra_args = dict(extra_args or {})
        param = next(iter(denoiser.parameters()), None) if isinstance(denoiser, nn.Module) else None
        self.dtype: torch.dtype = dtype or (param.dtype if param is not None else torch.float32)
        self.device: torch.device = torch.device(
            device if device is not None else (param.device if param is not None else "cpu")
        )

    def latent_shape(self) -> tuple[int, ...]:
        return self._latent_shape

    def sigma_range(self) -> tuple[float, float]:
        if self._sigma_range is not None:
            return self._sigma_range
        if self.table is not None:
            sig = self.table.sigmas
            return float(sig[0]), float(sig[-1])
        lo, hi = (
            getattr(self.denoiser, "sigma_min", None),
            getattr(self.denoiser, "sigma_max", None),
        )
        if lo is None or hi is None:
            raise InvalidArgument(
                "sigma_range",
                None,
                "(sigma_min, sigma_max): this denoiser has no sigma table; pass sigma_range= "
                "to KDiffusionModel or explicit sigmas",
            )
        return float(lo), float(hi)

    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        if self.encoder is None:
            raise InvalidArgument(
                "prompts",
                list(prompts),
                "ready conditioning: a k-diffusion denoiser has no text encoder, so pass "
                "conditioning=(cond, uncond) (the denoiser's keyword arguments per branch) or give "
                "KDiffusionModel an encoder",
            )
        negatives = list(negative_prompts) if negative_prompts is not None else None
        if negatives is not None and len(negatives) != len(prompts):
            raise InvalidArgument(
                "negative_prompts", negatives, f"one negative prompt per prompt ({len(prompts)})"
            )
        return self.encoder(list(prompts), negatives)

    @torch.no_grad()
    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        return self.predict_args(x, sigma, cond)

    @torch.no_grad()
    def predict_args(self, x: Tensor, sigma: Tensor, kwargs: Mapping[str, Any]) -> Prediction:
        """`predict` with arbitrary keyword arguments for the denoiser (tensors or not).

        ``no_grad`` rather than ``inference_mode``: the tools that host k-diffusion samplers
        reuse the latents afterwards, which inference tensors would forbid.
        """
        sig = sigma.to(torch.float64).cpu()
        clean = sig == 0
        if bool(clean.any()):
            sig = torch.where(clean, torch.full_like(sig, self.sigma_range()[0]), sig)
        # k-diffusion samplers hand denoisers sigma in the latent's dtype
        denoised = self.denoiser(
            x, sig.to(device=x.device, dtype=x.dtype), **self.extra_args, **kwargs
        )
        shape = (-1, *([1] * (x.ndim - 1)))
        x64, d64 = x.to(torch.float64), denoised.to(torch.float64)
        eps = (x64 - d64) / sig.to(x.device).view(shape)
        x0 = torch.where(clean.to(x.device).view(shape), x64, d64)
        return Prediction(x0.to(x.dtype), eps.to(x.dtype))

    def decode(self, x: Tensor) -> Any:
        return x if self.decoder is None else self.decoder(x)


def import_kdiffusion_external() -> Any:
    """``k_diffusion.external``, or a clear error saying how to install it."""
    try:
        import k_diffusion.external as external
    except ImportError as err:
        raise InvalidArgument("model.use", "k-diffusion", f"{KDIFFUSION_MISSING} ({err})") from None
    return external


class KDiffusionAdapter(PipelineFolder):
    """A diffusers SD / SDXL pipeline folder whose UNet runs through k-diffusion's own wrapper
    (``DiscreteEpsDDPMDenoiser`` or, for v-prediction, ``DiscreteVDDPMDenoiser``).

    Needs k-diffusion installed (the ``kdiffusion`` extra). Prompts are encoded and latents decoded
    by the pipeline itself (as the ``diffusers`` adapter does); latents are k-diffusion's VE ones.
    """

    name: ClassVar[str] = "k-diffusion"

    quantize: bool = Field(
        False, description="Round timesteps to the training grid (k-diffusion's quantize)."
    )

    def load(self) -> ModelAdapter:
        from zsampling.adapters.diffusers import DiffusersAdapter

        external = import_kdiffusion_external()
        folder = self.model_dump(include=set(PipelineFolder.model_fields))
        pipeline_model = DiffusersAdapter(**folder).load()
        return kdiffusion_model_from_pipeline(pipeline_model, external, self.quantize)


def kdiffusion_model_from_pipeline(
    pipeline_model: Any, external: Any = None, quantize: bool = False
) -> KDiffusionModel:
    """Wrap a `zsampling.adapters.diffusers.DiffusersModel`'s UNet in k-diffusion's DDPM denoiser.

    Encoding (``encode_prompt``) and decoding (VAE) stay the pipeline's. The wrapper feeds the UNet
    ``x_ve / sqrt(1 + sigma^2)`` (the VP latent); at the end of a schedule (sigma 0) the VE and VP
    latents coincide, so the pipeline's VAE decodes the result as it is.
    """
    external = external or import_kdiffusion_external()
    pipe = pipeline_model.pipeline
    wrapper = (
        external.DiscreteVDDPMDenoiser
        if pipeline_model.prediction_type == "v_prediction"
        else external.DiscreteEpsDDPMDenoiser
    )
    denoiser = wrapper(UNetEps(pipe.unet), pipe.scheduler.alphas_cumprod, quantize)
    grid = pipeline_model.table
    return KDiffusionModel(
        denoiser,
        pipeline_model.latent_shape(),
        encoder=pipeline_model.encode,
        decoder=pipeline_model.decode,
        # the wrapper's own (float32) levels, with the pipeline's DDIM conventions
        table=table_from_sigmas(denoiser.sigmas, grid.steps_offset, grid.set_alpha_to_one),
        family=pipeline_model.family,
        dtype=pipeline_model.dtype,
        device=pipeline_model.device,
    )
