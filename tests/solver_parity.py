"""What the solver parity tests share: the analytic mixture as a k-diffusion/ComfyUI denoiser
(VP in the sigma frame, and a flow-matching twin in the t frame), and zsampling's run of it.

A reference sampler gets the guided ``x0`` of the frame latent (``D(y, tau)``; CFG on ``x0``
is CFG on eps) and starts from ``tau_0 * noise``; zsampling runs the same levels from the
same noise in native space, and its final latent is mapped into the frame to compare.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from zsampling import Standard, sample
from zsampling.adapters.analytic import NULL_CLASS, AnalyticModel, GaussianMixture, demo_mixture
from zsampling.core.levels import Process
from zsampling.core.model import Conditioning
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import Solver

LABELS = torch.tensor([0, 1, 2, 1])
NULL = torch.full_like(LABELS, NULL_CLASS)
G = 3.0


class FlowAnalytic(AnalyticModel):
    """The same mixture under the flow process ``x = (1 - t) x0 + t eps``, exact at every level
    including pure noise (t = 1, alpha = 0): ``x0`` is the posterior mean over components."""

    process = Process("flow")

    def __init__(self, mixture: GaussianMixture) -> None:
        super().__init__(mixture)
        self.table = None  # type: ignore[assignment]

    def sigma_range(self) -> tuple[float, float]:
        return 0.0, math.inf

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        alpha, s = self.process.coefficients(sigma)
        m = self.mixture
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        logits, var = m._component_logits(flat, alpha, s)
        weights = torch.softmax(m._masked(logits, cond["label"]), dim=1).unsqueeze(-1)
        a = alpha.view(-1, 1, 1)
        means = m.means.unsqueeze(0)
        posterior = means + a * m.variances.unsqueeze(0) / var * (flat.unsqueeze(1) - a * means)
        x0 = (weights * posterior).sum(1)
        eps = -s.view(-1, 1) * m.score(flat, alpha, s, cond["label"])
        return Prediction(x0.reshape(x.shape).to(x.dtype), eps.reshape(x.shape).to(x.dtype))


def model_for(process: str) -> AnalyticModel:
    return FlowAnalytic(demo_mixture()) if process == "flow" else AnalyticModel(demo_mixture())


def frame_levels(process: str, steps: int) -> tuple[Tensor, Tensor]:
    """A schedule as (zsampling's sigmas, the reference's frame times): Karras in sigma for VP,
    a shifted linear t grid (below pure noise: both sides' first step is then the same method)
    for flow."""
    if process == "vp":
        ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
        lo, hi = 0.03 ** (1 / 7), 14.6 ** (1 / 7)
        sigmas = torch.cat([(hi + ramp * (lo - hi)) ** 7, torch.zeros(1, dtype=torch.float64)])
        return sigmas, sigmas
    t = torch.linspace(0.97, 0.0, steps + 1, dtype=torch.float64)
    t = 3.0 * t / (1 + 2.0 * t)
    return t / (1 - t), t


def denoiser(process: str) -> Any:
    """``D(y, tau, **extra)``: the CFG-guided exact ``x0`` of frame latent ``y`` at ``tau``."""
    model, proc = model_for(process), Process(process)

    def guided(y: Tensor, tau: Tensor, **extra: Any) -> Tensor:
        tau = tau.to(torch.float64)
        if process == "flow":
            sigma = tau / (1 - tau)
            x = y
        else:
            sigma = tau
            x = y * proc.coefficients(sigma)[0].view(-1, 1)
        u = model.predict(x, sigma, {"label": NULL}).x0
        c = model.predict(x, sigma, {"label": LABELS}).x0
        return u + G * (c - u)

    return guided


def noise() -> Tensor:
    return torch.randn(4, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def ours(process: str, steps: int, solver: Solver) -> Tensor:
    """zsampling's final latent in the frame, from ``tau_0 * noise`` in the frame."""
    sigmas, taus = frame_levels(process, steps)
    proc = Process(process)
    alpha0 = proc.point(float(sigmas[0]))[0]
    scale = float(taus[0]) * (1.0 if process == "flow" else alpha0)
    result = sample(
        model_for(process),
        Standard(guidance=G),
        conditioning=({"label": LABELS}, {"label": NULL}),
        noise=noise(),
        sigmas=sigmas,
        solver=solver,
        noise_scale=scale,
    )
    alpha_end = proc.point(float(sigmas[-1]))[0]
    return result.latents / (1.0 if process == "flow" else alpha_end)


def reference_start(process: str, steps: int) -> tuple[Tensor, Tensor]:
    """The reference's starting frame latent and its frame times."""
    _, taus = frame_levels(process, steps)
    return noise() * taus[0], taus
