"""The ``ays`` and ``scheduler`` schedules: levels, interpolation and clear errors."""

from __future__ import annotations

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler
from diffusers.schedulers import AysSchedules

from zsampling import Uniform
from zsampling.adapters.analytic import AnalyticModel
from zsampling.adapters.diffusers import DiffusersModel
from zsampling.core.errors import InvalidArgument
from zsampling.schedules.ays import AlignYourSteps, ays_timesteps
from zsampling.schedules.diffusers import Scheduler

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize(
    ("fixture", "key"), [("tiny_sd", "StableDiffusion"), ("tiny_sdxl", "StableDiffusionXL")]
)
def test_ays_ten_steps_are_the_published_schedule(
    fixture: str, key: str, request: pytest.FixtureRequest
) -> None:
    model: DiffusersModel = request.getfixturevalue(fixture)
    levels = AlignYourSteps().sigmas(model)  # model = "auto": from the adapter's family
    assert model.table is not None
    published_t = torch.tensor(AysSchedules[f"{key}Timesteps"])
    torch.testing.assert_close(levels[:-1], model.table.sigma_at(published_t), rtol=0, atol=0)
    assert levels[-1] == 0.0
    # The published sigma list is the same schedule up to rounding: its integer timesteps move
    # the levels by up to 1.4% (measured), its 3 decimals by 5e-4.
    published_sigmas = torch.tensor(AysSchedules[f"{key}Sigmas"], dtype=torch.float64)
    torch.testing.assert_close(levels, published_sigmas, rtol=0.02, atol=6e-4)


def test_ays_other_step_counts_interpolate_log_linearly(tiny_sd: DiffusersModel) -> None:
    ten = AlignYourSteps(steps=10).sigmas(tiny_sd)
    twenty = AlignYourSteps(steps=20).sigmas(tiny_sd)
    assert twenty.shape == (21,) and twenty[-1] == 0.0
    assert bool((twenty[1:] < twenty[:-1]).all())
    # 21 points over the 11 anchors: every other level is an anchor ...
    # (the 11th anchor is the model's sigma_min, replaced by 0 as the final level) ...
    torch.testing.assert_close(twenty[0:20:2], ten[:10], rtol=1e-12, atol=0)
    assert tiny_sd.table is not None
    anchors = torch.cat([ten[:10], tiny_sd.table.sigmas[:1]])
    # ... and the ones between are geometric means of their neighbouring anchors.
    between = (anchors[:-1] * anchors[1:]).sqrt()
    torch.testing.assert_close(twenty[1:20:2], between, rtol=1e-12, atol=0)
    assert AlignYourSteps(steps=5).sigmas(tiny_sd).shape == (6,)


def test_ays_family_choice(tiny_sd: DiffusersModel, analytic: AnalyticModel) -> None:
    forced = AlignYourSteps(model="sdxl").sigmas(tiny_sd)
    assert tiny_sd.table is not None
    expected = tiny_sd.table.sigma_at(torch.tensor(ays_timesteps("sdxl")))
    torch.testing.assert_close(forced[:-1], expected, rtol=0, atol=0)
    with pytest.raises(InvalidArgument, match=r"schedule.model = 'auto'.*'sd' or 'sdxl'"):
        AlignYourSteps().sigmas(analytic)
    assert AlignYourSteps(model="sd").sigmas(analytic).shape == (11,)


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (EulerDiscreteScheduler, {"timestep_spacing": "linspace"}),
        (EulerDiscreteScheduler, {"use_karras_sigmas": True}),
        (DPMSolverMultistepScheduler, {}),
    ],
)
def test_scheduler_levels_are_the_schedulers_sigmas(
    tiny_sd: DiffusersModel, cls: type, options: dict[str, object]
) -> None:
    ref = cls.from_config(tiny_sd.scheduler_config, **options)
    ref.set_timesteps(12)
    levels = Scheduler(steps=12, scheduler=cls.__name__, options=options).sigmas(tiny_sd)  # type: ignore[arg-type]
    torch.testing.assert_close(levels, ref.sigmas.double(), rtol=1e-6, atol=0)


def test_scheduler_snaps_grid_levels_to_the_float64_table(tiny_sd: DiffusersModel) -> None:
    sched = Scheduler(steps=10, scheduler="DPMSolverMultistepScheduler")
    levels = sched.sigmas(tiny_sd)
    assert tiny_sd.table is not None
    t = tiny_sd.table.timestep(levels[:-1])
    assert torch.equal(t, t.round())  # exact integer timesteps for the UNet


def test_ddim_scheduler_agrees_with_uniform(tiny_sd: DiffusersModel) -> None:
    """Two routes to DDIM's levels: the scheduler's own and zsampling's `Uniform`."""
    own = Scheduler(steps=25).sigmas(tiny_sd)  # the pipeline's DDIMScheduler
    torch.testing.assert_close(own, Uniform(steps=25).sigmas(tiny_sd), rtol=0, atol=0)
    assert Scheduler(steps=25).noise_scale(tiny_sd) == 1.0
    trailing = Scheduler(steps=10, options={"timestep_spacing": "trailing"}).sigmas(tiny_sd)
    assert tiny_sd.table is not None
    expected = Uniform(steps=10, spacing="trailing").sigmas(tiny_sd)
    torch.testing.assert_close(trailing, expected, rtol=0, atol=0)


def test_scheduler_errors(tiny_sd: DiffusersModel, analytic: AnalyticModel) -> None:
    with pytest.raises(
        InvalidArgument, match=r"schedule.scheduler = 'NoSuchScheduler'.*DDIMScheduler"
    ):
        Scheduler(scheduler="NoSuchScheduler").sigmas(tiny_sd)
    with pytest.raises(
        InvalidArgument, match=r"schedule.options = \['use_karas_sigmas'\].*use_karras"
    ):
        Scheduler(scheduler="EulerDiscreteScheduler", options={"use_karas_sigmas": True}).sigmas(
            tiny_sd
        )
    with pytest.raises(InvalidArgument, match=r"one model evaluation per step.*HeunDiscrete"):
        Scheduler(steps=10, scheduler="HeunDiscreteScheduler").sigmas(tiny_sd)
    with pytest.raises(InvalidArgument, match=r"clip_sample on.*set clip_sample: false"):
        Scheduler(scheduler="DDIMScheduler", options={"clip_sample": True}).sigmas(tiny_sd)
    with pytest.raises(InvalidArgument, match=r"not its next timestep.*'leading' or 'trailing'"):
        Scheduler(steps=7, options={"timestep_spacing": "linspace"}).sigmas(tiny_sd)
    with pytest.raises(InvalidArgument, match=r"diffusers scheduler config"):
        Scheduler().sigmas(analytic)
