"""The composition matrix: every built-in guider x sampler x solver x schedule runs on exact models,
stays finite, and its counter agrees with the model evaluations actually made.

The schedules are taken from the registry's built-ins, so a new built-in joins the matrix by being
registered. ``scheduler`` needs a model with a diffusers scheduler config and ``flow-match`` a
flow-matching model, so the analytic mixture is given one of each: the VP model its SD scheduler
config (the grid it already uses), and a flow-matching twin of it with exact predictions.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
from spies import ModelSpy
from torch import Tensor

from zsampling import StepEvent, sample
from zsampling.adapters.analytic import AnalyticModel, GaussianMixture, demo_mixture
from zsampling.core.levels import Process
from zsampling.core.model import Conditioning
from zsampling.core.prediction import Prediction
from zsampling.plugins.builtins import BUILTINS

STEPS = 6
SETTINGS: dict[str, dict[str, Any]] = {
    # guidance 3 on the way down, 1.5 up: every path move evaluates both branches
    "standard": {"guidance": 3.0},
    "zigzag": {"guidance": 3.0, "inversion_guidance": 1.5},
    "asymmetry-zigzag": {"guidance": 3.0, "inversion_guidance": 1.5, "zag_prompt": "green"},
    "restart": {"guidance": 3.0, "restart_min": 0.3, "restart_max": 2.0, "rounds": 1},
    "w2sd": {"guidance": 3.0, "weak_guidance": 1.5},
    "align-your-steps": {"model": "sd"},
    "scheduler": {"scheduler": "DDIMScheduler"},
}


class ScheduledAnalytic(AnalyticModel):
    """The VP analytic model with the diffusers scheduler config of its own (SD) grid."""

    scheduler_config = DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        clip_sample=False,
        set_alpha_to_one=False,
    ).config


class FlowAnalytic(AnalyticModel):
    """The same mixture under the flow process ``x = (1 - t) x0 + t eps``, exact at every level
    including pure noise (t = 1, alpha = 0): ``x0`` is the posterior mean over components."""

    process = Process("flow")
    scheduler_config = FlowMatchEulerDiscreteScheduler(shift=3.0).config

    def __init__(self, mixture: GaussianMixture) -> None:
        super().__init__(mixture)
        self.table = None  # type: ignore[assignment]

    def sigma_range(self) -> tuple[float, float]:
        return 0.0, math.inf

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        alpha, s = self.process.coefficients(sigma)
        m = self.mixture
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        logits, var = m._component_logits(flat, alpha, s)
        weights = torch.softmax(m._masked(logits, cond["label"]), dim=1).unsqueeze(-1)
        a = alpha.view(-1, 1, 1)
        means = m.means.unsqueeze(0)
        posterior = means + a * m.variances.unsqueeze(0) / var * (flat.unsqueeze(1) - a * means)
        x0 = (weights * posterior).sum(1)
        eps = -s.view(-1, 1) * m.score(flat, alpha, s, cond["label"])
        return Prediction(x0.reshape(x.shape).to(x.dtype), eps.reshape(x.shape).to(x.dtype))


def names(kind: str) -> list[str]:
    return [cls.name for cls in BUILTINS[kind]]  # type: ignore[index,attr-defined]


EMBEDDED_ONLY = ("true-cfg",)
"""Guiders for models that take the scale as an input (FLUX.1-dev): tests/test_flux.py."""
GUIDERS = [g for g in names("guider") if g not in EMBEDDED_ONLY]
EXTRA_EVALUATIONS = ("dpm2-ancestral", "dpmpp-2s-ancestral", "dpmpp-sde")
"""Solvers whose step makes further guided evaluations (its counter has more calls than moves)."""


def build(kind: str, name: str, **extra: Any) -> Any:
    [cls] = [c for c in BUILTINS[kind] if c.name == name]  # type: ignore[index,attr-defined]
    return cls(**{**SETTINGS.get(name, {}), **extra})


def test_the_matrix_covers_every_builtin() -> None:
    assert names("guider") == ["cfg", "apg", "cfg-zero-star", "tangential-cfg", "true-cfg"]
    assert GUIDERS == ["cfg", "apg", "cfg-zero-star", "tangential-cfg"]
    assert (
        len(GUIDERS) * len(names("sampler")) * len(names("solver")) * len(names("schedule"))
        == 4 * 5 * 12 * 5
    )


@pytest.mark.parametrize("schedule", names("schedule"))
@pytest.mark.parametrize("sampler", names("sampler"))
def test_every_guider_and_solver_composes(schedule: str, sampler: str) -> None:
    kind = FlowAnalytic if schedule == "flow-match" else ScheduledAnalytic
    weak_mixture = demo_mixture()
    weak_mixture = GaussianMixture(
        weak_mixture.means,
        weak_mixture.variances * 1.5,
        weak_mixture.weights,
        weak_mixture.labels,
        weak_mixture.class_names,
    )
    for guider in GUIDERS:
        for solver in names("solver"):
            main, weak = ModelSpy(kind(demo_mixture())), ModelSpy(kind(weak_mixture))
            moves: list[StepEvent] = []
            result = sample(
                main,  # type: ignore[arg-type]
                build("sampler", sampler),
                prompts=["red", "blue"],
                seeds=[0, 1],
                schedule=build("schedule", schedule, steps=STEPS),
                solver=build("solver", solver),
                guider=build("guider", guider),
                observers=[moves.append],
                extra_models={"weak": weak} if sampler == "w2sd" else None,  # type: ignore[dict-item]
            )
            where = f"{guider} x {sampler} x {solver} x {schedule}"
            assert bool(torch.isfinite(result.latents).all()), where
            c = result.counter
            guided = sum(e.kind in ("denoise", "invert") for e in moves)
            calls = c.guided_calls
            assert calls == guided > STEPS - 1 or solver in EXTRA_EVALUATIONS, where
            assert calls > guided or solver not in EXTRA_EVALUATIONS, where
            assert c.model_calls == len(main.calls) + len(weak.calls) == calls, where
            assert c.rows == sum(main.rows) + sum(weak.rows) == 4 * calls, where
            assert c.cond_rows == c.uncond_rows == 2 * calls, where
