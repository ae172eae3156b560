"""What a model says about a latent: the clean sample and the noise, in the latent's own space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from zsampling.core.casts import cast, wide_copy

Space = Literal["eps", "x0", "velocity"]
"""A quantity a guidance rule may combine: ``eps``, ``x0``, or ``velocity = eps - x0`` (what a
rectified-flow network such as SD3's or FLUX's predicts)."""


@dataclass(frozen=True)
class Prediction:
    """A consistent pair ``x = alpha * x0 + s * eps`` at the level the model was evaluated at.

    Solvers need both halves: ``x0`` alone fails at the clean end (inverting from sigma = 0),
    ``eps`` alone at the noisy end of flow models (alpha = 0). Adapters fill both from whatever
    their network predicts (epsilon, v, x0 or flow velocity). Rows are batch rows: a guider that
    evaluated several branches in one call gets them back as row blocks (`chunk`).
    """

    x0: Tensor
    eps: Tensor

    def to(self, dtype: torch.dtype) -> Prediction:
        return Prediction(cast(self.x0, dtype), cast(self.eps, dtype))

    def guided(self, cond: Prediction, scale: float) -> Prediction:
        """Classifier-free guidance with ``self`` as the unconditional branch and ``cond`` as the
        conditional one: ``uncond + scale * (cond - uncond)`` on both halves.

        The weights (``1 - scale`` and ``scale``) sum to one, so if both branches are consistent
        with the same ``x`` at the same level, so is the result, at every level, with no division
        (this is why CFG needs no choice of space). Scale 0 gives ``self``, 1 gives ``cond``.
        """
        return Prediction(
            self.x0 + scale * (cond.x0 - self.x0), self.eps + scale * (cond.eps - self.eps)
        )

    def reinterpret(self, x: Tensor, alpha: Tensor, s: Tensor) -> Prediction:
        """Keep ``eps`` and re-derive ``x0`` as if ``x`` sat at the level with ``(alpha, s)``.

        This is how an epsilon-prediction is used by a DDIM step whose source level differs from
        the level the network was evaluated at (Z-Sampling's ``target`` and ``official`` zags);
        the path does it, a guider never needs to.
        """
        return Prediction((x - s * self.eps) / alpha, self.eps)

    def reinterpret_v(
        self, x: Tensor, evaluated: tuple[Tensor, Tensor], at: tuple[Tensor, Tensor]
    ) -> Prediction:
        """Keep the v-prediction and re-derive both halves as if ``x`` sat at ``at = (alpha, s)``.

        For a v-prediction network (``v = alpha * eps - s * x0`` on a VP process, where
        ``alpha^2 + s^2 = 1``): ``v`` is recovered at the ``evaluated`` level the pair was made at,
        then read at ``at`` as a v-model's output is read there: ``x0 = alpha x - s v``,
        ``eps = s x + alpha v``. This is what a diffusers scheduler does with the UNet's raw
        output at whatever level it steps from (the released Z-Sampling code's inverse step).
        """
        a1, s1 = evaluated
        a2, s2 = at
        v = a1 * self.eps - s1 * self.x0
        return Prediction(a2 * x - s2 * v, s2 * x + a2 * v)

    def chunk(self, n: int) -> list[Prediction]:
        """Split a batched prediction into ``n`` equal row blocks, in batch order.

        A guider that evaluated ``torch.cat([uncond_rows, cond_rows])`` in one model call gets
        ``uncond, cond = prediction.chunk(2)``.
        """
        return [Prediction(a, b) for a, b in zip(self.x0.chunk(n), self.eps.chunk(n), strict=True)]

    def part64(self, space: Space) -> Tensor:
        """`part` in float64, computed from the halves widened first (exactly)."""
        if space == "eps":
            return cast(self.eps, torch.float64)
        if space == "x0":
            return cast(self.x0, torch.float64)
        return cast(self.eps, torch.float64) - cast(self.x0, torch.float64)

    def part(self, space: Space) -> Tensor:
        """The quantity ``space`` names: ``eps``, ``x0`` or ``velocity = eps - x0``."""
        if space == "eps":
            return self.eps
        if space == "x0":
            return self.x0
        return self.eps - self.x0

    @staticmethod
    def from_part(
        space: Space,
        value: Tensor,
        x: Tensor,
        alpha: float,
        s: float,
        fallback: Prediction | Callable[[], Prediction],
    ) -> Prediction:
        """The pair consistent with ``x`` at ``(alpha, s)`` whose ``space`` part is ``value``.

        The other half follows from ``x = alpha * x0 + s * eps`` (in float64): always for
        ``velocity`` (it divides by ``alpha + s > 0``), except at ``alpha = 0`` for ``eps`` (a flow
        model's pure noise) and at ``s = 0`` for ``x0`` (sigma 0), where ``x`` does not determine
        it: there it is taken from ``fallback`` (a prediction, or a function making one, called
        only there).
        """
        v64 = cast(value, torch.float64)
        if space == "eps":
            if alpha == 0:
                return Prediction(_made(fallback).x0, value)
            x0 = wide_copy(x).sub_(v64, alpha=s).div_(alpha)  # (x - s * eps) / alpha
            return Prediction(cast(x0, value.dtype), value)
        if space == "x0":
            if s == 0:
                return Prediction(value, _made(fallback).eps)
            eps = wide_copy(x).sub_(v64, alpha=alpha).div_(s)  # (x - alpha * x0) / s
            return Prediction(value, cast(eps, value.dtype))
        x64 = cast(x, torch.float64)
        x0 = (x64 - s * v64) / (alpha + s)
        return Prediction(x0.to(value.dtype), (x0 + v64).to(value.dtype))


def _made(fallback: Prediction | Callable[[], Prediction]) -> Prediction:
    return fallback if isinstance(fallback, Prediction) else fallback()
