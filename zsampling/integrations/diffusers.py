"""Sampling with a diffusers pipeline you already hold, in two lines::

    from zsampling import Zigzag
    from zsampling.integrations.diffusers import generate

    images = generate(pipe, "a cat", sampler=Zigzag(guidance=5.5), steps=50, seed=0)

``generate`` takes SD 1.x/2.x (epsilon or v), SDXL, SD3/SD3.5 and FLUX.1 (dev and schnell)
pipelines, loaded from a folder or built in memory (``FluxPipeline(**parts)``). It walks the levels
of the pipeline's own scheduler class and config and, unless told otherwise, the solver that
scheduler implements (DDIM, Euler or DPM-Solver++ 2M; Euler for flow matching). So
``generate(pipe, p, sampler=Standard(guidance=g), steps=n, seed=s)`` reproduces
``pipe(p, guidance_scale=g, num_inference_steps=n, generator=torch.Generator().manual_seed(s))``
(tested on the latents), and swapping the sampler is the only change Z-Sampling needs. On
FLUX.1-dev the sampler's guidance is the embedded scale (``guidance_scale``), and
``guider=TrueCFG(true_cfg_scale=s)`` with a ``negative_prompt`` is the pipeline's true CFG.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from torch import Tensor

from zsampling.adapters.diffusers import DiffusersModel
from zsampling.adapters.flow import PIPELINES as FLOW_PIPELINES
from zsampling.adapters.flow import FlowMatchModel
from zsampling.adapters.flux import PIPELINES as FLUX_PIPELINES
from zsampling.adapters.flux import flux_model
from zsampling.core.errors import InvalidArgument
from zsampling.core.guidance import GuiderComponent
from zsampling.core.model import ModelAdapter
from zsampling.core.sampler import ReflectiveSampler
from zsampling.core.sampling import sample
from zsampling.core.schedule import Schedule
from zsampling.core.solvers import DDIM, DPMSolverPP2M, Euler, Solver
from zsampling.samplers import Zigzag
from zsampling.schedules import FlowMatch, Scheduler

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_STEPS = {"flow": 28, "vp": 50}
"""The pipelines' own default step counts (SD3 and FLUX: 28; SD and SDXL: 50)."""


def batch_arguments(
    prompt: str | Sequence[str],
    seed: int | Sequence[int],
    negative_prompt: str | Sequence[str] | None,
) -> tuple[list[str], list[int], list[str] | None]:
    """``generate``'s arguments as per-item lists: an int seed means ``seed + k`` for prompt
    ``k``; one negative prompt applies to every prompt."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    seeds = [seed + k for k in range(len(prompts))] if isinstance(seed, int) else list(seed)
    if negative_prompt is None:
        return prompts, seeds, None
    if isinstance(negative_prompt, str):
        return prompts, seeds, [negative_prompt] * len(prompts)
    return prompts, seeds, list(negative_prompt)


def default_solver(pipeline: Any) -> Solver:
    """The zsampling solver that computes what the pipeline's scheduler computes."""
    sched = pipeline.scheduler
    kind = type(sched).__name__
    if kind in ("DDIMScheduler",):
        return DDIM()
    if kind in ("EulerDiscreteScheduler", "FlowMatchEulerDiscreteScheduler"):
        return Euler()
    if (
        kind == "DPMSolverMultistepScheduler"
        and sched.config.algorithm_type == "dpmsolver++"
        and sched.config.solver_order == 2
    ):
        return DPMSolverPP2M()
    raise InvalidArgument(
        "solver",
        None,
        f"a solver for the pipeline's {kind}: pass solver=DDIM(), Euler() or DPMSolverPP2M() "
        "(the schedulers with a zsampling equivalent are DDIMScheduler, EulerDiscreteScheduler, "
        "FlowMatchEulerDiscreteScheduler and DPMSolverMultistepScheduler with dpmsolver++ "
        "order 2)",
    )


def pipeline_model(
    pipeline: Any, height: int | None = None, width: int | None = None
) -> DiffusersModel | FlowMatchModel:
    """The zsampling model over a pipeline object: flow matching (SD3, FLUX) or DDPM-style (SD,
    SDXL)."""
    classes = {c.__name__ for c in type(pipeline).mro()}
    if classes & set(FLUX_PIPELINES):
        return flux_model(pipeline, height=height, width=width)
    if classes & set(FLOW_PIPELINES):
        return FlowMatchModel(pipeline, height=height, width=width)
    return DiffusersModel(pipeline, height=height, width=width)


def pipeline_schedule(model: ModelAdapter, pipeline: Any, steps: int) -> Schedule:
    """The levels the pipeline's own scheduler walks at ``steps`` steps.

    The scheduler class is read from the object, not from its config's ``_class_name``, which a
    pipeline built in memory (``StableDiffusionPipeline(**parts)``) does not have.
    """
    if model.process.name == "flow":
        return FlowMatch(steps=steps)
    return Scheduler(steps=steps, scheduler=type(pipeline.scheduler).__name__)


def generate(
    pipeline: Any,
    prompt: str | Sequence[str],
    *,
    sampler: ReflectiveSampler | None = None,
    steps: int | None = None,
    seed: int | Sequence[int] = 0,
    negative_prompt: str | Sequence[str] | None = None,
    schedule: Schedule | None = None,
    solver: Solver | None = None,
    guider: GuiderComponent | None = None,
    height: int | None = None,
    width: int | None = None,
    output_type: Literal["pil", "latent"] = "pil",
) -> list[Image] | Tensor:
    """Sample with a diffusers pipeline you hold; returns PIL images (or latents).

    ``sampler`` defaults to ``Zigzag()``; ``schedule`` to the pipeline's own scheduler at
    ``steps`` steps (default: the pipeline's own default, 50 for SD/SDXL, 28 for SD3 and FLUX)
    and ``solver`` to the matching zsampling solver, so only the route changes. Prompt ``k`` uses
    ``seed[k]`` (an int seed means ``seed + k``), drawn as diffusers draws it. Latents come back
    as the pipeline's ``output_type="latent"`` gives them (packed tokens for FLUX).
    """
    prompts, seeds, negatives = batch_arguments(prompt, seed, negative_prompt)
    model = pipeline_model(pipeline, height=height, width=width)
    n = steps if steps is not None else DEFAULT_STEPS[model.process.name]
    result = sample(
        model,
        sampler or Zigzag(),
        prompts=prompts,
        negative_prompts=negatives,
        seeds=seeds,
        schedule=schedule or pipeline_schedule(model, pipeline, n),
        solver=solver or default_solver(pipeline),
        guider=guider,
    )
    if output_type == "latent":
        packing = getattr(model, "pack", None)
        return packing(result.latents) if packing is not None else result.latents
    return model.decode(result.latents)
