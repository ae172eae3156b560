"""zsampling's samplers as ComfyUI SAMPLER objects.

`comfy_sampler` wraps a reflective sampler in ComfyUI's own ``KSAMPLER``, so ComfyUI still does
what it does for every sampler (noise scaling, inpainting masks, the callback that drives the
progress bar and previews) and calls `sample_in_comfy` with its sampler-function arguments::

    sample_in_comfy(model, x, sigmas, extra_args, callback, disable, spec=...)

There the run is zsampling's: the levels come from ComfyUI's sigmas (`levels`), every model call
goes through ComfyUI's guider at the scale the sampler asks for (`guidance`), the solver and the
path are zsampling's, the callback is called once per denoise step (a zigzag step's re-denoise
too, with the same step index), and gradients are off (ComfyUI's ``sample_custom`` does not turn
them off itself).

Fresh noise (restart, a plugin's renoise) comes from a generator seeded with the NOISE seed
plus one, on the latent's device: seeded like ComfyUI's own stochastic samplers, but not the
stream that drew the starting noise (with the same seed, ComfyUI's CPU noise would redraw it).

A route given a ComfyUI SAMPLER (``SamplerSpec.around``) runs its denoise moves with that
sampler, one step per call (`zsampling.integrations.comfyui.around`).

W2SD's weak model is a second ComfyUI model: it gets a ``CFGGuider`` of its own with the main
guider's conditioning and scale, prepared by ComfyUI's own ``CFGGuider.sample`` (model loading,
conditioning, hooks, cleanup), inside which the run then goes on with both models.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import comfy.k_diffusion.sampling as k_sampling
import comfy.samplers
import torch
from pydantic import BaseModel, ValidationError
from torch import Tensor

from zsampling.core.errors import InvalidArgument
from zsampling.core.guidance import EvaluationCounter, GuidanceContext, Guider
from zsampling.core.levels import Process, TimestepTable
from zsampling.core.model import Conditioning
from zsampling.core.path import MAIN
from zsampling.core.prediction import Prediction
from zsampling.core.sampler import ReflectiveSampler, scale_fields, walk
from zsampling.core.solvers import Solver
from zsampling.integrations.comfyui.around import AroundSamplerPath, check_sampler
from zsampling.integrations.comfyui.guidance import ScaledCall, guider_of
from zsampling.integrations.comfyui.levels import ComfyLevels, levels_of, to_levels
from zsampling.integrations.kdiffusion import Callback, NoiseSamplerPath, StepProgress

log = logging.getLogger("zsampling.comfyui")


class ComfyIO:
    """The half of a `ModelAdapter` ComfyUI does itself: prompts are encoded by its nodes (the
    conditioning lives in the guider) and latents decoded by its VAE nodes."""

    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        raise InvalidArgument(
            "prompts", prompts, "conditioning from ComfyUI's nodes (it lives in the guider)"
        )

    def decode(self, x: Tensor) -> Tensor:
        return x


class ComfyModel(ComfyIO):
    """A `ModelAdapter` over the model a ComfyUI sampler function receives, at a chosen scale.

    ``predict_scaled(x, level, scale)`` is one guided ComfyUI call (`ScaledCall`) turned into the
    `Prediction` pair of the model's process. ``predict`` is the conditional prediction
    (scale 1): the conditioning lives in ComfyUI's guider, so the ``cond`` argument must be
    empty. ComfyUI encodes prompts and decodes latents itself.
    """

    def __init__(self, levels: ComfyLevels, call: ScaledCall, sigmas: Tensor, x: Tensor) -> None:
        self.levels = levels
        self.call = call
        self.process: Process = levels.process
        self.table: TimestepTable | None = levels.table
        self.dtype = x.dtype
        self.device = x.device
        self._shape = tuple(x.shape[1:])
        self._sigmas = sigmas
        self._index = {float(v): i for i, v in enumerate(to_levels(sigmas, self.process))}

    def latent_shape(self) -> tuple[int, ...]:
        return self._shape

    def sigma_range(self) -> tuple[float, float]:
        return self.levels.sigma_range()

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        if cond:
            raise InvalidArgument("cond", sorted(cond), "{} (ComfyUI's guider holds it)")
        return self.predict_scaled(x, float(sigma.flatten()[0]), 1.0)

    def predict_scaled(
        self, x: Tensor, level: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction:
        clean = level == 0.0
        sigma = self._comfy_sigma(self.sigma_range()[0] if clean else level, x)
        denoised = self.call(x, sigma, scale, context)
        return prediction_of(x, sigma, denoised, self.process, clean)

    def _comfy_sigma(self, level: float, x: Tensor) -> Tensor:
        """ComfyUI's own sigma tensor for a level of its schedule (bit-exact), else converted."""
        ones = x.new_ones([x.shape[0]], dtype=self._sigmas.dtype)
        index = self._index.get(level)
        if index is not None:
            return self._sigmas[index] * ones
        if self.process.name == "flow":
            return torch.tensor(level / (1.0 + level), dtype=ones.dtype, device=x.device) * ones
        return torch.tensor(level, dtype=ones.dtype, device=x.device) * ones


def prediction_of(
    x: Tensor, sigma: Tensor, denoised: Tensor, process: Process, clean: bool = False
) -> Prediction:
    """The `Prediction` pair of ComfyUI's denoised output for ``x`` at ComfyUI's ``sigma`` (one
    per row). ``clean``: the call stood in for level 0 (at the smallest sigma), where ``x`` is
    its own ``x0``."""
    x64, d64 = x.to(torch.float64), denoised.to(torch.float64)
    shape = (-1, *([1] * (x.ndim - 1)))
    t = sigma.to(torch.float64).view(shape)
    if clean:
        x0 = x64
        eps = (x64 - d64) / t
    elif process.name == "flow":
        x0 = d64
        eps = (x64 - (1.0 - t) * d64) / t
    else:
        x0 = d64
        eps = (x64 - d64) / t
    return Prediction(x0.to(x.dtype), eps.to(x.dtype))


class ComfyGuider:
    """zsampling's `Guider` over ComfyUI's guider: CFG happens inside ComfyUI, at each call's
    scale. Counts the guided calls (ComfyUI's own evaluations are counted by `ScaledCall`) and
    remembers the last call, for the callback."""

    def __init__(self, model: ComfyModel, counter: EvaluationCounter) -> None:
        self.model = model
        self.counter = counter
        self.last: tuple[Tensor, Prediction] | None = None

    def __call__(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction:
        positive = context.conditioning if context is not None else "cond"
        if positive not in ("cond", "uncond"):
            raise InvalidArgument(
                "conditioning", positive, "'cond' or 'uncond': the two branches of ComfyUI's guider"
            )
        self.counter.guided_calls += 1
        # the negative prompt as the positive branch: CFG of it with itself is it at any scale
        pred = self.model.predict_scaled(x, sigma, scale if positive == "cond" else 0.0, context)
        self.last = (x, pred)
        return pred


@dataclass(frozen=True)
class SamplerSpec:
    """What a SAMPLER node chose: the sampler class, its settings, the solver, a weak model,
    and a ComfyUI SAMPLER that makes its denoise moves (``around``; see
    `zsampling.integrations.comfyui.around`).

    ``settings`` may leave the sampler's main guidance scale (the first of its declared
    ``scales``) out; it is then the guider's ``cfg`` at sampling time.
    """

    cls: type[BaseModel]
    settings: Mapping[str, Any]
    solver: Solver
    weak_model: Any = None
    counter: EvaluationCounter | None = field(default=None, compare=False)
    around: Any = None

    def build(self, guider_cfg: float) -> ReflectiveSampler:
        values = dict(self.settings)
        for main in scale_fields(self.cls)[:1]:
            if values.get(main) is None:
                values[main] = float(guider_cfg)
        return validated(self.cls, values)  # type: ignore[return-value]


def validated(cls: type[BaseModel], values: Mapping[str, Any]) -> BaseModel:
    """``cls`` built from ``values``, or an `InvalidArgument` naming the first bad setting."""
    name = getattr(cls, "name", cls.__name__)
    try:
        return cls.model_validate(dict(values))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            valid = ", ".join(cls.model_fields) or "(none)"
            raise InvalidArgument(
                f"{name}.{where}", first["input"], f"a setting of {name}: {valid}"
            ) from None
        value = values.get(where, first.get("input"))
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidArgument(f"{name}.{where or 'settings'}", value, message) from None


def comfy_sampler(spec: SamplerSpec) -> Any:
    """A ComfyUI SAMPLER (``comfy.samplers.KSAMPLER``) that runs ``spec`` via `sample_in_comfy`."""
    spec.build(1.0)  # bad settings fail in the node, not half-way through sampling
    if spec.around is not None:
        check_sampler(spec.around)
    return comfy.samplers.KSAMPLER(sample_in_comfy, extra_options={"spec": spec})


@torch.no_grad()
def sample_in_comfy(
    model: Any,
    x: Tensor,
    sigmas: Tensor,
    extra_args: dict[str, Any] | None = None,
    callback: Callback | None = None,
    disable: bool | None = None,
    *,
    spec: SamplerSpec,
) -> Tensor:
    """ComfyUI's sampler-function signature; see the module docstring."""
    extra_args = extra_args if extra_args is not None else {}
    guider = guider_of(model)
    sampler = spec.build(guider.cfg)
    check_steps = getattr(sampler, "check_steps", None)
    if check_steps is not None:
        check_steps(len(sigmas) - 1)
    run = _Run(sampler, spec, x, sigmas, callback, disable, extra_args.get("seed"))
    if spec.weak_model is None:
        return run.go({MAIN: run.guider(model, extra_args)})
    weak_name = str(getattr(sampler, "weak_model", "weak"))
    return _with_weak_model(run, model, extra_args, spec.weak_model, weak_name)


class _Run:
    """One sampling run: a path over ComfyUI's sigmas with zsampling's solver and observers."""

    def __init__(
        self,
        sampler: ReflectiveSampler,
        spec: SamplerSpec,
        x: Tensor,
        sigmas: Tensor,
        callback: Callback | None,
        disable: bool | None,
        seed: int | None,
    ) -> None:
        self.sampler = sampler
        self.spec = spec
        self.x = x
        self.sigmas = sigmas
        self.callback = callback
        self.disable = disable
        self.seed = seed
        self.counter = spec.counter if spec.counter is not None else EvaluationCounter()

    def guider(self, model: Any, extra_args: Mapping[str, Any]) -> ComfyGuider:
        call = ScaledCall(model, extra_args, self.counter)
        levels = levels_of(call.guider.model_patcher)
        adapter = ComfyModel(levels, call, self.sigmas, self.x)
        return ComfyGuider(adapter, self.counter)

    def go(self, guiders: dict[str, Guider]) -> Tensor:
        main = guiders[MAIN]
        assert isinstance(main, ComfyGuider)
        process = main.model.process
        levels = to_levels(self.sigmas, process)
        path: NoiseSamplerPath
        if self.spec.around is None:
            progress = StepProgress(main, self.callback, self.sigmas, self.disable)
            path = NoiseSamplerPath(levels, process, guiders, self.spec.solver, [progress])
        else:  # the wrapped sampler reports its own steps to the callback
            progress = StepProgress(main, None, self.sigmas, self.disable)
            path = AroundSamplerPath(
                levels, process, guiders, self.spec.solver, [progress],
                sampler=self.spec.around, comfy_sigmas=self.sigmas, callback=self.callback,
                seed=self.seed,
            )  # fmt: skip
        if self.seed is not None:
            path.noise_sampler = k_sampling.default_noise_sampler(self.x, seed=int(self.seed) + 1)
        try:
            out = walk(self.sampler, self.x, path)
        finally:
            progress.close()
        log.info("zsampling %s: %s", self.sampler.name, self.counter.as_dict())
        return out


class _Nested(comfy.samplers.Sampler):
    """A SAMPLER that, once ComfyUI prepared the weak model's guider, runs the whole run."""

    def __init__(self, run: _Run, main: ComfyGuider, weak_name: str) -> None:
        self.run = run
        self.main = main
        self.weak_name = weak_name
        self.result: Tensor | None = None

    def sample(
        self,
        model_wrap: Any,
        sigmas: Tensor,
        extra_args: dict[str, Any],
        callback: Any,
        noise: Tensor,
        latent_image: Tensor | None = None,
        denoise_mask: Tensor | None = None,
        disable_pbar: bool = False,
    ) -> Tensor:
        weak_model = comfy.samplers.KSamplerX0Inpaint(model_wrap, sigmas)
        weak_model.latent_image = latent_image
        weak_model.noise = noise
        weak_args = {**extra_args, "denoise_mask": denoise_mask}
        weak = self.run.guider(weak_model, weak_args)
        self.result = self.run.go({MAIN: self.main, self.weak_name: weak})
        return self.result


def _with_weak_model(
    run: _Run, model: Any, extra_args: Mapping[str, Any], weak_patcher: Any, weak_name: str
) -> Tensor:
    main = run.guider(model, extra_args)
    guider = main.model.call.guider
    weak = comfy.samplers.CFGGuider(weak_patcher)
    weak.original_conds = {k: [c.copy() for c in v] for k, v in guider.original_conds.items()}
    weak.cfg = guider.cfg
    latent = model.latent_image
    if latent is not None and bool(torch.count_nonzero(latent) > 0):
        latent = guider.inner_model.process_latent_out(latent)  # the weak guider processes it in
    mask = extra_args.get("denoise_mask")
    if mask is not None:  # prepared to the latent's shape; ComfyUI prepares it again from one
        mask = mask[:, :1]  # channel per item (all of them would be read as more items)
    nested = _Nested(run, main, weak_name)
    weak.sample(
        model.noise,
        latent if latent is not None else torch.zeros_like(run.x),
        nested,
        run.sigmas,
        denoise_mask=mask,
        callback=None,
        disable_pbar=True,
        seed=run.seed,
    )
    assert nested.result is not None
    return nested.result
