"""The solver contract's `StepContext`: history, extra evaluations, seeded noise, state, frames."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor

from zsampling import Standard, Uniform, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.core.component import Component
from zsampling.core.levels import Process
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import (
    DDIM,
    History,
    LevelPoint,
    StepContext,
    from_frame,
    takes_context,
    to_frame,
)

PROMPTS = ["red", "green", "blue"]


def noise() -> Tensor:
    return torch.randn(3, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def eps_of(model: AnalyticModel, x: Tensor, sigma: float, scale: float) -> Tensor:
    sig = torch.full((x.shape[0],), float(sigma), dtype=torch.float64)
    label = model.encode(PROMPTS)[0]["label"]
    e_c = model.predict(x, sig, {"label": label}).eps
    e_u = model.predict(x, sig, {"label": torch.full_like(label, -1)}).eps
    return e_u + scale * (e_c - e_u)


class Heun(Component):
    """Heun's method in the sigma frame, written on the context (a test solver)."""

    name: ClassVar[str] = "test-heun"
    order: ClassVar[int] = 2

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        y = to_frame(x, src)
        d = (y - pred.x0.double()) / src.tau
        y_next = y + d * (dst.tau - src.tau)
        if dst.tau == 0.0:
            return from_frame(y_next, dst, x.dtype)
        second = ctx.evaluate(from_frame(y_next, dst, x.dtype), dst.sigma)
        d_next = (y_next - second.x0.double()) / dst.tau
        return from_frame(y + (d + d_next) / 2 * (dst.tau - src.tau), dst, x.dtype)


class Recorder(DDIM):
    """DDIM that records what its context offered at each step."""

    name: ClassVar[str] = "test-recorder"
    seen: ClassVar[list[tuple[str, int, int, Any]]] = []

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        if ctx.history:
            assert ctx.history[0] is history
        previous = ctx.history[0].state if ctx.history else None
        self.seen.append((ctx.direction, ctx.index, len(ctx.history), previous))
        ctx.remember(ctx.index)
        return super().step(x, pred, src, dst, history)


class Noisy(DDIM):
    """DDIM plus a little of the context's seeded noise on every denoise (a test solver)."""

    name: ClassVar[str] = "test-noisy"

    def step(
        self,
        x: Tensor,
        pred: Prediction,
        src: LevelPoint,
        dst: LevelPoint,
        history: History | None,
        ctx: StepContext,
    ) -> Tensor:
        out = super().step(x, pred, src, dst, history)
        if ctx.direction == "invert":
            return out
        return out + 0.01 * ctx.noise(x)


def test_a_context_solver_is_heun_restated_by_hand(analytic: AnalyticModel) -> None:
    steps, scale = 8, 2.0
    result = sample(
        analytic,
        Standard(guidance=scale),
        prompts=PROMPTS,
        noise=noise(),
        schedule=Uniform(steps=steps),
        solver=Heun(),
    )
    sigmas = result.sigmas.tolist()
    x = noise()
    y = x / (1 + sigmas[0] ** 2) ** -0.5
    for a, b in itertools.pairwise(sigmas):
        alpha_a = (1 + a * a) ** -0.5
        d = eps_of(analytic, y * alpha_a, a, scale)
        y_euler = y + d * (b - a)
        if b == 0.0:
            y = y_euler
            continue
        alpha_b = (1 + b * b) ** -0.5
        d_next = eps_of(analytic, y_euler * alpha_b, b, scale)
        y = y + (d + d_next) / 2 * (b - a)
    final = y * (1 + sigmas[-1] ** 2) ** -0.5
    torch.testing.assert_close(result.latents, final, rtol=1e-12, atol=1e-12)
    # one guided prediction per step plus one more for every step that does not end at 0
    assert result.counter.guided_calls == steps + sum(b > 0 for b in sigmas[1:])


def test_history_chain_state_and_direction_under_zigzag(analytic: AnalyticModel) -> None:
    Recorder.seen.clear()
    sample(
        analytic,
        Zigzag(guidance=2.0, zigzag_steps=2),
        prompts=PROMPTS,
        noise=noise(),
        schedule=Uniform(steps=4),
        solver=Recorder(),
    )
    assert Recorder.seen == [
        ("denoise", 0, 0, None),
        ("invert", 1, 0, None),  # an isolated zag has no upward history
        ("denoise", 0, 0, None),
        ("denoise", 1, 1, 0),
        ("invert", 2, 0, None),
        ("denoise", 1, 1, 0),
        ("denoise", 2, 2, 1),
        ("denoise", 3, 3, 2),
    ]


def test_context_noise_is_seeded_per_item(analytic: AnalyticModel) -> None:
    def run(prompts: list[str], seeds: list[int]) -> Tensor:
        return sample(
            analytic,
            Standard(guidance=2.0),
            prompts=prompts,
            seeds=seeds,
            schedule=Uniform(steps=6),
            solver=Noisy(),
        ).latents

    both = run(["red", "blue"], [3, 4])
    torch.testing.assert_close(run(["red", "blue"], [3, 4]), both, rtol=0, atol=0)
    torch.testing.assert_close(run(["blue"], [4])[0], both[1], rtol=0, atol=0)
    assert not torch.equal(run(["red", "blue"], [3, 5])[1], both[1])


def test_frames_per_process() -> None:
    flow = LevelPoint(3.0, *Process("flow").point(3.0), Process("flow").ode)
    assert (flow.tau, flow.scale) == (0.75, 1.0)
    vp = LevelPoint(3.0, *Process("vp").point(3.0), Process("vp").ode)
    assert vp.tau == 3.0 and abs(vp.scale - 10**-0.5) < 1e-15
    x = torch.tensor([[1.0, -2.0]], dtype=torch.float32)
    torch.testing.assert_close(from_frame(to_frame(x, vp), vp, x.dtype), x)


def test_plain_solvers_keep_the_five_argument_form() -> None:
    assert not takes_context(DDIM())
    assert takes_context(Heun())
