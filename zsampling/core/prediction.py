"""What a model says about a latent: the clean sample and the noise, in the latent's own space."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Prediction:
    """A consistent pair ``x = alpha * x0 + s * eps`` at the level the model was evaluated at.

    Solvers need both halves: ``x0`` alone fails at the clean end (inverting from sigma = 0),
    ``eps`` alone at the noisy end of flow models (alpha = 0). Adapters fill both from whatever
    their network predicts (epsilon, v, x0 or flow velocity).
    """

    x0: Tensor
    eps: Tensor

    def to(self, dtype: torch.dtype) -> Prediction:
        return Prediction(self.x0.to(dtype), self.eps.to(dtype))

    def guided(self, cond: Prediction, scale: float) -> Prediction:
        """Classifier-free guidance with ``self`` as the unconditional branch.

        Both halves are combined with the same weights (summing to one), so the guided pair stays
        consistent with ``x``.
        """
        return Prediction(
            self.x0 + scale * (cond.x0 - self.x0), self.eps + scale * (cond.eps - self.eps)
        )

    def reinterpret(self, x: Tensor, alpha: Tensor, s: Tensor) -> Prediction:
        """Keep ``eps`` and re-derive ``x0`` as if ``x`` sat at the level with ``(alpha, s)``.

        This is how an epsilon-prediction is used by a DDIM step whose source level differs from
        the level the network was evaluated at (Z-Sampling's ``target`` and ``official`` zags).
        """
        return Prediction((x - s * self.eps) / alpha, self.eps)

    def chunk(self, n: int) -> list[Prediction]:
        """Split a batched prediction into ``n`` equal row blocks."""
        return [Prediction(a, b) for a, b in zip(self.x0.chunk(n), self.eps.chunk(n), strict=True)]
