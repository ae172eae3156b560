"""Brownian-tree noise for the DPM-Solver++ SDE solvers: the increments of one Brownian motion
per item over the step's levels, instead of independent draws per step.

k-diffusion and ComfyUI default their DPM-Solver++ SDE samplers to such a tree (torchsde's
``BrownianTree``); here it is built from the run's per-item seeds (`StepContext.entropy`), in the
frame's time (sigma, or flow ``t``, as those references query theirs), from 0 to the path's
first level. torchsde is optional: the setting that needs it says so where it is given.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from zsampling.core.solvers import LevelPoint, StepContext
from zsampling.solvers.stochastic import Noisy, fresh

NoiseKind = Literal["gaussian", "brownian"]


class BrownianTree:
    """One torchsde Brownian tree per item on ``[0, top]``; `increment` is standard normal."""

    def __init__(self, x: Tensor, top: float, seeds: list[int]) -> None:
        import torchsde

        w0 = torch.zeros_like(x[0], dtype=torch.float64)
        self.trees = [torchsde.BrownianTree(0.0, w0, top, entropy=seed) for seed in seeds]

    def increment(self, a: float, b: float) -> Tensor:
        """``(W(b) - W(a)) / sqrt(|b - a|)`` per item (standard normal for any ``a != b``)."""
        lo, hi = min(a, b), max(a, b)
        sign = 1.0 if b > a else -1.0
        w = torch.stack([tree(lo, hi) for tree in self.trees])
        return w * (sign / math.sqrt(hi - lo))


class SDENoisy(Noisy):
    """`Noisy` plus the choice of noise source (a base class, not a registered solver)."""

    noise: NoiseKind = Field(
        "gaussian",
        description="gaussian: independent draws per step | brownian: a Brownian tree "
        "per item (needs torchsde).",
    )

    @model_validator(mode="after")
    def _torchsde_for_brownian(self) -> Any:
        if self.noise == "brownian" and importlib.util.find_spec("torchsde") is None:
            raise ValueError(
                "noise = 'brownian' needs the torchsde package (pip install torchsde); "
                "'gaussian' needs nothing"
            )
        return self

    def draw(self, ctx: StepContext, x: Tensor, src: LevelPoint, a: float, b: float) -> Tensor:
        """Standard normal noise for the frame-time interval from ``a`` to ``b`` of a step from
        ``src``: an independent draw, or the item's Brownian increment over it."""
        if self.noise == "gaussian":
            return fresh(ctx, x)
        tree = ctx.remembered
        if tree is None:
            previous = ctx.history[0].state if ctx.history else None
            tree = previous or BrownianTree(x, src.tau, ctx.entropy(x.shape[0]))
            ctx.remember(tree)
        return tree.increment(a, b).to(device=x.device)
