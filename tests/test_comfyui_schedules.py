"""zsampling's schedules against ComfyUI's scheduler functions (the vendored source, GPL-3.0:
called here, never copied).

For each of ComfyUI's schedulers (``comfy.samplers.SCHEDULER_HANDLERS``) and k-diffusion's
polyexponential (ComfyUI's copy of ``k_diffusion.sampling``), at 5, 10, 25 and 50 steps, on
ComfyUI's model samplings for SD eps and v prediction (``ModelSamplingDiscrete``), SD3-type flow
(``ModelSamplingDiscreteFlow``, shift 3) and FLUX-type flow (``ModelSamplingFlux``): our levels, in
ComfyUI's sigma space, equal ComfyUI's sigmas to float32 precision. Our side is a zsampling model
that knows nothing of ComfyUI (SD's table; a diffusers flow scheduler config), and, separately,
ComfyUI's own model through the pack's SIGMAS node. Runs in the ComfyUI venv (.ci/run-comfyui).
"""

from __future__ import annotations

import pytest
from comfy_tiny import import_comfyui, load_pack, tiny_patcher

import_comfyui()

import comfy.k_diffusion.sampling as kd  # noqa: E402
import comfy.samplers  # noqa: E402
from comfy_schedules import (  # noqa: E402
    COMFY_NAMES,
    KINDS,
    STEPS,
    TOLERANCE,
    comfy_sampling,
    in_comfy_space,
    our_model,
    schedule,
    worst,
)

from zsampling.core.schedule import schedule_levels  # noqa: E402
from zsampling.integrations.comfyui.levels import ComfyLevels  # noqa: E402


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(COMFY_NAMES))
def test_schedule_equals_comfyuis_scheduler(name: str, kind: str) -> None:
    ms = comfy_sampling(kind)
    for steps in STEPS:
        ref = comfy.samplers.calculate_sigmas(ms, COMFY_NAMES[name], steps)
        for model in (our_model(kind), ComfyLevels(ms)):
            ours = in_comfy_space(schedule_levels(schedule(name, steps), model), model)
            assert worst(ours, ref) <= TOLERANCE, (name, kind, steps, type(model).__name__)


@pytest.mark.parametrize("kind", KINDS)
def test_polyexponential_equals_k_diffusions(kind: str) -> None:
    ms = comfy_sampling(kind)
    lo, hi = float(ms.sigma_min), float(ms.sigma_max)
    for steps in STEPS:
        for rho in (0.5, 1.0, 2.0):
            ref = kd.get_sigmas_polyexponential(steps, lo, hi, rho)
            model = our_model(kind)
            ours = schedule_levels(schedule("polyexponential", steps, rho=rho), model)
            assert worst(in_comfy_space(ours, model), ref) <= TOLERANCE, (kind, steps, rho)


def test_every_schedule_through_the_sigmas_node_is_comfyuis() -> None:
    patcher = tiny_patcher()
    node = load_pack().NODE_CLASS_MAPPINGS["ZSamplingSigmas"]()
    ms = patcher.get_model_object("model_sampling")
    for name, comfy_name in COMFY_NAMES.items():
        (sigmas,) = node.get_sigmas(model=patcher, schedule=name, settings='{"steps": 10}')
        ref = comfy.samplers.calculate_sigmas(ms, comfy_name, 10)
        assert worst(sigmas, ref) <= TOLERANCE, name
