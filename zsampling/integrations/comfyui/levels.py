"""ComfyUI's levels as zsampling levels: the process of a model, and sigmas both ways.

ComfyUI's samplers step in one of two spaces, which its ``model_sampling`` object decides by how
it noises a latent (``noise_scaling``):

- ``x = x0 + sigma * eps`` (EPS, V-prediction, EDM, ... : every SD-family model): zsampling's
  ``ve`` process, and ComfyUI's sigma *is* the zsampling level.
- ``x = (1 - sigma) * x0 + sigma * eps`` (``CONST``: SD3, FLUX, AuraFlow, ...): zsampling's
  ``flow`` process, whose level is ``t / (1 - t)`` for ComfyUI's sigma ``t`` (``inf`` at ``t = 1``).

The space is read from ``noise_scaling`` itself rather than from class names, so a model sampling
class ComfyUI adds later is placed by what it does. In both spaces ComfyUI's ``euler`` is the DDIM
step in x0 form, so zsampling's Euler reproduces it; multistep solvers and the ``target`` /
``official`` zags need the right process, which is why it matters.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from zsampling.adapters.kdiffusion import table_from_sigmas
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process, TimestepTable, sigma_from_t, t_from_sigma

Family = Literal["sd", "sdxl"]


def process_of(model_sampling: Any) -> Process:
    """``ve`` or ``flow``, from how ``model_sampling`` noises a latent (module docstring)."""
    probe = torch.ones(1, 1)
    half = torch.full((1,), 0.5)
    alpha = float(model_sampling.noise_scaling(half, probe * 0, probe.clone()).flatten()[0])
    s = float(model_sampling.noise_scaling(half, probe.clone(), probe * 0).flatten()[0])
    if abs(s - 0.5) < 1e-6 and abs(alpha - 1.0) < 1e-6:
        return Process("ve")
    if abs(s - 0.5) < 1e-6 and abs(alpha - 0.5) < 1e-6:
        return Process("flow")
    raise InvalidArgument(
        "model",
        type(model_sampling).__name__,
        "a model whose sampling noises latents as x0 + sigma*eps (SD family) or "
        "(1 - sigma)*x0 + sigma*eps (flow models such as SD3 and FLUX)",
    )


def to_levels(sigmas: Tensor, process: Process) -> Tensor:
    """zsampling levels (float64, on the CPU) of ComfyUI sigmas."""
    s = sigmas.detach().to(device="cpu", dtype=torch.float64)
    return sigma_from_t(s) if process.name == "flow" else s


def to_comfy(levels: Tensor, process: Process) -> Tensor:
    """ComfyUI sigmas (float64) of zsampling levels."""
    s = levels.to(torch.float64)
    return t_from_sigma(s) if process.name == "flow" else s


class ModelSamplingLadder:
    """A ComfyUI model sampling object seen as a `zsampling.schedules.space.Ladder` (float64)."""

    def __init__(self, model_sampling: Any) -> None:
        self.model_sampling = model_sampling
        self.sigmas = model_sampling.sigmas.detach().cpu().to(torch.float64)

    def sigma(self, timestep: Tensor) -> Tensor:
        return torch.as_tensor(self.model_sampling.sigma(timestep.float())).to(torch.float64)

    def timestep(self, sigma: Tensor) -> Tensor:
        return torch.as_tensor(self.model_sampling.timestep(sigma.float())).to(torch.float64)


class ComfyLevels:
    """What zsampling's schedules need to know about a ComfyUI model: its levels.

    Implements the level half of `zsampling.core.model.ModelAdapter` (``process``, ``table``,
    ``sigma_range``, ``family``, ``dtype``, ``device``): a SIGMAS node hands it to a schedule,
    and the sampler run builds its path from it.
    """

    def __init__(self, model_sampling: Any, family: Family | None = None) -> None:
        self.model_sampling = model_sampling
        self.process = process_of(model_sampling)
        if family is not None:
            self.family: Family = family
        self.dtype = torch.float32
        self.device = torch.device("cpu")

    @property
    def table(self) -> TimestepTable | None:
        """The discrete training grid of an SD-family model (None for continuous or flow ones)."""
        sigmas = getattr(self.model_sampling, "sigmas", None)
        if self.process.name != "ve" or not isinstance(sigmas, Tensor) or sigmas.ndim != 1:
            return None
        return table_from_sigmas(sigmas)

    def sigma_ladder(self) -> ModelSamplingLadder | None:
        """The model sampling object's own ladder and timestep maps, which ComfyUI's schedulers
        read (`zsampling.schedules.space`); None when it has no ladder."""
        sigmas = getattr(self.model_sampling, "sigmas", None)
        if not isinstance(sigmas, Tensor) or sigmas.ndim != 1:
            return None
        return ModelSamplingLadder(self.model_sampling)

    def sigma_range(self) -> tuple[float, float]:
        lo = float(self.model_sampling.sigma_min)
        hi = float(self.model_sampling.sigma_max)
        if self.process.name == "flow":
            lo, hi = (float(v) for v in sigma_from_t(torch.tensor([lo, hi], dtype=torch.float64)))
        return lo, hi


def family_of(model_config: Any) -> Family | None:
    """``sd`` or ``sdxl`` for ComfyUI's SD 1.x/2.x and SDXL model configs (AYS's auto choice)."""
    import comfy.supported_models as supported

    if isinstance(model_config, (supported.SDXL, supported.SDXLRefiner)):
        return "sdxl"
    if isinstance(model_config, (supported.SD15, supported.SD20)):
        return "sd"
    return None


def levels_of(patcher: Any) -> ComfyLevels:
    """The `ComfyLevels` of a ComfyUI ``ModelPatcher`` (a MODEL socket's value)."""
    model_sampling = patcher.get_model_object("model_sampling")
    return ComfyLevels(model_sampling, family_of(getattr(patcher.model, "model_config", None)))
