"""Helpers shared by the benchmarks (plain functions; nothing here is timed on import).

Timing protocol: every comparison runs its arms *interleaved* in one process (A B, then B A, ...)
after one warm-up call of each, so a burst of load from other processes on a shared CPU hits both
arms alike. The headline ratio is the median of the per-round ratios; the ratio of the per-arm
minima (the least-disturbed runs) is stored next to it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [3, 4]
GUIDANCE = 5.0


def latents_noise(seeds: Sequence[int], shape: tuple[int, ...] = (4, 16, 16)) -> torch.Tensor:
    """Starting noise as diffusers draws it: one CPU generator per seed."""
    return torch.stack(
        [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
    )


class Interleaved:
    """Arms timed round by round; call `round` from ``benchmark.pedantic``."""

    def __init__(self, arms: dict[str, Callable[[], Any]]) -> None:
        self.arms = arms
        self.times: dict[str, list[float]] = {name: [] for name in arms}
        self.outputs: dict[str, Any] = {}
        self._flip = False

    def warm_up(self) -> None:
        for name, fn in self.arms.items():
            self.outputs[name] = fn()

    def round(self) -> None:
        names = list(self.arms)
        if self._flip:
            names.reverse()
        self._flip = not self._flip
        for name in names:
            start = time.perf_counter()
            self.outputs[name] = self.arms[name]()
            self.times[name].append(time.perf_counter() - start)

    def ratio(self, num: str, den: str, scale: float = 1.0) -> dict[str, float]:
        """``num / den`` (times ``scale``): median per-round ratio and ratio of minima."""
        per_round = [scale * a / b for a, b in zip(self.times[num], self.times[den], strict=True)]
        return {
            "ratio": statistics.median(per_round),
            "ratio_of_mins": scale * min(self.times[num]) / min(self.times[den]),
            "rounds": len(per_round),
        }

    def ms(self) -> dict[str, float]:
        """Median milliseconds per arm."""
        return {f"{k}_ms": 1000 * statistics.median(v) for k, v in self.times.items()}


def verdict(value: float, target: float, op: str) -> dict[str, Any]:
    met = value <= target if op == "<=" else value < target
    return {"target": f"{op} {target:g}", "met": bool(met)}


@torch.inference_mode()
def official_zigzag(
    pipe: Any,
    prompts: Sequence[str],
    latents: torch.Tensor,
    steps: int,
    gamma1: float,
    gamma2: float = 0.0,
    rows: list[int] | None = None,
) -> torch.Tensor:
    """The released ``z_sampling_call`` loop for an SD UNet (lambda = T - 1, T_max = 1).

    A copy of ``tests/test_diffusers_zigzag.py::official_zigzag``: diffusers' ``DDIMScheduler``
    for every zig, ``DDIMInverseScheduler.step(eps, t_{i+1}, x_next)`` with the model at ``t_i``
    for every zag, step state reset by hand, both CFG branches in one batched UNet call every time.
    ``rows`` (if given) receives the number of UNet rows of each call.
    """
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    inverse_scheduler = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    inverse_scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    cond, uncond = pipe.encode_prompt(list(prompts), pipe.device, 1, True)
    embeds = torch.cat([uncond, cond])

    def guided_eps(x: torch.Tensor, t: Any, scale: float) -> torch.Tensor:
        model_input = scheduler.scale_model_input(torch.cat([x, x]), t)
        if rows is not None:
            rows.append(int(model_input.shape[0]))
        both = pipe.unet(model_input, t, encoder_hidden_states=embeds).sample
        eps_u, eps_c = both.chunk(2)  # both branches, even when scale == 0
        return eps_u + scale * (eps_c - eps_u)

    lambda_step = len(timesteps) - 1
    x = latents * scheduler.init_noise_sigma
    for i, t in enumerate(timesteps):
        noise_pred = guided_eps(x, t, gamma1)
        scheduler._step_index = None
        x_next = scheduler.step(noise_pred, t, x).prev_sample
        if i < lambda_step:
            noise_pred = guided_eps(x_next, t, gamma2)
            inverse_scheduler._step_index = None
            x = inverse_scheduler.step(noise_pred, timesteps[i + 1], x_next).prev_sample
            noise_pred = guided_eps(x, t, gamma1)
            scheduler._step_index = None
            x_next = scheduler.step(noise_pred, t, x).prev_sample
        x = x_next
    return x
