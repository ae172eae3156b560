"""An analytic model: a class-conditional Gaussian mixture with exact scores.

Under the VP process ``x = alpha * x0 + s * eps`` a Gaussian component ``N(mu, diag(v))`` stays
Gaussian, ``N(alpha * mu, alpha^2 v + s^2)``, so the exact conditional and unconditional posterior
means (and hence eps) are closed-form. It uses Stable Diffusion's training grid (1000
``scaled_linear`` timesteps, DDIM ``leading`` spacing, ``steps_offset = 1``), so it stands in for a
real SD model wherever one is used, and tells exactly how well a sampler did: alignment is the
true posterior of the requested class, fidelity the true log-density.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import Field, model_validator
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import Process, TimestepTable, scaled_linear_alphas_cumprod
from zsampling.core.model import Conditioning
from zsampling.core.prediction import Prediction

NULL_CLASS = -1


@dataclass(frozen=True)
class GaussianMixture:
    """Components ``k`` with mean ``means[k]``, diagonal variance ``variances[k]``, mixture weight
    ``weights[k]`` and class ``labels[k]``; everything float64 except the integer labels."""

    means: Tensor
    variances: Tensor
    weights: Tensor
    labels: Tensor
    class_names: tuple[str, ...]

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def _component_logits(self, x: Tensor, alpha: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """Per row and component: ``log(pi_k N(x; alpha mu_k, alpha^2 v_k + s^2))``, variances."""
        a = alpha.view(-1, 1, 1)
        var = a**2 * self.variances.unsqueeze(0) + (s.view(-1, 1, 1) ** 2)
        diff = x.unsqueeze(1) - a * self.means.unsqueeze(0)
        log_n = -0.5 * ((diff**2) / var + torch.log(2 * math.pi * var)).sum(-1)
        return log_n + self.weights.log().unsqueeze(0), var

    def _masked(self, logits: Tensor, labels: Tensor) -> Tensor:
        mask = (labels.view(-1, 1) == NULL_CLASS) | (labels.view(-1, 1) == self.labels.view(1, -1))
        return logits.masked_fill(~mask, -math.inf)

    def score(self, x: Tensor, alpha: Tensor, s: Tensor, labels: Tensor) -> Tensor:
        """Exact ``grad log p(x | label)`` at the level ``(alpha, s)``; label -1 = unconditional."""
        logits, var = self._component_logits(x, alpha, s)
        w = torch.softmax(self._masked(logits, labels), dim=1)
        diff = x.unsqueeze(1) - alpha.view(-1, 1, 1) * self.means.unsqueeze(0)
        return -(w.unsqueeze(-1) * diff / var).sum(1)

    def class_posterior(self, x: Tensor, alpha: float = 1.0, s: float = 0.0) -> Tensor:
        """``p(class | x)`` for each row (shape ``(B, n_classes)``) at level ``(alpha, s)``."""
        a = torch.full((x.shape[0],), alpha, dtype=torch.float64)
        n = torch.full((x.shape[0],), s, dtype=torch.float64)
        logits, _ = self._component_logits(x.to(torch.float64), a, n)
        per_class = torch.stack(
            [
                torch.logsumexp(logits[:, self.labels == c], dim=1)
                for c in range(len(self.class_names))
            ],
            dim=1,
        )
        return torch.softmax(per_class, dim=1)

    def log_density(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Exact clean ``log p(x)`` (or ``log p(x | label)``) of each row."""
        x = x.to(torch.float64)
        lab = torch.full((x.shape[0],), NULL_CLASS) if labels is None else labels
        ones = torch.ones(x.shape[0], dtype=torch.float64)
        logits, _ = self._component_logits(x, ones, torch.zeros_like(ones))
        masked = self._masked(logits, lab)
        norm = self._masked(self.weights.log().expand(x.shape[0], -1), lab)
        return torch.logsumexp(masked, 1) - torch.logsumexp(norm, 1)

    def sample(
        self, n: int, generator: torch.Generator, label: int = NULL_CLASS, sigma: float = 0.0
    ) -> Tensor:
        """Exact samples of the data (or of the noised marginal at level ``sigma``, VP scaling)."""
        w = self.weights.clone()
        if label != NULL_CLASS:
            w = torch.where(self.labels == label, w, torch.zeros_like(w))
        k = torch.multinomial(w / w.sum(), n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x0 = self.means[k] + self.variances[k].sqrt() * z
        alpha, s = Process("vp").coefficients(torch.tensor(sigma, dtype=torch.float64))
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return alpha * x0 + s * eps


def demo_mixture() -> GaussianMixture:
    """Three overlapping classes in 2-D, two components each: where guidance has work to do."""
    angles = torch.tensor([90.0, 130.0, 210.0, 250.0, 330.0, 10.0]) * math.pi / 180
    means = torch.stack([angles.cos(), angles.sin()], dim=1).to(torch.float64)
    return GaussianMixture(
        means=means,
        variances=torch.full((6, 2), 0.6, dtype=torch.float64),
        weights=torch.full((6,), 1 / 6, dtype=torch.float64),
        labels=torch.tensor([0, 0, 1, 1, 2, 2]),
        class_names=("red", "green", "blue"),
    )


class AnalyticModel:
    """The `ModelAdapter` over a `GaussianMixture`: exact predictions, no network.

    Prompts are class names (or indices); the empty negative prompt is the unconditional branch,
    and a class name as negative prompt conditions the "unconditional" branch on that class.
    """

    process = Process("vp")

    def __init__(self, mixture: GaussianMixture, table: TimestepTable | None = None) -> None:
        self.mixture = mixture
        self.table = table or TimestepTable(scaled_linear_alphas_cumprod())
        self.dtype = torch.float32
        self.device = torch.device("cpu")

    def latent_shape(self) -> tuple[int, ...]:
        return (self.mixture.dim,)

    def sigma_range(self) -> tuple[float, float]:
        sig = self.table.sigmas
        return float(sig[0]), float(sig[-1])

    def label(self, prompt: str, field: str = "prompt") -> int:
        """The class index a prompt names (a class name or its index)."""
        names = self.mixture.class_names
        if prompt in names:
            return names.index(prompt)
        # Compared as text: "²" passes str.isdigit() but int() refuses it, and int() of a
        # 5,000-digit prompt raises too; neither is an index of this model.
        if prompt.isascii() and prompt.isdigit():
            index = prompt.lstrip("0") or "0"
            if index in {str(k) for k in range(len(names))}:
                return int(index)
        raise InvalidArgument(field, prompt, f"a class of this model: {', '.join(names)}")

    def encode(
        self, prompts: Sequence[str], negative_prompts: Sequence[str] | None = None
    ) -> tuple[Conditioning, Conditioning]:
        cond = torch.tensor([self.label(p) for p in prompts])
        negatives = negative_prompts or [""] * len(prompts)
        uncond = torch.tensor(
            [NULL_CLASS if not n else self.label(n, "negative_prompt") for n in negatives]
        )
        return {"label": cond}, {"label": uncond}

    def predict(self, x: Tensor, sigma: Tensor, cond: Conditioning) -> Prediction:
        alpha, s = self.process.coefficients(sigma)
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        score = self.mixture.score(flat, alpha, s, cond["label"])
        a, n = alpha.view(-1, 1), s.view(-1, 1)
        x0 = (flat + n**2 * score) / a
        eps = -n * score
        return Prediction(x0.reshape(x.shape).to(x.dtype), eps.reshape(x.shape).to(x.dtype))

    def decode(self, x: Tensor) -> Tensor:
        return x


class AnalyticAdapter(Component):
    """The analytic Gaussian-mixture model (``[model] use = "analytic"``).

    Without ``means`` it is the three-class 2-D demo mixture; with ``means`` (one row per
    component) you describe your own: ``labels`` give each component's class, ``classes`` name
    them, ``variance`` is shared by every component and dimension.
    """

    name: ClassVar[str] = "analytic"

    means: list[list[float]] | None = Field(None, description="Component means (K rows of d).")
    labels: list[int] | None = Field(None, description="Class index of each component.")
    classes: list[str] | None = Field(None, description="Class names (the valid prompts).")
    variance: float = Field(0.6, gt=0, description="Per-dimension variance of every component.")

    @model_validator(mode="after")
    def _consistent(self) -> AnalyticAdapter:
        if self.means is None:
            if self.labels is not None or self.classes is not None:
                raise ValueError("labels and classes need means")
            return self
        if not self.means or len({len(m) for m in self.means}) != 1 or not self.means[0]:
            raise ValueError("means must be a non-empty list of equal-length, non-empty rows")
        if self.labels is None or len(self.labels) != len(self.means):
            raise ValueError(f"labels must give one class per mean ({len(self.means)})")
        if self.classes is None or sorted(set(self.labels)) != list(range(len(self.classes))):
            raise ValueError("classes must name every class index used in labels, from 0")
        return self

    def mixture(self) -> GaussianMixture:
        if self.means is None:
            return demo_mixture()
        assert self.labels is not None and self.classes is not None
        means = torch.tensor(self.means, dtype=torch.float64)
        return GaussianMixture(
            means=means,
            variances=torch.full_like(means, self.variance),
            weights=torch.full((len(means),), 1 / len(means), dtype=torch.float64),
            labels=torch.tensor(self.labels),
            class_names=tuple(self.classes),
        )

    def load(self) -> AnalyticModel:
        return AnalyticModel(self.mixture())
