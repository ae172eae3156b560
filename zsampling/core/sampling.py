"""One sampling run, from seeds to final latents: the function everything else calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from zsampling.core.cfg import CFG
from zsampling.core.errors import ComponentFault, InvalidArgument, all_finite, check_finite
from zsampling.core.events import Observer
from zsampling.core.guidance import (
    ConditioningRouter,
    CountedGuider,
    EvaluationCounter,
    Guider,
    GuiderComponent,
    call_problem,
    counted,
)
from zsampling.core.inference import gradient_mode
from zsampling.core.model import Conditioning, ModelAdapter
from zsampling.core.path import MAIN, Kept, SamplingPath
from zsampling.core.rules import BatchedGuider
from zsampling.core.sampler import ReflectiveSampler, prompt_variants, walk
from zsampling.core.schedule import Schedule, schedule_levels
from zsampling.core.solvers import DDIM, Solver


def initial_noise(
    shape: Sequence[int], seeds: Sequence[int], dtype: torch.dtype = torch.float32
) -> tuple[Tensor, list[torch.Generator]]:
    """One row of standard normal noise per seed, each from its own CPU generator.

    Drawing per item on the CPU (as diffusers' ``randn_tensor`` does with a CPU generator) makes a
    seed give the same image whatever the batch or device. The generators are returned so later
    noise (restart) continues the same per-item streams.

    Half-precision models draw in their own dtype, as diffusers' pipelines do: some torch
    releases (2.11 among them) draw float16/bfloat16 normals with another algorithm than float32
    ones, so a float32 draw cast down gives other noise than ``pipe(generator=...)`` there. Other
    dtypes draw in float32 (a float64 model's noise is float32 noise widened, so seeds mean the
    same noise in every precision a pipeline draws in).
    """
    draw = dtype if dtype in (torch.float16, torch.bfloat16) else torch.float32
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    rows = [torch.randn(tuple(shape), generator=g, dtype=draw) for g in generators]
    return torch.stack(rows).to(dtype), generators


@dataclass
class SampleResult:
    """Final latents and what they cost."""

    latents: Tensor
    sigmas: Tensor
    counter: EvaluationCounter = field(default_factory=EvaluationCounter)


def sample(
    model: ModelAdapter,
    sampler: ReflectiveSampler,
    *,
    prompts: Sequence[str] | None = None,
    negative_prompts: Sequence[str] | None = None,
    conditioning: tuple[Conditioning, Conditioning | None] | None = None,
    seeds: Sequence[int] = (0,),
    noise: Tensor | None = None,
    schedule: Schedule | None = None,
    sigmas: Tensor | None = None,
    solver: Solver | None = None,
    guider: GuiderComponent | None = None,
    observers: Sequence[Observer] = (),
    extra_models: Mapping[str, ModelAdapter] | None = None,
    noise_scale: float | None = None,
) -> SampleResult:
    """Sample one batch: ``prompts[k]`` with ``seeds[k]`` (or with row ``k`` of ``noise``).

    Give either ``prompts`` (encoded once here) or ready ``conditioning``, and either a
    ``schedule`` (for example ``zsampling.Uniform(steps=50)``) or explicit ``sigmas``.
    ``extra_models`` are further models of the run by name (W2SD's weak model), conditioned on the
    same prompts.

    ``noise_scale`` multiplies the starting noise (in the model's native space). By default it is
    the schedule's own ``noise_scale(model)`` when it has one, else the process's. Why it exists:
    diffusers' Euler-type schedulers with "linspace"/"trailing" spacing start from
    ``sigma_max * noise`` in their VE space, i.e. ``s(sigma_max) * noise`` (not ``noise``) in the
    VP space our latents live in; the ``scheduler`` schedule reports that factor, so a run starts
    from the same latent as the pipeline's own ``__call__``.
    """
    solver = solver or DDIM()
    guider = guider or CFG()
    levels = _levels(model, schedule, sigmas)
    check_steps = getattr(sampler, "check_steps", None)
    if check_steps is not None:
        check_steps(len(levels) - 1)
    counter = EvaluationCounter()
    guiders: dict[str, Guider] = {}
    models = {MAIN: model, **(extra_models or {})}
    variants = prompt_variants(sampler, prompts)
    batch = 0
    for name, adapter in models.items():
        if conditioning is not None and name == MAIN:
            cond, uncond = conditioning
        elif prompts is not None:
            cond, uncond = adapter.encode(list(prompts), negative_prompts)
        else:
            raise InvalidArgument("prompts", None, "a list of prompts (or conditioning)")
        if name == MAIN:
            batch = int(next(iter(cond.values())).shape[0])
        named = {key: adapter.encode(texts, negative_prompts)[0] for key, texts in variants.items()}
        guiders[name] = bind_guider(guider, adapter, cond, uncond, counter, named, name)
    attach_models(guiders)
    noise, generators = _starting_noise(model, noise, seeds, batch)
    path = SamplingPath(
        levels,
        model.process,
        guiders,
        solver,
        observers,
        generators if len(generators) == batch else (),
        nonfinite_hint=nonfinite_hint(model),
        keeps={name: kept(adapter) for name, adapter in models.items()},
        guider=guider,
    )
    if noise_scale is None:
        noise_scale = _noise_scale(model, None if sigmas is not None else schedule, path.sigmas)
    # Drawn noise is in the model's dtype (as a pipeline's latents are); given noise keeps its
    # dtype (as a pipeline's given latents do). The steps compute in float64 either way.
    x = noise.to(device=model.device) * noise_scale
    with gradient_mode(sampler, guider, solver):
        out = walk(sampler, x, path)
    check_latents(out, x, "sampler", getattr(sampler, "name", type(sampler).__name__))
    # Latents made in inference mode cannot be changed in place outside it: the caller gets a
    # normal tensor, as a pipeline's output is (one copy per batch).
    if isinstance(out, Tensor) and out.is_inference() and not torch.is_inference_mode_enabled():
        out = out.clone()
    return SampleResult(out, path.sigmas, counter)


def _levels(model: ModelAdapter, schedule: Schedule | None, sigmas: Tensor | None) -> Tensor:
    """The run's levels: ``sigmas`` as given, else the schedule's (checked to be float64)."""
    if sigmas is not None:
        return sigmas
    if schedule is not None:
        return schedule_levels(schedule, model)
    raise InvalidArgument(
        "schedule", None, "a schedule (e.g. zsampling.Uniform(steps=50)) or explicit sigmas"
    )


def _starting_noise(
    model: ModelAdapter, noise: Tensor | None, seeds: Sequence[int], batch: int
) -> tuple[Tensor, list[torch.Generator]]:
    """The starting noise (drawn from ``seeds``, or as given) and the per-item generators."""
    if noise is None:
        if len(seeds) != batch:
            raise InvalidArgument("seeds", list(seeds), f"one seed per prompt ({batch})")
        noise, generators = initial_noise(model.latent_shape(), seeds, model.dtype)
    else:
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        if noise.shape[0] != batch:
            raise InvalidArgument("noise", tuple(noise.shape), f"a batch of {batch} rows")
    check_finite(noise, "initial noise")
    return noise, generators


def _noise_scale(model: ModelAdapter, schedule: Schedule | None, levels: Tensor) -> float:
    """The schedule's own ``noise_scale(model)`` when it has one, else the process's."""
    scheduled = getattr(schedule, "noise_scale", None)
    if scheduled is not None:
        return float(scheduled(model))
    return model.process.init_noise_scale(float(levels[0]))


def attach_models(guiders: Mapping[str, Guider]) -> None:
    """Hand each bound guider that uses the run's other models (AutoGuidance's weak model) the
    bound guiders of all models, by name, once all are bound: its optional
    ``attach_models(name, guiders)``."""
    for name, bound in guiders.items():
        attach = getattr(bound, "attach_models", None)
        if callable(attach):
            attach(name, guiders)


def check_latents(out: object, given: Tensor, kind: str, name: str) -> None:
    """What a component hands back must be latents like the ones it was given: a tensor of the
    same shape, dtype and device, and finite. Else `ComponentFault` names the component, before
    anything is decoded or written (a float16 or mis-shaped result would otherwise be saved as a
    corrupted output, and NaN as an image of noise)."""
    expected = f"{tuple(given.shape)} {given.dtype} on {given.device}, like the latents given"
    if not isinstance(out, Tensor):
        raise ComponentFault(kind, name, f"returned a {type(out).__name__}; expected a tensor")
    if out.shape != given.shape or out.dtype != given.dtype or out.device != given.device:
        got = f"{tuple(out.shape)} {out.dtype} on {out.device}"
        raise ComponentFault(kind, name, f"returned {got}; expected {expected}")
    if not all_finite(out):
        bad = int((~torch.isfinite(out)).sum())
        raise ComponentFault(
            kind,
            name,
            f"returned {bad} non-finite value(s) (NaN or inf) out of {out.numel()}, although "
            "every step of its sampling path was finite",
        )


def bind_guider(
    guider: GuiderComponent,
    model: ModelAdapter,
    cond: Conditioning,
    uncond: Conditioning | None,
    counter: EvaluationCounter,
    named: Mapping[str, Conditioning] | None = None,
    model_name: str = MAIN,
) -> Guider:
    """``guider.bind(...)`` with the run's counting: the model it gets (the run's model
    ``model_name``) counts its own calls and checks its predictions, and a
    guider that does not count its guided calls (one not built on `GuidanceRule`) is wrapped so
    that they are counted. A bound guider the path cannot call is refused here, naming it.

    ``named`` are further conditionings a path move may ask for by name (a sampler's prompt
    variants). A `BatchedGuider` holds them itself; any other guider is bound once per name and
    each call goes to the binding of its ``context.conditioning`` (`ConditioningRouter`).
    """
    model = counted(model, counter, model_name)
    bound = _checked(guider, guider.bind(model, cond, uncond, counter))
    named = dict(named or {})
    if isinstance(bound, BatchedGuider) and bound.counter is counter:
        bound.conditionings.update(named)
        return bound
    if named:
        routes = {"cond": bound}
        if uncond is not None:
            named["uncond"] = uncond
        for key, positive in named.items():
            routes[key] = _checked(
                guider, guider.bind(model, positive, uncond, counter)
            )
        bound = ConditioningRouter(routes)
    return CountedGuider(bound, counter)


def _checked(component: GuiderComponent, bound: Guider) -> Guider:
    problem = call_problem(bound)
    if problem is not None:
        name = getattr(component, "name", type(component).__name__)
        raise ComponentFault("guider", name, f"does not follow the guider contract: {problem}")
    return bound


def kept(model: ModelAdapter) -> Kept:
    """What a step from another level keeps of this model's predictions: its optional
    ``reinterpret_keeps`` attribute (``"v"`` for v-prediction models), else ``"eps"``."""
    value = getattr(model, "reinterpret_keeps", "eps")
    return "v" if value == "v" else "eps"


def nonfinite_hint(model: ModelAdapter) -> str:
    """The likely cause of NaN/inf latents for this model, and what to do about it."""
    if model.dtype == torch.float16:
        return (
            "likely an fp16 overflow (the SDXL VAE and large guidance scales are known causes); "
            "run in float32 or bfloat16, or lower the guidance"
        )
    return "check the model weights and lower the guidance scale"
