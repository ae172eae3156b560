"""Shared pieces of the stochastic-solver parity tests: the analytic mixture as a k-diffusion
denoiser with CFG, and a reference ``noise_sampler`` that draws exactly what ``ctx.noise`` draws."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from zsampling import Karras, Standard, sample
from zsampling.adapters.analytic import NULL_CLASS, AnalyticModel, demo_mixture
from zsampling.core.levels import Process

LABELS = torch.tensor([0, 1, 2, 1])
NULL = torch.full_like(LABELS, NULL_CLASS)
SEEDS = [11, 12, 13, 14]
G = 3.0


class GuidedDenoiser(nn.Module):
    """``D(x_ve, sigma) -> x0``: the analytic posterior mean with CFG at scale `G`."""

    def __init__(self) -> None:
        super().__init__()
        self.model = AnalyticModel(demo_mixture())

    def forward(self, x: Tensor, sigma: Tensor, **_: Any) -> Tensor:
        sigma = sigma.to(torch.float64)
        alpha = Process("vp").coefficients(sigma)[0].view(-1, 1)
        c = self.model.predict(x * alpha, sigma, {"label": LABELS}).x0
        u = self.model.predict(x * alpha, sigma, {"label": NULL}).x0
        return u + (c - u) * G


class SeededNoise:
    """A k-diffusion ``noise_sampler`` drawing from one generator per row, as a run does."""

    def __init__(self, seeds: list[int], shape: tuple[int, ...]) -> None:
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.shape = shape

    def __call__(self, sigma: object = None, sigma_next: object = None) -> Tensor:
        rows = [torch.randn(self.shape, generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(rows).to(torch.float64)


class FlowAnalyticModel(AnalyticModel):
    """The mixture under the flow process ``x = (1 - t) x0 + t eps`` (below pure noise)."""

    process = Process("flow")


def flow_denoiser(x: Tensor, t: Tensor, **_: Any) -> Tensor:
    """``D(x_t, t) -> x0`` with CFG at scale `G` for the flow mixture (ComfyUI's CONST frame)."""
    model = FlowAnalyticModel(demo_mixture())
    sigma = t.to(torch.float64) / (1 - t.to(torch.float64))
    c = model.predict(x, sigma, {"label": LABELS}).x0
    u = model.predict(x, sigma, {"label": NULL}).x0
    return u + (c - u) * G


def start_noise() -> Tensor:
    return torch.randn(4, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def karras(steps: int) -> Tensor:
    return Karras(steps=steps, sigma_min=0.03, sigma_max=14.6).sigmas(AnalyticModel(demo_mixture()))


def ours(
    solver: Any, sigmas: Tensor, noise: Tensor, flow: bool = False, seeds: list[int] = SEEDS
) -> Tensor:
    """The run of ``solver`` on the analytic model from the VE latent ``noise * sigma_0`` (VP), or
    from ``noise`` itself (flow)."""
    process = "flow" if flow else "vp"
    return sample(
        FlowAnalyticModel(demo_mixture()) if flow else AnalyticModel(demo_mixture()),
        Standard(guidance=G),
        conditioning=({"label": LABELS}, {"label": NULL}),
        noise=noise,
        seeds=seeds,
        sigmas=sigmas,
        solver=solver,
        noise_scale=1.0 if flow else float(Process(process).coefficients(sigmas[:1])[1]),
    ).latents


def relative(a: Tensor, b: Tensor) -> float:
    """Largest difference relative to the reference's largest magnitude."""
    return float((a - b).abs().max() / b.abs().max())
