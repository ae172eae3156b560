"""The composition matrix: every built-in guider x sampler x solver x schedule runs on exact models,
stays finite, and its counter agrees with the model evaluations actually made.

The schedules are taken from the registry's built-ins, so a new built-in joins the matrix by being
registered. ``scheduler`` needs a model with a diffusers scheduler config and ``flow-match`` a
flow-matching model, so the analytic mixture is given one of each: the VP model its SD scheduler
config (the grid it already uses), and a flow-matching twin of it with exact predictions.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
from solver_parity import FlowAnalytic as ExactFlow
from spies import ModelSpy

from zsampling import StepEvent, sample
from zsampling.adapters.analytic import AnalyticModel, GaussianMixture, demo_mixture
from zsampling.core.errors import InvalidArgument
from zsampling.core.solvers import takes_context
from zsampling.plugins.builtins import BUILTINS

STEPS = 6
SETTINGS: dict[str, dict[str, Any]] = {
    # guidance 3 on the way down, 1.5 up: every path move evaluates both branches
    "standard": {"guidance": 3.0},
    "zigzag": {"guidance": 3.0, "inversion_guidance": 1.5},
    "asymmetry-zigzag": {"guidance": 3.0, "inversion_guidance": 1.5, "zag_prompt": "green"},
    "restart": {"guidance": 3.0, "restart_min": 0.3, "restart_max": 2.0, "rounds": 1},
    "w2sd": {"guidance": 3.0, "weak_guidance": 1.5},
    "implicit-zigzag": {"guidance": 3.0, "inversion_guidance": 1.5},
    "z2": {"guidance": 3.0, "inversion_guidance": 1.5},
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


class FlowAnalytic(ExactFlow):
    """The flow-matching twin of the mixture, with a FlowMatch scheduler config of its own."""

    scheduler_config = FlowMatchEulerDiscreteScheduler(shift=3.0).config


def names(kind: str) -> list[str]:
    return [cls.name for cls in BUILTINS[kind]]  # type: ignore[index,attr-defined]


OFF_PATH_EVALUATIONS = {"implicit-zigzag": STEPS - 1}
"""Guided calls that are no path move: the implicit zag's own evaluation on each zigzag step."""
PAIRED_SCALES = ("implicit-zigzag", "z2")
"""Samplers that ask for two scales from one evaluation: a guider with its own call (AutoGuidance)
pays one guided call per scale there."""
EMBEDDED_ONLY = ("true-cfg",)
"""Guiders for models that take the scale as an input (FLUX.1-dev): tests/test_flux.py."""
PERTURBING = ("pag", "seg", "slg")
"""Guiders that perturb the network's layers: refused on the analytic model (it has none);
`test_perturbing_guiders_compose_on_networks` runs them on the digits UNet and the tiny SD."""
IMAGE_ONLY = ("fdg",)
"""FDG's Laplacian pyramid needs image latents: tests/test_guiders.py (and refused here)."""
GUIDERS = [g for g in names("guider") if g not in EMBEDDED_ONLY + PERTURBING + IMAGE_ONLY]
WEAK_GUIDED = ("auto-guidance",)
"""Guiders that take the run's weak model: it is given to every sampler with them."""


def build(kind: str, name: str, **extra: Any) -> Any:
    [cls] = [c for c in BUILTINS[kind] if c.name == name]  # type: ignore[index,attr-defined]
    return cls(**{**SETTINGS.get(name, {}), **extra})


def test_the_matrix_covers_every_builtin() -> None:
    assert names("guider") == [
        "cfg",
        "apg",
        "cfg-zero-star",
        "tangential-cfg",
        "true-cfg",
        "rescaled-cfg",
        "magnitude-aware",
        "fdg",
        "apg-mix",
        "pag",
        "seg",
        "slg",
        "auto-guidance",
        "cfg-pp",
    ]
    assert GUIDERS == [
        "cfg",
        "apg",
        "cfg-zero-star",
        "tangential-cfg",
        "rescaled-cfg",
        "magnitude-aware",
        "apg-mix",
        "auto-guidance",
        "cfg-pp",
    ]
    assert {"ddim", "euler", "dpmpp-2m", "heun", "lms", "unipc", "deis"} <= set(names("solver"))


def compose(main: ModelSpy, weak: ModelSpy, combo: tuple[str, ...], moves: list[Any]) -> Any:
    """One run of ``(sampler, schedule, solver, guider)`` on the spied models."""
    sampler, schedule, solver, guider = combo
    return sample(
        main,  # type: ignore[arg-type]
        build("sampler", sampler),
        prompts=["red", "blue"],
        seeds=[0, 1],
        schedule=build("schedule", schedule, steps=STEPS),
        solver=build("solver", solver),
        guider=build("guider", guider),
        observers=[moves.append],
        extra_models={"weak": weak}  # type: ignore[dict-item]
        if sampler == "w2sd" or guider in WEAK_GUIDED
        else None,
    )


def weak_mixture() -> GaussianMixture:
    """The weak model's mixture: the demo's with wider components."""
    m = demo_mixture()
    return GaussianMixture(m.means, m.variances * 1.5, m.weights, m.labels, m.class_names)


def check_combo(combo: tuple[str, str, str, str]) -> None:
    """Run ``(sampler, schedule, solver, guider)`` on spied exact models: finite latents, and a
    counter that agrees with the model evaluations actually made."""
    sampler, schedule, solver, guider = combo
    kind = FlowAnalytic if schedule == "flow-match" else ScheduledAnalytic
    main, weak = ModelSpy(kind(demo_mixture())), ModelSpy(kind(weak_mixture()))
    moves: list[StepEvent] = []
    if guider == "cfg-pp" and not getattr(build("solver", solver), "renoises", False):
        with pytest.raises(InvalidArgument, match="renoises with another branch"):
            compose(main, weak, combo, moves)  # it would ignore the renoising branch
        return
    result = compose(main, weak, combo, moves)
    where = f"{guider} x {sampler} x {solver} x {schedule}"
    assert bool(torch.isfinite(result.latents).all()), where
    c = result.counter
    guided = sum(e.kind in ("denoise", "invert") for e in moves)
    guided += OFF_PATH_EVALUATIONS.get(sampler, 0)
    paired = sampler in PAIRED_SCALES and guider in WEAK_GUIDED
    if paired or takes_context(build("solver", solver)):
        assert c.guided_calls >= guided > STEPS - 1, where  # its stages' own evaluations
    else:
        assert c.guided_calls == guided > STEPS - 1, where
    guided = c.guided_calls
    assert c.model_calls == len(main.calls) + len(weak.calls), where
    assert c.rows == sum(main.rows) + sum(weak.rows), where
    assert c.rows == c.cond_rows + c.uncond_rows + c.perturbed_rows, where
    if guider not in WEAK_GUIDED:
        assert c.model_calls == guided and c.rows == 4 * guided, where
        assert c.cond_rows == c.uncond_rows == 2 * guided, where
        return
    # AutoGuidance: the conditional rows, and the weak model's; under W2SD the weak model's own
    # inversions are its conditional rows alone
    on_main = c.model_calls - guided
    assert c.uncond_rows == 0 and c.cond_rows == 2 * guided, where
    assert c.perturbed_rows == 2 * on_main > 0, where


# Every pair of components meets at least once: guider x sampler on every schedule (DDIM), solver
# x sampler on a VP and a flow schedule (CFG), and guider x solver (standard sampling). The full
# four-way product (thousands of runs) adds no pair these miss.


@pytest.mark.parametrize("schedule", names("schedule"))
@pytest.mark.parametrize("sampler", names("sampler"))
def test_every_guider_composes_with_every_sampler_and_schedule(schedule: str, sampler: str) -> None:
    for guider in GUIDERS:
        check_combo((sampler, schedule, "ddim", guider))


@pytest.mark.parametrize("schedule", ["uniform", "flow-match"])
@pytest.mark.parametrize("sampler", names("sampler"))
def test_every_solver_composes_with_every_sampler(schedule: str, sampler: str) -> None:
    for solver in names("solver"):
        check_combo((sampler, schedule, solver, "cfg"))


@pytest.mark.parametrize("guider", GUIDERS)
def test_every_guider_composes_with_every_solver(guider: str) -> None:
    for solver in names("solver"):
        check_combo(("standard", "karras", solver, guider))


NETWORK_SAMPLERS = ("zigzag", "restart", "w2sd")
NETWORK_GUIDERS = ("pag", "seg", "slg", "auto-guidance")


@pytest.mark.parametrize("testbed", ["digits", "tiny-sd"])
def test_perturbing_guiders_compose_on_networks(
    testbed: str, request: pytest.FixtureRequest
) -> None:
    """Zigzag, restart and W2SD with PAG, SEG, SLG and AutoGuidance, at the
    guiders' defaults, on the digits UNet (one self-attention, in its mid block) and the tiny
    SD: finite, the perturbed rows counted, and no hook left on the network."""
    if testbed == "digits":
        from zsampling.adapters.digits import DigitsAdapter

        model, weak = DigitsAdapter().load(), DigitsAdapter(weak=True).load()
        prompts = ["3", "7"]
    else:
        from zsampling.adapters.diffusers import DiffusersModel
        from zsampling.testing.tiny import tiny_sd_pipeline

        model, weak = request.getfixturevalue("tiny_sd"), DiffusersModel(tiny_sd_pipeline(seed=1))
        prompts = ["a red cube", "a cat"]
    for sampler in NETWORK_SAMPLERS:
        for guider in NETWORK_GUIDERS:
            where = f"{guider} x {sampler} on {testbed}"
            result = sample(
                model,
                build("sampler", sampler),
                prompts=prompts,
                seeds=[0, 1],
                schedule=build("schedule", "uniform", steps=STEPS),
                guider=build("guider", guider),
                extra_models={"weak": weak},
            )
            assert bool(torch.isfinite(result.latents).all()), where
            c = result.counter
            assert c.perturbed_rows > 0, where
            assert c.rows == c.cond_rows + c.uncond_rows + c.perturbed_rows, where
            hooked = [
                n
                for n, m in model.unet.named_modules()
                if getattr(getattr(m, "_diffusers_hook", None), "hooks", None)
            ]
            assert hooked == [], where
