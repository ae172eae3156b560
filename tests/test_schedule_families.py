"""The ComfyUI / k-diffusion schedule families in the main suite: references that are pure math
(diffusers' exponential and Karras sigmas, scipy's Beta quantiles, diffusers' flow ladder), every
schedule driving a run, and the schedule contract check (from ``sample()``; the CLI's is in
tests/test_hostile_plugins.py). Parity with ComfyUI's and k-diffusion's own functions is in
tests/test_comfyui_schedules.py and tests/test_kdiffusion_schedules.py (their own venvs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.stats
import torch
from diffusers import EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler
from hostile import Sandbox, outputs
from pydantic import BaseModel

from zsampling import Standard, sample
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.adapters.flow import SD3Adapter
from zsampling.adapters.flux import FluxAdapter
from zsampling.adapters.kdiffusion import KDiffusionModel
from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.levels import Process
from zsampling.core.schedule import schedule_levels
from zsampling.plugins.manager import build_registry
from zsampling.schedules import (
    Beta,
    DDIMUniform,
    Exponential,
    Karras,
    KLOptimal,
    LinearQuadratic,
    PolyExponential,
    Simple,
)
from zsampling.schedules.beta import beta_cdf, beta_ppf
from zsampling.schedules.space import FlowLadder, sigma_space
from zsampling.testing.tiny_flow import write_tiny_flow_pipeline

STEPS = (5, 10, 25, 50)
SD = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
NEW = (
    "exponential",
    "polyexponential",
    "kl-optimal",
    "simple",
    "normal",
    "sgm-uniform",
    "ddim-uniform",
    "beta",
    "linear-quadratic",
)


@pytest.fixture(scope="module")
def analytic() -> AnalyticModel:
    return AnalyticModel(demo_mixture())


@pytest.mark.parametrize(
    ("option", "ours"), [("use_exponential_sigmas", Exponential), ("use_karras_sigmas", Karras)]
)
def test_exponential_and_karras_equal_diffusers(
    analytic: AnalyticModel, option: str, ours: Any
) -> None:
    for steps in STEPS:
        ref = EulerDiscreteScheduler(**SD, timestep_spacing="linspace", **{option: True})
        ref.set_timesteps(steps)
        levels = schedule_levels(ours(steps=steps), analytic)
        torch.testing.assert_close(levels, ref.sigmas.double(), rtol=1e-6, atol=0)


def test_polyexponential_with_rho_1_is_exponential(analytic: AnalyticModel) -> None:
    a = schedule_levels(PolyExponential(steps=12, rho=1.0), analytic)
    assert torch.equal(a, schedule_levels(Exponential(steps=12), analytic))
    bent = schedule_levels(PolyExponential(steps=12, rho=2.0), analytic)
    assert bent[0] == a[0] and bent[-2] == a[-2] and bool((bent[1:-2] < a[1:-2]).all())


def test_beta_quantiles_equal_scipys() -> None:
    qs = np.linspace(0, 1, 401)[1:-1]
    for a, b in [(0.6, 0.6), (0.5, 0.7), (2.0, 3.0), (1.0, 1.0), (0.3, 5.0)]:
        ours = np.array([beta_ppf(float(q), a, b) for q in qs])
        np.testing.assert_allclose(ours, scipy.stats.beta.ppf(qs, a, b), rtol=0, atol=1e-12)
        cdf = np.array([beta_cdf(float(x), a, b) for x in qs])
        np.testing.assert_allclose(cdf, scipy.stats.beta.cdf(qs, a, b), rtol=0, atol=1e-13)


def test_beta_picks_the_training_timesteps_at_beta_quantiles(analytic: AnalyticModel) -> None:
    table = analytic.table
    for steps in STEPS:
        quantiles = 1 - np.linspace(0, 1, steps, endpoint=False)
        t = np.rint(scipy.stats.beta.ppf(quantiles, 0.6, 0.6) * 999).astype(int)
        levels = schedule_levels(Beta(steps=steps), analytic)
        assert torch.equal(levels[:-1], table.sigmas[torch.from_numpy(t)])
        assert levels[-1] == 0


def test_flow_ladder_is_the_flow_schedulers_training_grid() -> None:
    for shift in (1.0, 3.0):
        ref = FlowMatchEulerDiscreteScheduler(shift=shift).sigmas.double().flip(0)
        ours = FlowLadder(1000, 1000.0, shift=shift).sigmas
        torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)


def test_on_flow_models_schedules_run_in_flow_time() -> None:
    class Flow:
        process = Process("flow")
        table = None
        scheduler_config: ClassVar[dict[str, float]] = {"shift": 3.0, "num_train_timesteps": 1000}

    levels = schedule_levels(Simple(steps=4), Flow())  # type: ignore[arg-type]
    t = levels / (1 + levels)
    ladder = FlowLadder(1000, 1000.0, shift=3.0).sigmas
    assert torch.isinf(levels[0]) and levels[-1] == 0
    torch.testing.assert_close(t[1:-1], ladder[[749, 499, 249]], rtol=1e-12, atol=0)
    space = sigma_space(Flow())  # type: ignore[arg-type]
    assert space.flow and space.sigma_max == 1.0


@pytest.mark.parametrize("name", NEW)
def test_every_schedule_drives_a_run(analytic: AnalyticModel, name: str) -> None:
    cls = build_registry().get("schedule", name).cls
    for steps in (1, 7, 25):
        levels = schedule_levels(cls(steps=steps), analytic)  # checked: steps + 1, decreasing
        assert len(levels) == steps + 1 and levels[-1] == 0
    out = sample(analytic, Standard(guidance=2.0), prompts=["red", "blue"], seeds=[0, 1],
                 schedule=cls(steps=10))  # fmt: skip
    assert out.counter.guided_calls == 10 and bool(torch.isfinite(out.latents).all())


def test_impossible_step_counts_and_settings_are_refused(analytic: AnalyticModel) -> None:
    with pytest.raises(InvalidArgument, match=r"schedule\.steps = 500.*distinct training"):
        schedule_levels(Beta(steps=500), analytic)
    assert len(schedule_levels(Simple(steps=1000), analytic)) == 1001  # the whole ladder
    for too_many in (Simple(steps=1001), DDIMUniform(steps=1000)):
        with pytest.raises(InvalidArgument, match=r"steps = 1000?.*1000 training levels"):
            schedule_levels(too_many, analytic)
    with pytest.raises(InvalidArgument, match=r"schedule\.linear_steps = 6.*fewer than the steps"):
        schedule_levels(LinearQuadratic(steps=6, linear_steps=6), analytic)
    with pytest.raises(InvalidArgument, match=r"schedule\.sigma_min = 20\.0"):
        schedule_levels(Exponential(steps=6, sigma_min=20.0), analytic)


class PluginSchedule(BaseModel):
    """A third-party schedule breaking the contract in the way ``fault`` says."""

    name: ClassVar[str] = "plugin-schedule"
    steps: int = 4
    fault: str = "short"

    def sigmas(self, model: Any) -> torch.Tensor:
        if self.fault == "short":  # steps levels instead of steps + 1
            return torch.tensor([14.0, 4.0, 1.0, 0.0], dtype=torch.float64)
        return torch.tensor([14.0, 4.0, 4.0, 1.0, 0.0], dtype=torch.float64)


@pytest.mark.parametrize(
    ("fault", "problem"),
    [("short", "gave 4 levels for 4 steps"), ("flat", "must be strictly decreasing")],
)
def test_sample_refuses_a_schedule_that_breaks_the_contract(
    analytic: AnalyticModel, fault: str, problem: str
) -> None:
    with pytest.raises(ComponentFault) as caught:
        sample(analytic, Standard(guidance=2.0), prompts=["red"], seeds=[0],
               schedule=PluginSchedule(fault=fault))  # type: ignore[arg-type]  # fmt: skip
    message = str(caught.value)
    assert "schedule 'plugin-schedule' (plugin module 'test_schedule_families')" in message
    assert problem in message


@pytest.mark.parametrize("name", ["beta", "kl-optimal", "sgm-uniform"])
def test_a_run_config_names_a_schedule(tmp_path: Path, name: str) -> None:
    box = Sandbox(tmp_path)
    args = ["run", str(box.good()), "-q", "--set", f'schedule={{use = "{name}", steps = 5}}']
    result = box.invoke(args)
    assert result.exit_code == 0, result.output
    assert len(outputs(box.out)) == 4  # two prompts x two seeds


def test_a_models_own_range_bounds_the_range_schedules(analytic: AnalyticModel) -> None:
    model = KDiffusionModel(lambda x, s: x, (2,), table=analytic.table, sigma_range=(0.1, 10.0))
    for cls in (Exponential, KLOptimal, PolyExponential):
        levels = schedule_levels(cls(steps=5), model)
        torch.testing.assert_close(levels[[0, -2]], torch.tensor([10.0, 0.1], dtype=torch.float64))


@pytest.mark.slow
def test_the_flow_adapters_ladders_are_their_scheduler_configs(tmp_path: Path) -> None:
    """The tiny SD3 and FLUX pipelines: the ladder read from the adapters (shift 3; dynamic
    shifting with mu from the image size) is the one ComfyUI's parity tests check."""
    sd3 = SD3Adapter(path=str(write_tiny_flow_pipeline(tmp_path / "sd3", "sd3"))).load()
    flux_folder = write_tiny_flow_pipeline(tmp_path / "flux", "flux")
    flux = FluxAdapter(path=str(flux_folder), height=32, width=32).load()
    assert sigma_space(sd3).ladder == FlowLadder(1000, 1000.0, shift=3.0)
    mu = flux.dynamic_shift_mu(flux.scheduler_config)  # type: ignore[attr-defined]
    assert sigma_space(flux).ladder == FlowLadder(10_000, 1.0, mu=mu)
    for model in (sd3, flux):
        for name in NEW:
            cls = build_registry().get("schedule", name).cls
            levels = schedule_levels(cls(steps=6), model)
            assert len(levels) == 7 and levels[-1] == 0
