"""zsampling's samplers as k-diffusion sampler functions.

Each function has k-diffusion's signature, ``sample_x(model, x, sigmas, extra_args=None,
callback=None, disable=None, **options)``, so it drops into any tool that takes a
``k_diffusion.sampling.sample_*`` function: ``x`` is the starting latent already scaled to
``sigmas[0]`` (``noise * sigmas[0]``), ``sigmas`` end in 0 (any schedule: Karras, AYS, ...), and the
result is the denoised latent. Nothing here imports k-diffusion.

For example, with a CompVis-style latent diffusion model::

    from k_diffusion.external import CompVisDenoiser
    from k_diffusion.sampling import get_sigmas_karras
    from zsampling.integrations.kdiffusion import sample_zigzag

    denoiser = CompVisDenoiser(ldm)                       # returns x0; does no CFG itself
    sigmas = get_sigmas_karras(30, 0.03, 14.6)
    x = torch.randn(1, 4, 64, 64) * sigmas[0]
    out = sample_zigzag(denoiser, x, sigmas,
                        extra_args={"cond": c, "uncond": uc, "cond_scale": 5.5})

=====================  =============================================================
function               zsampling sampler
=====================  =============================================================
`sample_standard`      `zsampling.Standard` (with ``solver="euler"``: ``sample_euler``)
`sample_zigzag`        `zsampling.Zigzag` (Z-Sampling)
`sample_restart`       `zsampling.Restart`
`sample_w2sd`          `zsampling.W2SD` (a second, weak denoiser inverts)
=====================  =============================================================

`get_sigmas` gives any registered zsampling schedule's sigmas for a denoiser (``"beta"``,
``"kl-optimal"``, ``"simple"``, ...; see docs/schedules.md), as k-diffusion's ``get_sigmas_*`` do.

Reflective samplers need the guidance scale *per call* (Z-Sampling denoises at ``guidance`` and
inverts at ``inversion_guidance``), so how classifier-free guidance reaches the model matters. Two
conventions, chosen by ``cfg``:

``cfg="split"`` (default): ``model`` is a plain denoiser, ``model(x, sigma, **kwargs) -> x0``, and
``extra_args`` holds the two branches::

    extra_args = {"cond": C, "uncond": U, "cond_scale": 5.5, **shared}

``C`` and ``U`` are either tensors, passed as ``model(x, sigma, cond=C)`` (k-diffusion's
``CompVisDenoiser`` convention; the keyword is ``cond_arg``), or dicts of keyword arguments,
passed as ``model(x, sigma, **C)``. ``uncond`` may be missing or None (then only scale 1 is
possible). zsampling's guider computes ``x0_u + scale * (x0_c - x0_u)`` with both branches batched
in one call, and evaluates only one branch at scale 0 or 1. ``shared`` entries go to every call:
tensors whose first dimension is the batch are batched with the branches, anything else is passed
as it is.

``cfg="model"``: ``model`` already does CFG and reads its scale from ``extra_args["cond_scale"]``
(the key is ``scale_key``), as A1111's ``CFGDenoiser`` (``forward(x, sigma, uncond, cond,
cond_scale, ...)``) and the CFG wrappers of k-diffusion's example scripts do. ``extra_args`` are
passed unchanged except that ``cond_scale`` is set to the scale of each call.

ComfyUI is neither: its sampler receives a model whose CFG scale lives inside its guider object
(``CFGGuider.cfg``) and whose call takes no scale argument, so there the functions need a custom
node that hands them the guider's inner model and conditioning in one of the two forms above.

The sampler's main guidance scale (the first of its declared ``scales``: ``guidance`` for the
built-ins) defaults to ``extra_args["cond_scale"]``, the tool's CFG setting. ``callback``
receives k-diffusion's dict ``{"x", "i", "sigma", "sigma_hat", "denoised"}`` once per *denoising*
step, before the step, with the guided ``denoised`` that step used (``sigma_hat == sigma``: no
churn). A zigzag step calls it again for its re-denoise (same ``i``); inversions do not call it.
``disable`` turns off the tqdm progress bar (one tick per level reached). ``solver`` is any
registered solver by name (``"euler"`` = ``"ddim"``, ``"dpmpp-2m"``, ``"heun"``, ``"unipc"``,
``"euler-ancestral"``, ``"dpmpp-2m-sde"``, ...; k-diffusion's spellings such as ``"dpmpp_2m"``,
``"dpm_2"`` or ``"dpmpp_2m_sde"`` too) or a solver object. A stochastic solver draws from
``noise_sampler(sigma, sigma_next)`` where given (with the step's two levels), else from
``torch.randn``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from zsampling.adapters.kdiffusion import KDiffusionModel
from zsampling.core.cfg import CFG
from zsampling.core.errors import InvalidArgument
from zsampling.core.events import StepEvent
from zsampling.core.guidance import GuidanceContext, Guider
from zsampling.core.model import Conditioning
from zsampling.core.path import MAIN, SamplingPath
from zsampling.core.prediction import Prediction
from zsampling.core.rules import BatchedGuider
from zsampling.core.sampler import ReflectiveSampler, scale_fields, walk
from zsampling.core.solvers import DDIM, DPMSolverPP2M, Euler, Solver
from zsampling.plugins.manager import default_registry
from zsampling.samplers import W2SD, Restart, Standard, Zigzag

CfgMode = Literal["split", "model"]
Callback = Callable[[dict[str, Any]], Any]
NoiseSampler = Callable[[Tensor, Tensor], Tensor]

SOLVERS: dict[str, Callable[[], Solver]] = {
    "euler": Euler,
    "ddim": DDIM,
    "dpmpp-2m": DPMSolverPP2M,
    "dpmpp_2m": DPMSolverPP2M,
}
"""The solvers this module named before it looked them up in the registry (kept for callers that
read it; `solver_from` takes any registered solver)."""

KDIFFUSION_SPELLINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "dpm_2": ("dpm2", {}),
    "uni_pc": ("unipc", {"variant": "bh1"}),
    "uni_pc_bh2": ("unipc", {"variant": "bh2"}),
}
"""k-diffusion / ComfyUI sampler names that are not zsampling's with ``_`` read as ``-``, with
the settings they imply."""

__all__ = [
    "get_sigmas",
    "run_sampler",
    "sample_restart",
    "sample_standard",
    "sample_w2sd",
    "sample_zigzag",
]


@dataclass
class _KGuider(BatchedGuider):
    """zsampling's CFG guider over a k-diffusion denoiser, remembering its last call (for the
    callback). In ``model`` mode the denoiser does CFG itself: it is a `_CFGDenoiserModel`, which
    takes each call's scale (`GuidanceEmbedding`)."""

    last: tuple[Tensor, Prediction] | None = None

    def __call__(
        self, x: Tensor, sigma: float, scale: float, context: GuidanceContext | None = None
    ) -> Prediction:
        pred = super().__call__(x, sigma, scale, context)
        self.last = (x, pred)
        return pred


class _CFGDenoiserModel(KDiffusionModel):
    """A denoiser that does CFG itself and reads the scale from ``kwargs[scale_key]``."""

    def __init__(self, *args: Any, scale_key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scale_key = scale_key

    def predict_guided(
        self, x: Tensor, sigma: Tensor, cond: Conditioning, scale: float
    ) -> Prediction:
        return self.predict_args(x, sigma, {**cond, self.scale_key: scale})


def _branch(value: Any, cond_arg: str, field: str) -> Conditioning:
    if isinstance(value, Tensor):
        return {cond_arg: value}
    if isinstance(value, Mapping) and all(isinstance(v, Tensor) for v in value.values()):
        return dict(value)
    raise InvalidArgument(
        f"extra_args[{field!r}]",
        type(value).__name__,
        f"a tensor (passed as {cond_arg}=...) or a dict of keyword-argument tensors",
    )


def _guider(
    model: Callable[..., Tensor],
    x: Tensor,
    extra_args: Mapping[str, Any],
    cfg: CfgMode,
    cond_arg: str,
    scale_key: str,
) -> _KGuider:
    if cfg not in ("split", "model"):
        raise InvalidArgument("cfg", cfg, "'split' (zsampling's CFG) or 'model' (the model's)")
    if cfg == "model":
        extra = {k: v for k, v in extra_args.items() if k != scale_key}
        denoiser = _CFGDenoiserModel(
            model,
            x.shape[1:],
            extra_args=extra,
            dtype=x.dtype,
            device=x.device,
            scale_key=scale_key,
        )
        return _KGuider(denoiser, {}, None, CFG())
    extra = dict(extra_args)
    if "cond" not in extra:
        raise InvalidArgument(
            "extra_args",
            sorted(extra),
            "{'cond': ..., 'uncond': ..., 'cond_scale': ...} for cfg='split' (or cfg='model' "
            "for a denoiser that does CFG itself)",
        )
    cond = _branch(extra.pop("cond"), cond_arg, "cond")
    raw_uncond = extra.pop("uncond", None)
    uncond = None if raw_uncond is None else _branch(raw_uncond, cond_arg, "uncond")
    if uncond is not None and set(uncond) != set(cond):
        raise InvalidArgument(
            "extra_args['uncond']",
            sorted(uncond),
            f"the same keys as extra_args['cond']: {sorted(cond)}",
        )
    extra.pop(scale_key, None)
    constants: dict[str, Any] = {}
    for key, value in extra.items():
        if isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == x.shape[0]:
            cond[key] = value
            if uncond is not None:
                uncond[key] = value
        else:
            constants[key] = value
    adapter = KDiffusionModel(
        model, x.shape[1:], extra_args=constants, dtype=x.dtype, device=x.device
    )
    return _KGuider(adapter, cond, uncond, CFG())


class NoiseSamplerPath(SamplingPath):
    """A path whose fresh noise can come from a k-diffusion ``noise_sampler(sigma, sigma_next)``,
    called with the renoise jump's or the denoise step's two levels (noisier first, as
    k-diffusion orders them).

    Shared with the ComfyUI integration, whose samplers take the same kind of noise sampler.
    """

    noise_sampler: NoiseSampler | None = None
    _jump: tuple[float, float] = (0.0, 0.0)

    def renoise(self, x: Tensor, src: int, dst: int) -> Tensor:
        self._jump = (self.point(dst).sigma, self.point(src).sigma)
        return super().renoise(x, src, dst)

    def denoise(
        self,
        x: Tensor,
        i: int,
        guidance: float,
        model: str = MAIN,
        conditioning: str = "cond",
        prediction: Prediction | None = None,
    ) -> Tensor:
        """A denoise whose stochastic solver's noise is drawn for the step's levels."""
        self._jump = (self.point(i).sigma, self.point(i + 1).sigma)
        return super().denoise(x, i, guidance, model, conditioning, prediction)

    def noise_like(self, x: Tensor) -> Tensor:
        if self.noise_sampler is None:
            return super().noise_like(x)
        hi, lo = (torch.tensor(v, dtype=x.dtype, device=x.device) for v in self._jump)
        return self.noise_sampler(hi, lo).to(x.dtype)


def solver_from(solver: Solver | str) -> Solver:
    """A solver object, or a registered one by name: zsampling's (``"dpmpp-2m"``) or the
    k-diffusion/ComfyUI spelling (``"dpmpp_2m"``, ``"dpm_2"``, ``"uni_pc_bh2"``); a clear
    error naming the registered solvers for other names."""
    if not isinstance(solver, str):
        return solver
    registry = default_registry()
    name, settings = KDIFFUSION_SPELLINGS.get(solver, (solver.replace("_", "-"), {}))
    if registry.lookup("solver", solver) is not None:
        name, settings = solver, {}
    cls: Any = registry.get("solver", name, "solver").cls
    return cls(**settings)


def get_sigmas(schedule: str, denoiser: Any, steps: int, **settings: Any) -> Tensor:
    """Any registered zsampling schedule's sigmas for a k-diffusion denoiser, as k-diffusion's
    ``get_sigmas_*`` functions give them (float32, noisiest first, ending in 0)::

        sigmas = get_sigmas("beta", denoiser, 20)          # or "kl-optimal", "simple", ...
        out = sample_zigzag(denoiser, x * sigmas[0], sigmas, extra_args=...)

    The denoiser's training ladder is its ``sigmas`` table (every ``DiscreteSchedule``), its
    range that table's ends or its ``sigma_min``/``sigma_max``; ``settings`` are the schedule's
    other settings (``rho=2.0``). Bad names and settings are refused by name.
    """
    from pydantic import ValidationError

    from zsampling.core.schedule import schedule_levels
    from zsampling.plugins.manager import default_registry

    cls = default_registry().get("schedule", schedule, "schedule").cls
    try:
        component: Any = cls(steps=steps, **settings)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        value = {"steps": steps, **settings}.get(where, first.get("input"))
        raise InvalidArgument(f"{schedule}.{where}", value, first["msg"]) from None
    return schedule_levels(component, KDiffusionModel(denoiser, ())).to(torch.float32)


def run_sampler(
    sampler: ReflectiveSampler,
    model: Callable[..., Tensor],
    x: Tensor,
    sigmas: Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    disable: bool | None = None,
    *,
    solver: Solver | str = "euler",
    cfg: CfgMode = "split",
    cond_arg: str = "cond",
    scale_key: str = "cond_scale",
    extra_models: Mapping[str, Callable[..., Tensor]] | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> Tensor:
    """Run any zsampling sampler with k-diffusion's calling convention (see the module docstring).

    ``extra_models`` are further denoisers by name (W2SD's weak model), called with the same
    ``extra_args``.
    """
    extra_args = extra_args or {}
    check_steps = getattr(sampler, "check_steps", None)
    if check_steps is not None:
        check_steps(len(sigmas) - 1)
    guiders: dict[str, Guider] = {}
    main = _guider(model, x, extra_args, cfg, cond_arg, scale_key)
    guiders[MAIN] = main
    for name, other in (extra_models or {}).items():
        guiders[name] = _guider(other, x, extra_args, cfg, cond_arg, scale_key)
    progress = StepProgress(main, callback, sigmas, disable)
    path = NoiseSamplerPath(
        sigmas.detach().cpu(), main.model.process, guiders, solver_from(solver), [progress]
    )
    path.noise_sampler = noise_sampler
    try:
        return walk(sampler, x, path)
    finally:
        progress.close()


class RemembersLastCall(Protocol):
    """A guider that keeps its last ``(x, prediction)``, for the callback's ``denoised``."""

    last: tuple[Tensor, Prediction] | None


class StepProgress:
    """Calls the k-diffusion callback after each denoise step and ticks a progress bar.

    The callback's ``sigma`` is the tool's own level (``sigmas[i]``, same dtype), which need not be
    zsampling's level (ComfyUI's flow models count levels in flow time).
    """

    def __init__(
        self,
        guider: RemembersLastCall,
        callback: Callback | None,
        sigmas: Tensor,
        disable: bool | None,
    ) -> None:
        self.guider = guider
        self.callback = callback
        self.sigmas = sigmas
        self.bar: Any = None
        self.reached = 0
        if disable is not True:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm comes with diffusers
                return
            self.bar = tqdm(total=len(sigmas) - 1, disable=disable)  # None: off when not a tty

    def __call__(self, event: StepEvent) -> None:
        if event.kind != "denoise" or event.model != MAIN:
            return
        if self.callback is not None and self.guider.last is not None:
            x, pred = self.guider.last
            sigma = self.sigmas[event.src]
            self.callback(
                {"x": x, "i": event.src, "sigma": sigma, "sigma_hat": sigma, "denoised": pred.x0}
            )
        if self.bar is not None and event.dst > self.reached:
            self.bar.update(event.dst - self.reached)
            self.reached = event.dst

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _scale(
    field: str, value: float | None, extra_args: Mapping[str, Any] | None, scale_key: str
) -> float:
    """The main scale ``field``: as given, else ``extra_args[scale_key]`` (k-diffusion's CFG)."""
    if value is not None:
        return float(value)
    given = (extra_args or {}).get(scale_key)
    if given is None:
        raise InvalidArgument(
            field, None, f"a guidance scale (or extra_args[{scale_key!r}] to default to)"
        )
    return float(given)


_RUN_OPTIONS = (
    inspect.Parameter("solver", inspect.Parameter.KEYWORD_ONLY, default="euler"),
    inspect.Parameter("cfg", inspect.Parameter.KEYWORD_ONLY, default="split"),
    inspect.Parameter("cond_arg", inspect.Parameter.KEYWORD_ONLY, default="cond"),
    inspect.Parameter("scale_key", inspect.Parameter.KEYWORD_ONLY, default="cond_scale"),
)
_KDIFFUSION_ARGS = (
    inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("sigmas", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("extra_args", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
    inspect.Parameter("callback", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
    inspect.Parameter("disable", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
)


def sampler_function(
    cls: type[ReflectiveSampler],
    name: str,
    doc: str,
    *,
    exclude: tuple[str, ...] = (),
    extra: tuple[inspect.Parameter, ...] = (),
    models: Callable[[ReflectiveSampler, dict[str, Any]], dict[str, Callable[..., Tensor]]]
    | None = None,
) -> Callable[..., Tensor]:
    """A k-diffusion sampler function for the reflective sampler class ``cls``.

    The function's ``__signature__`` is explicit, as k-diffusion's hand-written ones are: the six
    k-diffusion arguments, then ``extra`` run options (``noise_sampler``, ``weak_model``), the
    sampler's own settings (its pydantic fields but ``exclude``; its main guidance scale, the
    first of its ``scales``, defaults to ``extra_args["cond_scale"]``) and the run options
    ``solver``, ``cfg``, ``cond_arg``, ``scale_key``. Tools that inspect a sampler's parameters
    (to decide what to pass) see them all; a misspelt option is a ``TypeError``, as with any
    function. ``models`` maps the bound options to further denoisers by name (W2SD's weak
    model).
    """
    main = scale_fields(cls)[:1]
    fields = [
        inspect.Parameter(
            field,
            inspect.Parameter.KEYWORD_ONLY,
            default=None if field in main else info.default,
            annotation=float | None if field in main else info.annotation,
        )
        for field, info in cls.model_fields.items()  # type: ignore[attr-defined]
        if field not in exclude
    ]
    signature = inspect.Signature([*_KDIFFUSION_ARGS, *extra, *fields, *_RUN_OPTIONS])
    settings = [p.name for p in fields]
    options = [p.name for p in extra if p.name != "weak_model"]

    @torch.no_grad()
    def function(*args: Any, **kwargs: Any) -> Tensor:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        values = {k: a[k] for k in settings}
        for field in main:
            values[field] = _scale(field, values.get(field), a["extra_args"], a["scale_key"])
        sampler = cls(**values)
        return run_sampler(
            sampler,
            a["model"],
            a["x"],
            a["sigmas"],
            a["extra_args"],
            a["callback"],
            a["disable"],
            solver=a["solver"],
            cfg=a["cfg"],
            cond_arg=a["cond_arg"],
            scale_key=a["scale_key"],
            extra_models=models(sampler, a) if models is not None else None,
            **{k: a[k] for k in options},
        )

    function.__signature__ = signature  # type: ignore[attr-defined]
    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    function.__module__ = __name__
    return function


NOISE_SAMPLER = inspect.Parameter("noise_sampler", inspect.Parameter.KEYWORD_ONLY, default=None)
"""k-diffusion's ``noise_sampler(sigma, sigma_next)``: where stochastic solvers draw."""

sample_standard = sampler_function(
    Standard,
    "sample_standard",
    """Plain sampling: ``sample_euler`` (no churn) or, with ``solver="dpmpp-2m"``,
    ``sample_dpmpp_2m`` (any registered solver: ``"euler_ancestral"`` is
    ``sample_euler_ancestral``, its noise from ``noise_sampler``), with zsampling's guider.""",
    extra=(NOISE_SAMPLER,),
)

sample_zigzag = sampler_function(
    Zigzag,
    "sample_zigzag",
    """Z-Sampling: denoise at ``guidance``, invert at ``inversion_guidance``, denoise again, on the
    first ``zigzag_steps`` steps (default: all but the last); see `zsampling.Zigzag`.""",
    extra=(NOISE_SAMPLER,),
)

sample_restart = sampler_function(
    Restart,
    "sample_restart",
    """Restart sampling over ``[restart_min, restart_max]`` (sigmas), ``rounds`` times; fresh noise
    from ``noise_sampler(sigma, sigma_next)`` (k-diffusion's convention) or ``torch.randn``.""",
    extra=(NOISE_SAMPLER,),
)

sample_w2sd = sampler_function(
    W2SD,
    "sample_w2sd",
    """W2SD: invert with ``weak_model`` (same ``extra_args``), denoise with ``model``.""",
    exclude=("weak_model",),
    extra=(inspect.Parameter("weak_model", inspect.Parameter.KEYWORD_ONLY), NOISE_SAMPLER),
    models=lambda sampler, a: {sampler.weak_model: a["weak_model"]},  # type: ignore[attr-defined]
)
