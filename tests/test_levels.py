"""Levels, processes and schedules, checked against diffusers' schedulers."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from zsampling import Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.adapters.diffusers import DiffusersModel
from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.levels import LevelCache, Process, TimestepTable, scaled_linear_alphas_cumprod
from zsampling.schedules import Karras, Uniform
from zsampling.testing.tiny import tiny_sd_pipeline

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)


def test_alphas_cumprod_bit_identical_to_diffusers() -> None:
    ours = scaled_linear_alphas_cumprod()
    assert torch.equal(ours, DDIMScheduler(**SD).alphas_cumprod)


@pytest.mark.parametrize("name", ["vp", "flow", "ve"])
def test_process_coefficients_have_ratio_sigma(name: str) -> None:
    sigma = torch.tensor([0.0, 0.03, 1.0, 14.6], dtype=torch.float64)
    alpha, s = Process(name).coefficients(sigma)  # type: ignore[arg-type]
    assert torch.allclose(s / alpha, sigma, rtol=1e-14, atol=0)
    if name == "vp":
        assert torch.allclose(alpha**2 + s**2, torch.ones_like(sigma))
    if name == "flow":
        assert torch.allclose(alpha + s, torch.ones_like(sigma))


def test_flow_pure_noise_is_finite() -> None:
    alpha, s = Process("flow").coefficients(torch.tensor([float("inf")], dtype=torch.float64))
    assert alpha.item() == 0.0 and s.item() == 1.0


def test_timestep_round_trip_is_exact_on_grid() -> None:
    table = TimestepTable(scaled_linear_alphas_cumprod())
    t = torch.arange(0, 1000)
    back = table.timestep(table.sigma_at(t))
    assert torch.equal(back, t.to(torch.float64))
    mid = (table.sigmas[10] * table.sigmas[11]).sqrt()  # geometric middle: t = 10.5
    assert table.timestep(mid.view(1)).item() == pytest.approx(10.5, abs=1e-12)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 7, 10, 50, 999])
def test_uniform_timesteps_match_ddim_scheduler(
    analytic: AnalyticModel, spacing: str, steps: int
) -> None:
    ref = DDIMScheduler(**SD, timestep_spacing=spacing, set_alpha_to_one=False)
    ref.set_timesteps(steps)
    schedule = Uniform(steps=steps, spacing=spacing)  # type: ignore[arg-type]
    assert torch.equal(schedule.timesteps(analytic), ref.timesteps)
    sig = schedule.sigmas(analytic)
    a = ref.alphas_cumprod.to(torch.float64)
    expected = ((1 - a[ref.timesteps]) / a[ref.timesteps]).sqrt()
    assert torch.equal(sig[:-1], expected)
    final = ref.final_alpha_cumprod.to(torch.float64)
    assert sig[-1].item() == pytest.approx(((1 - final) / final).sqrt().item(), rel=1e-15)


def test_uniform_steps_beyond_the_grid_is_a_clear_error(analytic: AnalyticModel) -> None:
    with pytest.raises(InvalidArgument, match=r"schedule.steps = 1001 .*\[1, 1000\]"):
        Uniform(steps=1001).sigmas(analytic)


def test_karras_matches_diffusers_euler(analytic: AnalyticModel) -> None:
    ref = EulerDiscreteScheduler(**SD, use_karras_sigmas=True)
    ref.set_timesteps(12)
    ours = Karras(steps=12).sigmas(analytic)
    assert torch.allclose(ours.float(), ref.sigmas, rtol=1e-6, atol=1e-7)
    assert ours[-1].item() == 0.0


def test_row_levels_are_shared_across_runs_and_equal_a_fresh_computation() -> None:
    """The diffusers adapters over one scheduler share one `LevelCache` (runs repeat their
    schedule); what it hands back for a level seen in an earlier run is exactly what a new cache
    computes: timesteps from the table (diffusers' own integers on the grid), the coefficients
    of the VP process."""
    pipe = tiny_sd_pipeline()
    first, second = DiffusersModel(pipe), DiffusersModel(pipe)
    assert first.levels is second.levels is first.table.row_levels
    grid = first.table.sigmas[[999, 500, 1]].tolist()
    fresh = LevelCache(Process("vp"), first.table)
    for level in [*grid, 0.1234567, 2.5]:
        rows = torch.full((2,), level, dtype=torch.float64)
        seen = first.levels(rows, torch.device("cpu"), 4)
        again = second.levels(rows.clone(), torch.device("cpu"), 4)
        assert again is seen  # the second run's lookup is the first run's entry
        new = fresh(rows, torch.device("cpu"), 4)
        assert seen.shared == new.shared == Process("vp").point(level)
        assert torch.equal(seen.timesteps, new.timesteps)
    cpu = torch.device("cpu")
    timesteps = [first.levels(torch.full((1,), v, dtype=torch.float64), cpu, 4) for v in grid]
    assert [float(t.timesteps) for t in timesteps] == [999.0, 500.0, 1.0]


class Float32Karras(Karras):
    """Karras levels made in float32: already rounded, so refused rather than widened."""

    name: ClassVar[str] = "float32-karras"

    def sigmas(self, model: Any) -> torch.Tensor:
        return super().sigmas(model).float()


def test_levels_are_float64_a_schedule_made_in_float32_is_refused(analytic: AnalyticModel) -> None:
    """The rule (docs/architecture.md): a schedule gives float64 levels, else it is named; levels
    handed in ready are widened exactly, so float32 sigmas give the run of their float64 cast."""
    run = {"prompts": ["red"], "seeds": [2]}
    refusal = r"schedule 'float32-karras' \(plugin module 'test_levels'\) returned torch\.float32"
    with pytest.raises(ComponentFault, match=refusal):
        sample(analytic, Zigzag(guidance=3.0), schedule=Float32Karras(steps=6), **run)  # type: ignore[arg-type]
    levels32 = Karras(steps=6).sigmas(analytic).float()
    given32 = sample(analytic, Zigzag(guidance=3.0), sigmas=levels32, **run)  # type: ignore[arg-type]
    given64 = sample(analytic, Zigzag(guidance=3.0), sigmas=levels32.double(), **run)  # type: ignore[arg-type]
    assert given32.sigmas.dtype == torch.float64
    assert torch.equal(given32.sigmas, levels32.double())
    assert torch.equal(given32.latents, given64.latents)
    # ... and the float32 rounding is a different run from the schedule's own float64 levels
    exact = sample(analytic, Zigzag(guidance=3.0), schedule=Karras(steps=6), **run)  # type: ignore[arg-type]
    assert not torch.equal(exact.sigmas, given32.sigmas)
