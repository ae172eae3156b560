"""A ComfyUI SAMPLER as the denoise move of zsampling's routes (zigzag, restart, W2SD).

When a route node gets a ``sampler`` input, every denoise move of the route (the zig, the
zigzag's re-denoise, the restart's re-denoise) runs that ComfyUI sampler over the step's two
levels, ``sigmas[i:i + 2]``, while the inversions and the restart's jump up stay zsampling's
(the node's ``solver``, deterministic). ComfyUI samplers are loops over a sigma list, so one
call over a two-level list is one step of that sampler. What "one step" means:

- **Multistep samplers** (dpmpp_2m, res_multistep, ...) keep their history inside one call, so
  each call starts without any: every step is the sampler's first-order start. That is
  deliberate: between two denoises of a zigzag the latent was inverted, and a history from the
  other side of the zag would be the wrong one. For res_multistep (and dpmpp_2m) the first-order
  start is Euler's step, so the route around them equals the route around ``euler``.
- **Ancestral and SDE samplers** (euler_ancestral, dpmpp_2m_sde, ...) add their noise on every
  call. Their noise comes from ``extra_args["seed"]``, so each call gets a seed of its own: the
  ``k``-th call's seed is the ``k``-th draw of ``torch.randint(0, 2**62, (1,))`` from a CPU
  generator seeded with the NOISE seed (`call_seeds`). The same seed gives the same image, and
  two calls never share a noise stream (a Brownian tree or a generator seeded alike on every call
  would add the same noise each step). The model itself sees the run's seed, as in any run.
- **Samplers that change ``extra_args``** (the CFG++ variants add a post-CFG function to the
  model options) keep doing so: the model call honours what the sampler passes, at the route's
  scale for that move.

The callback (previews, progress) gets the sampler's own callback dict with ``i`` set to the
route's step, so a zigzag step reports twice with the same index, as zsampling's denoise does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from zsampling.core.errors import InvalidArgument
from zsampling.core.events import Observer
from zsampling.core.guidance import Guider
from zsampling.core.levels import Process
from zsampling.core.path import MAIN
from zsampling.core.prediction import Prediction
from zsampling.core.solvers import Solver
from zsampling.integrations.comfyui.guidance import ScaledCall
from zsampling.integrations.kdiffusion import Callback, NoiseSamplerPath

SEED_BOUND = 2**62


def check_sampler(sampler: Any) -> Any:
    """``sampler`` if it is a ComfyUI ``KSAMPLER`` (what KSamplerSelect and the sampler nodes
    give), else an `InvalidArgument` naming what arrived."""
    import comfy.samplers

    if isinstance(sampler, comfy.samplers.KSAMPLER):
        return sampler
    raise InvalidArgument(
        "sampler",
        type(sampler).__name__,
        "a SAMPLER that runs a sampler function over a sigma list (comfy.samplers.KSAMPLER: "
        "what KSamplerSelect, SamplerDPMPP_2M_SDE and the other sampler nodes give)",
    )


def call_seeds(seed: int | None) -> Iterator[int | None]:
    """The seed of each call of the wrapped sampler (module docstring); None without a seed."""
    if seed is None:
        while True:
            yield None
    generator = torch.Generator().manual_seed(int(seed))
    while True:
        yield int(torch.randint(0, SEED_BOUND, (1,), generator=generator))


class _AtScale:
    """The model a ComfyUI sampler function calls, guided at one route move's scale.

    It looks like ComfyUI's ``KSamplerX0Inpaint`` to the sampler (``inner_model`` is the guider,
    which samplers read the model sampling from) and calls it through `ScaledCall`.
    """

    def __init__(self, call: ScaledCall, scale: float) -> None:
        self.call = call
        self.scale = scale
        self.inner_model = call.model.inner_model

    def __call__(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        args = {**extra_args, "seed": self.call.extra_args.get("seed")}
        self.call.counter.guided_calls += 1
        out: Tensor = ScaledCall(self.call.model, args, self.call.counter)(x, sigma, self.scale)
        return out


class AroundSamplerPath(NoiseSamplerPath):
    """A path whose denoise moves run a ComfyUI sampler over the step's two levels (module
    docstring); inversions and jumps are the base path's."""

    def __init__(
        self,
        sigmas: Tensor,
        process: Process,
        guiders: Mapping[str, Guider],
        solver: Solver,
        observers: Sequence[Observer],
        *,
        sampler: Any,
        comfy_sigmas: Tensor,
        callback: Callback | None,
        seed: int | None,
    ) -> None:
        super().__init__(sigmas, process, guiders, solver, observers)
        self.sampler = check_sampler(sampler)
        self.comfy_sigmas = comfy_sigmas
        self.callback = callback
        self.seeds = call_seeds(seed)

    def denoise(
        self,
        x: Tensor,
        i: int,
        guidance: float,
        model: str = MAIN,
        conditioning: str = "cond",
        prediction: Prediction | None = None,
    ) -> Tensor:
        self._check_index("step", i, 0, self.steps - 1)
        if conditioning != "cond" or prediction is not None:
            raise InvalidArgument(
                "sampler",
                "a ComfyUI SAMPLER",
                "a route whose denoise moves use the guider's own conditioning and make their "
                "own prediction (zigzag, restart, W2SD); leave the sampler input empty for this "
                "route",
            )
        call: ScaledCall = self._guider(model).model.call  # type: ignore[attr-defined]
        at_scale = _AtScale(call, guidance)
        extra_args = {**call.extra_args, "seed": next(self.seeds)}
        out: Tensor = self.sampler.sampler_function(
            at_scale,
            x,
            self.comfy_sigmas[i : i + 2],
            extra_args=extra_args,
            callback=self._step_callback(i),
            disable=True,
            **self.sampler.extra_options,
        )
        return self._emit("denoise", i, i + 1, out, guidance, model)

    def _step_callback(self, i: int) -> Callable[[dict[str, Any]], Any] | None:
        outer = self.callback
        if outer is None:
            return None
        return lambda info: outer({**info, "i": i})
