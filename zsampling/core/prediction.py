"""What a model says about a latent: the clean sample and the noise, in the latent's own space."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from zsampling.core.casts import cast, wide_copy

Space = Literal["eps", "x0", "velocity"]
"""A quantity a guidance rule may combine: ``eps``, ``x0``, or ``velocity = eps - x0`` (what a
rectified-flow network such as SD3's or FLUX's predicts)."""


class Prediction:
    """A consistent pair ``x = alpha * x0 + s * eps`` at the level the model was evaluated at.

    Solvers need both halves: ``x0`` alone fails at the clean end (inverting from sigma = 0),
    ``eps`` alone at the noisy end of flow models (alpha = 0). Adapters fill both from whatever
    their network predicts (epsilon, v, x0 or flow velocity). Rows are batch rows: a guider that
    evaluated several branches in one call gets them back as row blocks (`chunk`).

    A pair made by `from_eps` derives its ``x0`` on first read: a guider that combines ``eps``
    (CFG, as diffusers' pipelines do) never reads the branches' own ``x0``, and a first-order
    step (`step_to`) moves ``x`` with ``eps`` directly; on a small network each of those kernels
    is a share of the network's time. Read-only, like the frozen pair it stands for.

    **A step may renoise with another branch** (``renoise``). CFG++ (Chung et al., ICLR 2025)
    moves to the guided ``x0`` but leaves the *unconditional* noise in the latent: ``x' =
    alpha' x0_guided + s' eps_uncond``. No single consistent pair says that, so such a prediction
    is the consistent guided pair plus a second consistent pair, ``renoise``, the branch whose
    noise the step keeps. ``x0`` and ``eps`` stay the guided pair (what observers, thresholds and
    other readers see); a solver that supports a renoising branch (``renoises = True`` on its
    class) steps with ``renoising``: the first-order step (`step_to`: DDIM, Euler) is
    ``alpha' x0 + s' renoising.eps``, and DPM-Solver++(2M) extrapolates from the previous step's
    ``renoising.x0``. The path refuses such a prediction with a solver that does not declare the
    support, rather than silently stepping as plain CFG. Without ``renoise`` (every other guider),
    ``renoising`` is the pair itself and nothing changes.
    """

    __slots__ = ("_eps", "_pending", "_renoise", "_x0")
    _x0: Tensor | None
    _eps: Tensor
    _pending: _PendingX0 | None
    _renoise: Prediction | None

    def __init__(self, x0: Tensor, eps: Tensor, renoise: Prediction | None = None) -> None:
        object.__setattr__(self, "_x0", x0)
        object.__setattr__(self, "_eps", eps)
        object.__setattr__(self, "_pending", None)
        object.__setattr__(self, "_renoise", renoise)

    @classmethod
    def from_eps(
        cls,
        x: Tensor,
        eps: Tensor,
        alpha: float | Tensor,
        s: float | Tensor,
        dtype: torch.dtype | None = None,
    ) -> Prediction:
        """The pair of an epsilon prediction ``eps`` of ``x`` at ``(alpha, s)`` (floats shared
        by every row, or float64 columns that broadcast against ``x``): ``x0 = (x - s * eps) /
        alpha``, computed in float64 when first read. Both halves come in ``dtype`` (default:
        ``eps``'s)."""
        return cls._of(_PendingX0(x, eps, alpha, s, dtype or eps.dtype))

    @classmethod
    def _of(cls, pending: _PendingX0) -> Prediction:
        pair = cls.__new__(cls)
        object.__setattr__(pair, "_x0", None)
        object.__setattr__(pair, "_eps", cast(pending.eps, pending.dtype))
        object.__setattr__(pair, "_pending", pending)
        object.__setattr__(pair, "_renoise", None)
        return pair

    @property
    def renoise(self) -> Prediction | None:
        """The branch whose noise a step keeps, when it is not this pair (CFG++); else None."""
        return self._renoise

    @property
    def renoising(self) -> Prediction:
        """The pair a step renoises with: ``renoise``, or this pair itself."""
        return self if self._renoise is None else self._renoise

    @property
    def x0(self) -> Tensor:
        x0 = self._x0
        if x0 is None:
            assert self._pending is not None
            x0 = self._pending.x0()
            object.__setattr__(self, "_x0", x0)
        return x0

    @property
    def eps(self) -> Tensor:
        return self._eps

    @property
    def x0_shape(self) -> torch.Size | None:
        """``x0``'s shape (None if it is not a tensor), without deriving a pending ``x0``."""
        if self._x0 is None and self._pending is not None:
            return self._pending.x0_shape()
        return self._x0.shape if isinstance(self._x0, Tensor) else None

    def step_to(self, alpha: float, s: float) -> Tensor:
        """``alpha * x0 + s * eps`` in float64: the latent this pair puts at the level with
        coefficients ``(alpha, s)`` (a first-order step, DDIM's). A pending ``x0 = (x - s0 *
        eps) / alpha0`` is not derived: the step is ``(alpha / alpha0) x + (s - alpha s0 /
        alpha0) eps``, two kernels instead of five, equal to float64 rounding. With a ``renoise``
        branch the noise half is that branch's: ``alpha * x0 + s * renoise.eps``."""
        if self._renoise is not None:
            x0 = cast(self.x0, torch.float64)
            return x0.mul(alpha).add_(self._renoise.eps, alpha=s)
        pending = self._pending
        if self._x0 is None and pending is not None and pending.shared():
            x, alpha0, s0 = pending.cut()
            eps = self._eps
            gain = alpha / float(alpha0)
            weight = s - gain * float(s0)
            out = eps.mul(weight) if eps.dtype == torch.float64 else eps.double().mul_(weight)
            return out.add_(x, alpha=gain)  # x is widened to float64 inside the kernel
        x0 = self.x0
        out = x0.mul(alpha) if x0.dtype == torch.float64 else x0.double().mul_(alpha)
        return out.add_(self.eps, alpha=s)  # eps is widened to float64 inside the kernel

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Prediction is read-only (tried to set {name!r})")

    def __repr__(self) -> str:
        return f"Prediction(x0={self.x0!r}, eps={self.eps!r})"

    def to(self, dtype: torch.dtype) -> Prediction:
        """Both halves in ``dtype`` (a pending ``x0`` stays pending, derived in ``dtype``), and
        the ``renoise`` branch with them."""
        if self._renoise is not None:
            return Prediction(cast(self.x0, dtype), cast(self.eps, dtype), self._renoise.to(dtype))
        if self._x0 is None and self._pending is not None:
            x, eps, alpha, s, _, blocks = self._pending
            if dtype.itemsize >= eps.dtype.itemsize:  # widened once here, not again per block
                eps = cast(eps, dtype)
            return Prediction._of(_PendingX0(x, eps, alpha, s, dtype, blocks))
        return Prediction(cast(self.x0, dtype), cast(self.eps, dtype))

    def guided(self, cond: Prediction, scale: float) -> Prediction:
        """Classifier-free guidance with ``self`` as the unconditional branch and ``cond`` as the
        conditional one: ``uncond + scale * (cond - uncond)`` on both halves.

        The weights (``1 - scale`` and ``scale``) sum to one, so if both branches are consistent
        with the same ``x`` at the same level, so is the result, at every level, with no division
        (this is why CFG needs no choice of space). Scale 0 gives ``self``, 1 gives ``cond``.
        A ``renoise`` branch is not carried: the result is a plain pair.
        """
        return Prediction(
            self.x0 + scale * (cond.x0 - self.x0), self.eps + scale * (cond.eps - self.eps)
        )

    def reinterpret(self, x: Tensor, alpha: Tensor, s: Tensor) -> Prediction:
        """Keep ``eps`` and re-derive ``x0`` as if ``x`` sat at the level with ``(alpha, s)``.

        This is how an epsilon-prediction is used by a DDIM step whose source level differs from
        the level the network was evaluated at (Z-Sampling's ``target`` and ``official`` zags);
        the path does it, a guider never needs to. The result is a plain pair (no ``renoise``):
        the network's output is what such a step keeps.
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
        ``uncond, cond = prediction.chunk(2)``. A ``renoise`` branch is cut alike.
        """
        if self._renoise is not None:
            return [
                Prediction(a, b, r)
                for a, b, r in zip(
                    self.x0.chunk(n), self.eps.chunk(n), self._renoise.chunk(n), strict=True
                )
            ]
        if self._x0 is None and self._pending is not None:
            return [Prediction._of(rows) for rows in self._pending.chunk(n)]
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
        if space == "eps":
            if alpha == 0:
                return Prediction(_made(fallback).x0, value)
            return Prediction.from_eps(x, value, alpha, s)  # x0 = (x - s * eps) / alpha
        v64 = cast(value, torch.float64)
        if space == "x0":
            if s == 0:
                return Prediction(value, _made(fallback).eps)
            eps = torch.sub(x, v64, alpha=alpha).div_(s)  # (x - alpha * x0) / s, as above
            return Prediction(value, cast(eps, value.dtype))
        x64 = cast(x, torch.float64)
        x0 = (x64 - s * v64) / (alpha + s)
        return Prediction(x0.to(value.dtype), (x0 + v64).to(value.dtype))


def prediction_problem(pred: object, x: Tensor, what: str, expected: str) -> str | None:
    """Why ``pred`` cannot be stepped with from ``x`` (not a `Prediction`, or a half shaped unlike
    ``x``, which the step arithmetic would broadcast into a silently wrong latent), or None.
    Shapes only: a pending ``x0`` is not derived to be checked (see `Prediction.from_eps`).
    ``what`` names the prediction and ``expected`` the shape in the message."""
    if isinstance(pred, Prediction) and pred.x0_shape == x.shape:
        eps = pred.eps
        if isinstance(eps, Tensor) and eps.shape == x.shape:
            return None
    if not isinstance(pred, Prediction):
        return f"returned {type(pred).__name__}, not a zsampling Prediction(x0, eps)"
    part, value = next(
        (part, value)
        for part, value in (("x0", pred.x0), ("eps", pred.eps))
        if not isinstance(value, Tensor) or value.shape != x.shape
    )
    shown = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
    return f"returned a {what} whose {part} is {shown}; expected {tuple(x.shape)}, {expected}"


def _made(fallback: Prediction | Callable[[], Prediction]) -> Prediction:
    return fallback if isinstance(fallback, Prediction) else fallback()


class _PendingX0(NamedTuple):
    """What `Prediction.from_eps` needs to derive ``x0`` later.

    ``eps`` is already cut to the pair's rows; ``x`` and per-row coefficients are cut only when
    ``x0`` is derived (``blocks``: row block ``k`` of ``n``, applied in turn), since a guider that
    splits the branches and combines ``eps`` never needs them cut.
    """

    x: Tensor
    eps: Tensor
    alpha: float | Tensor
    s: float | Tensor
    dtype: torch.dtype
    blocks: tuple[tuple[int, int], ...] = ()

    def x0(self) -> Tensor:
        """``(x - s * eps) / alpha`` in float64, returned in ``dtype``."""
        x, alpha, s = self.cut()
        eps = self.eps
        if isinstance(alpha, Tensor) or isinstance(s, Tensor):
            x0 = (wide_copy(x) - s * cast(eps, torch.float64)) / alpha
        elif eps.dtype == torch.float64:  # the subtraction widens x inside its kernel (exactly)
            x0 = torch.sub(x, eps, alpha=s).div_(alpha)
        else:  # a float64 copy of x, then in place: eps is widened inside the kernel
            x0 = wide_copy(x).sub_(eps, alpha=s).div_(alpha)
        return cast(x0, self.dtype)

    def shared(self) -> bool:
        """Whether every row shares one level (float coefficients)."""
        return not isinstance(self.alpha, Tensor) and not isinstance(self.s, Tensor)

    def cut(self) -> tuple[Tensor, float | Tensor, float | Tensor]:
        """``x``, ``alpha`` and ``s`` cut to the pair's rows (``blocks``)."""
        x, alpha, s = self.x, self.alpha, self.s
        for k, n in self.blocks:
            rows = x.shape[0]
            x, alpha, s = (_block(t, k, n, rows) for t in (x, alpha, s))
        return x, alpha, s

    def x0_shape(self) -> torch.Size:
        """The shape ``x0`` will have: ``x``'s rows broadcast with ``eps``."""
        rows, eps = self.x.shape, self.eps.shape
        if self.blocks:
            rows = torch.Size((eps[0], *rows[1:]))
        # torch.broadcast_shapes costs tens of microseconds; equal shapes need none of it.
        return rows if rows == eps else torch.broadcast_shapes(rows, eps)

    def chunk(self, n: int) -> list[_PendingX0]:
        """``n`` row blocks, as ``Tensor.chunk`` cuts them."""
        x, _, alpha, s, dtype, blocks = self
        return [
            _PendingX0(x, eps, alpha, s, dtype, (*blocks, (k, n)))
            for k, eps in enumerate(self.eps.chunk(n))
        ]


def _block(t: Any, k: int, n: int, rows: int) -> Any:
    """Row block ``k`` of ``n`` of a tensor with ``rows`` rows; a float or a tensor that
    broadcasts over the rows (one row) as it is."""
    if isinstance(t, Tensor) and t.ndim > 0 and t.shape[0] == rows and rows > 1:
        return t.chunk(n)[k]
    return t
