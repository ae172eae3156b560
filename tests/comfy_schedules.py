"""ComfyUI's model samplings and zsampling models with the same levels, for the schedule parity
tests (tests/test_comfyui_schedules.py) and the docs' table (docs/scripts/schedule_parity.py).
Import after `comfy_tiny.import_comfyui`.
"""

from __future__ import annotations

from typing import Any

import comfy.model_sampling as cms
import torch
from torch import Tensor

from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.core.levels import Process, TimestepTable, t_from_sigma
from zsampling.plugins.manager import build_registry

STEPS = (5, 10, 25, 50)
#: zsampling's name -> ComfyUI's (karras on flow models is the level-space one: not compared).
COMFY_NAMES = {
    "simple": "simple",
    "sgm-uniform": "sgm_uniform",
    "exponential": "exponential",
    "ddim-uniform": "ddim_uniform",
    "beta": "beta",
    "normal": "normal",
    "linear-quadratic": "linear_quadratic",
    "kl-optimal": "kl_optimal",
}
FLUX_MU = 1.15
TOLERANCE = 1e-5  # ComfyUI computes in float32


class FlowConfigModel:
    """A flow model as zsampling's diffusers flow adapters present it: a process and the
    scheduler config (SD3: a fixed shift; FLUX: dynamic shifting, ``mu`` from the image size)."""

    process = Process("flow")
    table = None

    def __init__(self, config: dict[str, Any], mu: float | None = None) -> None:
        self.scheduler_config = config
        self.mu = mu

    def dynamic_shift_mu(self, config: Any) -> float:
        assert self.mu is not None
        return self.mu

    def sigma_range(self) -> tuple[float, float]:
        raise AssertionError("the ladder's ends are used, not the range")


def comfy_sampling(kind: str) -> Any:
    """ComfyUI's model sampling object of each kind, as its model classes compose them."""
    if kind in ("sd-eps", "sd-v"):
        pred = cms.EPS if kind == "sd-eps" else cms.V_PREDICTION
        return type("MS", (cms.ModelSamplingDiscrete, pred), {})()
    if kind == "sd3":
        ms = type("MS", (cms.ModelSamplingDiscreteFlow, cms.CONST), {})()
        ms.set_parameters(shift=3.0)
        return ms
    ms = type("MS", (cms.ModelSamplingFlux, cms.CONST), {})()
    ms.set_parameters(shift=FLUX_MU)
    return ms


#: SD's scaled-linear table computed in float64, as ComfyUI does (diffusers, and zsampling's
#: adapters with it, cumulate in float32: a 1e-5 relative difference at the top of the ladder).
SD_TABLE_FLOAT64 = TimestepTable(
    torch.cumprod(1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2, 0)
)


def our_model(kind: str) -> Any:
    if kind in ("sd-eps", "sd-v"):
        return AnalyticModel(demo_mixture(), SD_TABLE_FLOAT64)
    if kind == "sd3":
        return FlowConfigModel({"num_train_timesteps": 1000, "shift": 3.0})
    return FlowConfigModel({"num_train_timesteps": 1000, "use_dynamic_shifting": True}, FLUX_MU)


def worst(ours: Tensor, ref: Tensor) -> float:
    """Largest element-wise relative difference (zeros must match exactly)."""
    ours, ref = ours.double(), ref.double()
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    zero = ref == 0
    assert bool((ours[zero] == 0).all()), (ours, ref)
    return float(((ours[~zero] - ref[~zero]).abs() / ref[~zero]).max())


def schedule(name: str, steps: int, **settings: Any) -> Any:
    return build_registry().lookup("schedule", name).cls(steps=steps, **settings)  # type: ignore[union-attr]


def in_comfy_space(levels: Tensor, model: Any) -> Tensor:
    return t_from_sigma(levels) if model.process.name == "flow" else levels


KINDS = ("sd-eps", "sd-v", "sd3", "flux")
