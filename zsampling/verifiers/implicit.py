"""The diffusion model's own implicit classifier: no extra model, works on every adapter."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.model import Conditioning, ModelAdapter


def noise_levels(model: ModelAdapter, positions: tuple[float, ...]) -> list[float]:
    """Sigmas at ``positions`` (0: the model's smallest level, 1: its largest) along log sigma;
    an infinite largest level (flow models' pure noise) is read as 100."""
    lo, hi = model.sigma_range()
    hi = hi if math.isfinite(hi) else 100.0
    lo = max(lo, 1e-4)
    return [math.exp(math.log(lo) + p * (math.log(hi) - math.log(lo))) for p in positions]


def _rows(cond: Conditioning, uncond: Conditioning) -> Conditioning:
    return {key: torch.cat([cond[key], uncond[key]]) for key in cond}


class ImplicitClassifier(Component):
    """How much better the prompt explains each sample than no prompt does, by the model itself.

    Diffusion classifiers (Li et al., ICCV 2023; Clark and Jaini, NeurIPS 2023) read
    ``E ||eps - eps(x_t, c)||^2`` as a bound on ``-log p(x | c)``: re-noise the sample at a few
    fixed levels with fixed noise, and the conditional prediction's error, subtracted from the
    unconditional one's, estimates ``log p(c | x) - log p(c)`` up to a weight. Higher is better.
    The noise and levels are the same for every candidate, so candidates are compared on equal
    terms; each level costs one model call of two rows per candidate (counted apart from
    sampling, as ``verifier_rows``).
    """

    name: ClassVar[str] = "implicit-classifier"

    positions: tuple[float, ...] = Field(
        (0.3, 0.5, 0.7),
        min_length=1,
        max_length=64,
        description="Noise levels, as positions along log sigma (0: smallest, 1: largest).",
    )
    seed: int = Field(
        0, ge=0, description="Seed of the fixed noise every candidate is re-noised with."
    )

    def score(self, model: ModelAdapter, latents: Tensor, prompts: list[str]) -> Tensor:
        n = latents.shape[0]
        cond, uncond = model.encode(prompts)
        both = _rows(cond, uncond)
        gen = torch.Generator().manual_seed(self.seed)
        x0 = latents.to(torch.float64)
        total = torch.zeros(n, dtype=torch.float64)
        for sigma in noise_levels(model, tuple(self.positions)):
            eps = torch.randn(latents.shape[1:], generator=gen, dtype=torch.float32)
            eps = eps.to(device=latents.device, dtype=torch.float64).expand_as(x0)
            alpha, s = model.process.point(sigma)
            x = (alpha * x0 + s * eps).to(latents.dtype)
            levels = torch.full((2 * n,), sigma, dtype=torch.float64, device=latents.device)
            pred = model.predict(torch.cat([x, x]), levels, both).eps.to(torch.float64)
            err = (pred - torch.cat([eps, eps])).pow(2).flatten(1).mean(1).cpu()
            total += err[n:] - err[:n]
        return total / len(self.positions)
