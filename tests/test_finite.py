"""The path's NaN/inf check: recorded on the latents' device at every move, read in batches.

On the CPU the check must still stop a run and name the first move that made a non-finite
latent; on CUDA it must cost no host synchronisation per step (counted with torch's sync debug
mode, where a CUDA device is available).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import pytest
import torch
from pydantic import BaseModel

from zsampling import CFG, DDIM, NonFiniteLatents, SamplingPath, Standard, Uniform, sample
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.core.finite import READ_EVERY
from zsampling.core.levels import Process
from zsampling.core.prediction import Prediction


class PoisonedModel(AnalyticModel):
    """The analytic model, whose prediction number ``poison`` (from 0) is NaN."""

    def __init__(self, poison: int) -> None:
        super().__init__(demo_mixture())
        self.poison = poison
        self.calls = 0

    def predict(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Prediction:
        pred = super().predict(x, sigma, cond)
        self.calls += 1
        if self.calls - 1 == self.poison:
            return Prediction(pred.x0 * math.nan, pred.eps * math.nan)
        return pred


def path_of(model: AnalyticModel, steps: int) -> tuple[SamplingPath, torch.Tensor]:
    cond, uncond = model.encode(["red"])
    sigmas = Uniform(steps=steps).sigmas(model)
    guider = CFG(skip_unused_branches=False).bind(model, cond, uncond)
    path = SamplingPath(sigmas, model.process, {"main": guider}, DDIM())
    return path, torch.tensor([[0.3, -0.2]]) * float(sigmas[0])


def test_a_nan_is_read_when_sampling_ends_and_names_its_step() -> None:
    """Poisoned at step 2 of 6: the sampler runs on (no read before the end), and the error,
    raised by ``finish``, names step 2->3, not a later step whose latent is NaN too."""
    model = PoisonedModel(poison=2)
    path, x = path_of(model, 6)
    out = Standard(guidance=2.0).sample(x, path)
    assert model.calls == 6 and torch.isnan(out).all()  # the steps after it ran
    assert path.finite.reads == 0
    with pytest.raises(NonFiniteLatents, match=r"latent after denoise step 2->3 \(sigma "):
        path.finish()
    assert path.finite.reads == 1


def test_the_flags_are_read_every_few_moves() -> None:
    """A long run reads once per READ_EVERY moves (and stops there), not once per move."""
    steps = 2 * READ_EVERY + 3
    path, x = path_of(AnalyticModel(demo_mixture()), steps)
    Standard(guidance=2.0).sample(x, path)
    assert path.finite.reads == 2
    path.finish()
    assert path.finite.reads == 3

    model = PoisonedModel(poison=1)
    path, x = path_of(model, steps)
    with pytest.raises(NonFiniteLatents, match="denoise step 1->2"):
        Standard(guidance=2.0).sample(x, path)
    assert model.calls == READ_EVERY  # stopped at the first read


class RaisesOnNaN(BaseModel):
    """A sampler that fails when it meets the NaN latent the model made."""

    name: ClassVar[str] = "raises-on-nan"

    def sample(self, x: torch.Tensor, path: SamplingPath) -> torch.Tensor:
        for i in range(path.steps):
            x = path.denoise(x, i, 2.0)
            if torch.isnan(x).any():
                raise ValueError("a NaN reached my sampler")
        return x


def test_sample_reports_the_nan_first() -> None:
    """Through ``sample()``: the step is named with the model's hint; a sampler that failed
    because of the NaN gets the NaN reported, its own error chained."""
    run = {"prompts": ["red"], "seeds": [0], "schedule": Uniform(steps=5)}
    with pytest.raises(NonFiniteLatents, match=r"denoise step 3->4.*lower the guidance"):
        sample(PoisonedModel(poison=3), Standard(guidance=2.0), **run)  # type: ignore[arg-type]
    with pytest.raises(NonFiniteLatents, match="denoise step 1->2") as info:
        sample(PoisonedModel(poison=1), RaisesOnNaN(), **run)  # type: ignore[arg-type]
    assert isinstance(info.value.__context__, ValueError)


class LinearCudaModel:
    """A model whose every operation stays on the GPU: eps = x / 4 (no host reads of its own)."""

    process = Process("vp")
    dtype = torch.float32

    def __init__(self, device: str = "cuda") -> None:
        self.device = torch.device(device)
        self.analytic = AnalyticModel(demo_mixture())
        self.table = self.analytic.table  # SD's timestep grid, for the uniform schedule

    def latent_shape(self) -> tuple[int, ...]:
        return (4, 8, 8)

    def sigma_range(self) -> tuple[float, float]:
        return self.analytic.sigma_range()

    def encode(self, prompts: Any, negative_prompts: Any = None) -> tuple[Any, Any]:
        ones = torch.ones(len(prompts), device=self.device)
        return {"scale": ones}, {"scale": ones * 0.5}

    def predict(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Prediction:
        alpha, s = self.process.point(float(sigma[0]))  # sigma is a CPU tensor: no device read
        eps = x * cond["scale"].view(-1, 1, 1, 1) / 4
        return Prediction.from_eps(x, eps, alpha, s)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_the_gpu_model_runs_on_the_cpu_too() -> None:
    """The model the CUDA test counts with is a working model (checked where it can run)."""
    model = LinearCudaModel("cpu")
    run = {"prompts": ["a"], "seeds": [0], "schedule": Uniform(steps=6)}
    result = sample(model, Standard(guidance=3.0), **run)  # type: ignore[arg-type]
    assert result.latents.shape == (1, 4, 8, 8) and bool(torch.isfinite(result.latents).all())
    assert result.counter.guided_calls == 6


def synchronisations(steps: int) -> int:
    """Host synchronisations torch reports during one `sample()` of ``steps`` steps."""
    model = LinearCudaModel()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            sample(
                model,
                Standard(guidance=3.0),
                prompts=["a"],
                seeds=[0],
                schedule=Uniform(steps=steps),
            )  # type: ignore[arg-type]
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="counts CUDA synchronisations: no GPU")
def test_the_finite_check_costs_no_synchronisation_per_step() -> None:
    short, long = synchronisations(4), synchronisations(4 + 2 * READ_EVERY)
    # one read per READ_EVERY moves, nothing per step
    assert long - short == 2, (short, long)
    assert short <= 4, short
