"""Where the time of a tiny-SD step goes: UNet cost by batch size, and the adapter's own work.

Not a benchmark test (no pytest): ``python benchmarks/where_time_goes.py``. One thread. Prints
the median time of one tiny-UNet call at batch 1, 2 and 4 for 16x16 and 64x64 latents (with a
fit ``fixed + per_row * batch``), and the best time of each non-network piece of a standard step
at batch 2 (one prompt with CFG), to explain the ratios in docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import time
import timeit

import torch

from zsampling.adapters.diffusers import DiffusersModel, from_eps
from zsampling.core.errors import all_finite
from zsampling.core.levels import LevelCache
from zsampling.core.solvers import LevelPoint, ddim_step
from zsampling.testing.tiny import tiny_sd_pipeline


def unet_costs(unet: torch.nn.Module) -> None:
    with torch.inference_mode():
        for size, rounds in ((16, 15), (64, 4)):
            inputs = {b: (torch.randn(b, 4, size, size), torch.randn(b, 77, 32)) for b in (1, 2, 4)}
            for x, emb in inputs.values():
                unet(x, torch.tensor(500.0), encoder_hidden_states=emb)
            times: dict[int, list[float]] = {b: [] for b in inputs}
            for _ in range(rounds):
                for b, (x, emb) in inputs.items():
                    start = time.perf_counter()
                    unet(x, torch.tensor(500.0), encoder_hidden_states=emb)
                    times[b].append(time.perf_counter() - start)
            ms = {b: 1000 * statistics.median(v) for b, v in times.items()}
            per_row = (ms[4] - ms[1]) / 3
            cells = ", ".join(f"batch {b}: {v:.1f} ms" for b, v in ms.items())
            print(
                f"UNet, {size}x{size} latents: {cells}; "
                f"fit {ms[1] - per_row:.1f} ms fixed + {per_row:.1f} ms/row"
            )


def adapter_pieces(model: DiffusersModel) -> None:
    """The non-network work of one standard step at batch 2 (1 prompt + CFG), piece by piece."""
    sigma = torch.full((2,), 3.0, dtype=torch.float64)
    x = torch.randn(2, 4, 16, 16)
    eps = torch.randn(2, 4, 16, 16)
    seen = LevelCache(model.process, model.table)
    levels = seen(sigma, x.device, x.ndim)
    pred = from_eps(x, eps, levels)
    uncond, cond = pred.chunk(2)
    dst = LevelPoint(2.0, *model.process.point(2.0))
    pieces = {
        "levels of a new level (LevelCache miss: every predict of standard sampling)": lambda: (
            LevelCache(model.process, model.table)(sigma, x.device, x.ndim)
        ),
        "levels seen before (LevelCache hit: zigzag's repeated levels)": lambda: seen(
            sigma, x.device, x.ndim
        ),
        "x0 from eps in float64 (per predict)": lambda: from_eps(x, eps, levels),
        "CFG combination of both halves (per guided call)": lambda: uncond.guided(cond, 5.0),
        "DDIM step in float64 (per step)": lambda: ddim_step(x[:1], uncond, dst),
        "all_finite (per step)": lambda: all_finite(x[:1]),
    }
    for name, fn in pieces.items():
        best = min(timeit.repeat(fn, number=200, repeat=5)) / 200
        print(f"{name}: {best * 1e6:.0f} us")


def main() -> None:
    torch.set_num_threads(1)
    pipe = tiny_sd_pipeline()
    unet_costs(pipe.unet)
    adapter_pieces(DiffusersModel(pipe))


if __name__ == "__main__":
    main()
