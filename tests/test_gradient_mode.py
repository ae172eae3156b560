"""Sampling runs in inference mode; a component that differentiates says ``needs_grad``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

from zsampling import Component, Standard, Uniform, sample
from zsampling.adapters.analytic import AnalyticModel
from zsampling.core.path import SamplingPath


class Watching(Component):
    """Standard sampling that records the gradient mode its loop runs in."""

    name: ClassVar[str] = "watching"
    seen: ClassVar[list[tuple[bool, bool]]] = []

    def sample(self, x: torch.Tensor, path: SamplingPath) -> torch.Tensor:
        Watching.seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return Standard(guidance=2.0).sample(x, path)


class SharpeningByGradient(Component):
    """A sampler that differentiates: after each step it moves ``x`` along the gradient of
    ``-|x|^2`` (an analytic stand-in for a classifier's log-probability), computed by autograd."""

    name: ClassVar[str] = "sharpening-by-gradient"
    needs_grad: ClassVar[bool] = True

    def sample(self, x: torch.Tensor, path: SamplingPath) -> torch.Tensor:
        for i in range(path.steps):
            x = path.denoise(x, i, 2.0)
            with torch.enable_grad():
                leaf = x.detach().clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(-(leaf**2).sum(), leaf)
            x = x + 0.01 * grad
        return x


def test_the_loop_runs_in_inference_mode_and_hands_back_a_normal_tensor(
    analytic: AnalyticModel,
) -> None:
    Watching.seen.clear()
    out = sample(analytic, Watching(), prompts=["red"], seeds=[0], schedule=Uniform(steps=5))
    assert Watching.seen == [(True, False)]
    assert not out.latents.is_inference()
    out.latents.mul_(2)  # what a caller may do with its latents, as with a pipeline's output
    plain = sample(
        analytic, Standard(guidance=2.0), prompts=["red"], seeds=[0], schedule=Uniform(steps=5)
    )
    torch.testing.assert_close(out.latents, 2 * plain.latents, rtol=0, atol=0)


def test_a_component_that_needs_gradients_gets_them(analytic: AnalyticModel) -> None:
    run: dict[str, Any] = {"prompts": ["red"], "seeds": [0], "schedule": Uniform(steps=1)}
    sharpened = sample(analytic, SharpeningByGradient(), **run).latents
    plain = sample(analytic, Standard(guidance=2.0), **run).latents
    # One step, then x + 0.01 * grad(-|x|^2) = x - 0.02 x.
    torch.testing.assert_close(sharpened, 0.98 * plain, rtol=1e-12, atol=0)


def test_without_saying_so_autograd_is_refused(analytic: AnalyticModel) -> None:
    class Unsaid(SharpeningByGradient):
        name: ClassVar[str] = "unsaid"
        needs_grad: ClassVar[bool] = False

    with pytest.raises(RuntimeError, match="does not require grad"):
        sample(analytic, Unsaid(), prompts=["red"], seeds=[0], schedule=Uniform(steps=1))
