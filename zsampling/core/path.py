"""The sampling path: what a reflective sampler walks on.

A `SamplingPath` owns everything a sampler must not have to know: the levels, the model(s) behind a
guider, the solver and its multistep history, the noise source and the observers. A sampler only
chooses the route: ``denoise`` (one level down), ``invert`` (one level up) and ``renoise`` (jump up
with fresh noise), each with the guidance scale it wants.

Multistep history is keyed by direction and source level: a denoise from level ``i`` uses the
prediction of the latest denoise from ``i - 1``; an invert from ``i + 1`` that of the latest invert
from ``i + 2``. So a zigzag's re-denoise reuses the history of the path it is on, an isolated zag
is first order, and a ``renoise`` (fresh noise: a new path) clears the history.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor

from zsampling.core.errors import ComponentFault, InvalidArgument
from zsampling.core.events import Observer, StepEvent, StepKind
from zsampling.core.finite import FiniteWatch
from zsampling.core.guidance import Direction, GuidanceContext, Guider
from zsampling.core.levels import Process
from zsampling.core.prediction import Prediction, prediction_problem
from zsampling.core.solvers import (
    History,
    LevelPoint,
    Solver,
    StepContext,
    ddim_step,
    takes_context,
)

InversionPoint = Literal["official", "target", "source"]
Kept = Literal["eps", "v"]
"""What a step from a level other than the evaluated one keeps of a model's prediction: its
network's own output, ``eps`` (epsilon and flow models: their eps is kept, ``x0`` re-derived) or
``v`` (v-prediction models: both halves re-derived from ``v``, as a diffusers scheduler does)."""
INVERSION_POINTS: tuple[InversionPoint, ...] = ("official", "target", "source")

MAIN = "main"


def validate_sigmas(sigmas: Tensor) -> Tensor:
    """Check levels: 1-D, at least one step, non-negative, strictly decreasing, no NaN; return
    them as float64. Levels of another dtype are widened exactly (``.to(float64)``): a run on
    float32 levels is the run on their float64 cast. A schedule component must give float64
    itself (`zsampling.core.schedule.check_levels`)."""
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise InvalidArgument(
            "sigmas", tuple(sigmas.shape), "a 1-D tensor of at least 2 levels (1 step)"
        )
    s = sigmas.to(torch.float64)
    # On the list: a few dozen float comparisons, not a dozen tensor kernels and reads per run.
    levels = s.tolist()
    if any(math.isnan(v) or v < 0 for v in levels):
        raise InvalidArgument("sigmas", levels, "levels must be >= 0 and not NaN")
    if any(math.isinf(v) for v in levels[1:]):
        raise InvalidArgument("sigmas", levels, "only the first level may be infinite")
    if any(b >= a for a, b in itertools.pairwise(levels)):
        raise InvalidArgument("sigmas", levels, "levels must be strictly decreasing")
    return s


class SamplingPath:
    """Levels plus guided steps both ways; see the module docstring."""

    def __init__(
        self,
        sigmas: Tensor,
        process: Process,
        guiders: Mapping[str, Guider],
        solver: Solver,
        observers: Sequence[Observer] = (),
        generators: Sequence[torch.Generator] = (),
        nonfinite_hint: str = "",
        keeps: Mapping[str, Kept] | None = None,
        guider: object = None,
    ) -> None:
        if MAIN not in guiders:
            raise InvalidArgument("guiders", sorted(guiders), f"must include {MAIN!r}")
        self.sigmas = validate_sigmas(sigmas)
        self.process = process
        self.guiders = dict(guiders)
        self.solver = solver
        self.observers = list(observers)
        self.generators = list(generators)
        self.nonfinite_hint = nonfinite_hint
        self.keeps: dict[str, Kept] = dict(keeps or {})
        for name, kept in self.keeps.items():
            if kept not in ("eps", "v"):
                raise InvalidArgument(f"keeps[{name!r}]", kept, "'eps' or 'v'")
        alpha, s = process.coefficients(self.sigmas)
        ode = process.ode
        self._points = [  # tolist(): one conversion, not three tensor item reads per level
            LevelPoint(g, a, n, ode)
            for g, a, n in zip(self.sigmas.tolist(), alpha.tolist(), s.tolist(), strict=True)
        ]
        self._with_context = takes_context(solver)
        self._renoises = bool(getattr(solver, "renoises", False))
        self._history: dict[tuple[int, int], History] = {}
        self._contexts: dict[tuple[int, Direction, str], GuidanceContext] = {}
        self._steps = len(self._points) - 1
        self.guider = guider  # the component the guiders were bound from, named when they fail
        self.finite = FiniteWatch(nonfinite_hint)  # read by `finish`, see zsampling.core.finite

    @property
    def steps(self) -> int:
        """Number of steps T (levels t_0 .. t_T)."""
        return self._steps

    def point(self, i: int) -> LevelPoint:
        """Level ``i`` with its coefficients."""
        self._check_index("level", i, 0, self.steps)
        return self._points[i]

    def predict(
        self,
        x: Tensor,
        at: int,
        guidance: float,
        model: str = MAIN,
        conditioning: str = "cond",
    ) -> Prediction:
        """Guided prediction for ``x`` with the model evaluated at level ``at``.

        ``conditioning`` names the guider's conditioning used as the positive branch (``cond``,
        the prompts, unless the guider was given others).
        """
        return self._predict(x, at, guidance, model, "predict", conditioning)

    def predict_scales(
        self,
        x: Tensor,
        at: int,
        scales: Sequence[float],
        model: str = MAIN,
        conditioning: str = "cond",
    ) -> list[Prediction]:
        """Guided predictions for ``x`` at level ``at``, one per scale, for a denoise from there.

        A guider with an ``at_scales`` method (every `GuidanceRule`) makes them all from one
        evaluation of its branches, so an implicit zigzag reads the guidance gap
        ``predict(g1) - predict(g2)`` at the cost of one guided call; any other guider is called
        once per scale. Hand one of them to `denoise` (``prediction=``) to step with it.
        """
        self._check_index("level", at, 0, self.steps)
        guider = self._guider(model)
        sigma = self._points[at].sigma
        context = self._context(at, "denoise", conditioning)
        many = getattr(guider, "at_scales", None)
        if many is None:
            made = [guider(x, sigma, float(s), context) for s in scales]
        else:
            made = many(x, sigma, tuple(float(s) for s in scales), context)
        return [self._checked(p, x, model) for p in made]

    def denoise(
        self,
        x: Tensor,
        i: int,
        guidance: float,
        model: str = MAIN,
        conditioning: str = "cond",
        prediction: Prediction | None = None,
    ) -> Tensor:
        """Step from level ``i`` down to level ``i + 1`` with the solver.

        ``prediction``: the guided prediction of ``x`` at level ``i`` already made (by
        `predict_scales`, at ``guidance``), stepped with instead of a new model call.
        """
        self._check_index("step", i, 0, self.steps - 1)
        src, dst = self._points[i], self._points[i + 1]
        if prediction is None:
            pred = self._predict(x, i, guidance, model, "denoise", conditioning)
        else:
            pred = self._checked(prediction, x, model)
        out, state = self._step(x, pred, src, dst, (1, i, True), guidance, model, conditioning)
        self._history[(1, i)] = History(src, pred, state)
        return self._emit("denoise", i, i + 1, out, guidance, model)

    def invert(
        self,
        x: Tensor,
        i: int,
        guidance: float,
        evaluate_at: InversionPoint = "source",
        model: str = MAIN,
        conditioning: str = "cond",
    ) -> Tensor:
        """Step from level ``i + 1`` up to level ``i``.

        ``evaluate_at`` picks where the model is evaluated and which levels the arithmetic uses:

        - ``source``: model at ``t_{i+1}`` (where ``x`` sits), step ``t_{i+1} -> t_i``; textbook
          DDIM inversion, and the only mode that uses multistep history.
        - ``target``: model at ``t_i``, step ``t_{i+1} -> t_i`` (the released code's intent).
        - ``official``: model at ``t_i``, step from ``t_{i+2}`` to ``t_{i+1}``, the result then
          used as if it sat at ``t_i``: what the released Z-Sampling code computes (its
          ``DDIMInverseScheduler`` call is one level off). Needs ``i + 2 <= T``.

        ``target`` and ``official`` use the prediction at a level other than the one it was made
        at: they keep the network's own output there (``keeps``: eps, or v for a v-prediction
        model, which the released code's scheduler converts at its own source level).
        """
        self._check_index("step", i, 0, self.steps - 1)
        if evaluate_at not in INVERSION_POINTS:
            raise InvalidArgument("evaluate_at", evaluate_at, f"one of {list(INVERSION_POINTS)}")
        if evaluate_at == "source":
            src, dst = self._points[i + 1], self._points[i]
            pred = self._predict(x, i + 1, guidance, model, "invert", conditioning)
            move = (-1, i + 1, True)
            out, state = self._step(x, pred, src, dst, move, guidance, model, conditioning)
            self._history[(-1, i + 1)] = History(src, pred, state)
            return self._emit("invert", i + 1, i, out, guidance, model)
        if evaluate_at == "target":
            src, dst = self._points[i + 1], self._points[i]
            pred = self._predict(x, i, guidance, model, "invert", conditioning)
            pred = self._reinterpreted(x, pred, self._points[i], src, model)
        else:
            if i + 2 > self.steps:
                raise InvalidArgument(
                    "step", i, f"an official zag needs level i + 2 <= T = {self.steps}"
                )
            src, dst = self._points[i + 2], self._points[i + 1]
            pred = self._predict(x, i, guidance, model, "invert", conditioning)
            pred = self._reinterpreted(x, pred, self._points[i], src, model)
        move = (-1, self._points.index(src), False)
        out, _ = self._step(x, pred, src, dst, move, guidance, model, conditioning)
        return self._emit("invert", i + 1, i, out, guidance, model)

    def _step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        move: tuple[int, int, bool],
        guidance: float,
        model: str,
        conditioning: str,
    ) -> tuple[Tensor, object]:
        """The solver's step. ``move`` is ``(sign, source index, keeps history)``: sign 1 for a
        denoise, -1 for an invert. Returns the new latent and the state the solver left."""
        sign, index, keyed = move
        if pred.renoise is not None and not self._renoises:
            raise self._no_renoising()
        previous = self._history.get((sign, index - sign)) if keyed else None
        if not self._with_context:
            return self.solver.step(x, pred, src, dst, previous), None
        direction: Literal["denoise", "invert"] = "denoise" if sign == 1 else "invert"
        context = GuidanceContext(index, self._steps, direction, conditioning)
        guider = self._guider(model)

        def evaluate(y: Tensor, sigma: float) -> Prediction:
            return self._checked(guider(y, sigma, guidance, context), y, model)

        ctx = StepContext(
            direction=direction,
            index=index,
            steps=self._steps,
            history=self._history_chain(sign, index) if keyed else (),
            evaluate=evaluate,
            noise=self.noise_like,
            point=self._point_at,
            entropy=self.entropy,
        )
        out = self.solver.step(x, pred, src, dst, previous, ctx=ctx)  # type: ignore[call-arg]
        return out, ctx.remembered

    def _no_renoising(self) -> InvalidArgument:
        """The refusal of a renoising branch (CFG++) by a solver that would ignore it."""
        name = getattr(self.solver, "name", type(self.solver).__name__)
        return InvalidArgument(
            "solver",
            name,
            "a solver that renoises with another branch (renoises = True: ddim, euler, "
            "dpmpp-2m), since this guider's predictions renoise with the unconditional branch "
            "(CFG++); this solver would silently step as plain CFG",
        )

    def _history_chain(self, sign: int, index: int) -> tuple[History, ...]:
        """Same-direction history before the step from ``index``, newest first, while contiguous."""
        chain: list[History] = []
        while (entry := self._history.get((sign, index - sign * (len(chain) + 1)))) is not None:
            chain.append(entry)
        return tuple(chain)

    def _point_at(self, sigma: float) -> LevelPoint:
        alpha, s = self.process.point(float(sigma))
        return LevelPoint(float(sigma), alpha, s, self.process.ode)

    def finish(self) -> None:
        """Read the finiteness of every move not read yet (one host synchronisation; see
        `zsampling.core.finite`): `NonFiniteLatents` naming the first move that made NaN or inf.
        Whoever runs a sampler on a path calls it when the sampler returns (or raises)."""
        self.finite.read()

    def renoise(self, x: Tensor, src: int, dst: int) -> Tensor:
        """Jump from level ``src`` up to the noisier level ``dst`` (``dst < src``) with fresh noise.

        Forward diffusion: ``x_dst / alpha_dst = x_src / alpha_src + sqrt(sigma_dst^2 -
        sigma_src^2) z``. Noise comes from the run's per-item generators, so it is reproducible
        and independent of batching. It starts a new path, so multistep history is cleared.
        """
        self._check_index("src", src, 1, self.steps)
        self._check_index("dst", dst, 0, src - 1)
        a, b = self._points[src], self._points[dst]
        z = self.noise_like(x).to(torch.float64)
        scale = (b.sigma**2 - a.sigma**2) ** 0.5
        out = (b.alpha * (x.to(torch.float64) / a.alpha + scale * z)).to(x.dtype)
        self._history.clear()
        return self._emit("renoise", src, dst, out, None, MAIN)

    def noise_like(self, x: Tensor) -> Tensor:
        """Standard normal noise shaped like ``x``, one generator per row when the run has them."""
        if self.generators and len(self.generators) == x.shape[0]:
            rows = [
                torch.randn(x.shape[1:], generator=g, dtype=torch.float32) for g in self.generators
            ]
            return torch.stack(rows).to(device=x.device, dtype=x.dtype)
        return torch.randn(x.shape, dtype=torch.float32).to(device=x.device, dtype=x.dtype)

    def entropy(self, rows: int) -> list[int]:
        """One integer seed per row from its generator (as `noise_like` draws), for a noise
        source that outlives a step, such as a Brownian tree."""
        if self.generators and len(self.generators) == rows:
            return [int(torch.randint(0, 2**63 - 1, (1,), generator=g)) for g in self.generators]
        return torch.randint(0, 2**63 - 1, (rows,)).tolist()

    def ddim(self, x: Tensor, pred: Prediction, dst: int) -> Tensor:
        """The bare DDIM move of ``x`` to level ``dst`` with a given prediction (no model call)."""
        return ddim_step(x, pred, self.point(dst))

    def _reinterpreted(
        self, x: Tensor, pred: Prediction, evaluated: LevelPoint, at: LevelPoint, model: str
    ) -> Prediction:
        """``pred`` (made at ``evaluated``) used by a step from ``at``, in float64."""
        p64, x64 = pred.to(torch.float64), x.to(torch.float64)
        coefficients = (
            torch.tensor(at.alpha, dtype=torch.float64),
            torch.tensor(at.s, dtype=torch.float64),
        )
        if self.keeps.get(model, "eps") == "v":
            source = (
                torch.tensor(evaluated.alpha, dtype=torch.float64),
                torch.tensor(evaluated.s, dtype=torch.float64),
            )
            return p64.reinterpret_v(x64, source, coefficients)
        return p64.reinterpret(x64, *coefficients)

    def _predict(
        self,
        x: Tensor,
        at: int,
        guidance: float,
        model: str,
        direction: Direction,
        conditioning: str,
    ) -> Prediction:
        guider = self._guider(model)
        sigma = self.point(at).sigma
        context = self._context(at, direction, conditioning)
        return self._checked(guider(x, sigma, guidance, context), x, model)

    def _context(self, at: int, direction: Direction, conditioning: str) -> GuidanceContext:
        key = (at, direction, conditioning)
        context = self._contexts.get(key)
        if context is None:  # immutable: one per place on the path
            context = GuidanceContext(at, self._steps, direction, conditioning)
            self._contexts[key] = context
        return context

    def _checked(self, pred: object, x: Tensor, model: str) -> Prediction:
        """``pred`` if it is a prediction shaped like ``x``, else the refusal naming the guider."""
        problem = prediction_problem(pred, x, "guided prediction", "the latent's shape")
        if problem is None:
            assert isinstance(pred, Prediction)
            return pred
        raise self._refusal(problem, model)

    def _refusal(self, problem: str, model: str) -> ComponentFault:
        """A guided prediction that cannot be stepped with, blamed on the guider: the models'
        own predictions are checked where they are made (`zsampling.core.guidance.CountedModel`),
        so a malformed guided one is the guider's."""
        component = self.guider if self.guider is not None else self._guider(model)
        return ComponentFault.of("guider", component, f"{problem} (model {model!r})")

    def _guider(self, model: str) -> Guider:
        try:
            return self.guiders[model]
        except KeyError:
            raise InvalidArgument("model", model, f"one of {sorted(self.guiders)}") from None

    def _emit(
        self, kind: StepKind, src: int, dst: int, x: Tensor, guidance: float | None, model: str
    ) -> Tensor:
        a, b = self._points[src], self._points[dst]
        self.finite.note(x, kind, src, dst, a.sigma, b.sigma)
        if self.observers:
            event = StepEvent(kind, src, dst, a.sigma, b.sigma, x, guidance, model)
            for observer in self.observers:
                observer(event)
        return x

    @staticmethod
    def _check_index(field: str, value: int, lo: int, hi: int) -> None:
        if not lo <= value <= hi:
            raise InvalidArgument(field, value, f"an integer in [{lo}, {hi}]")
