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
from zsampling.core.cfg import CFG
from zsampling.core.errors import all_finite
from zsampling.core.guidance import GuidanceContext
from zsampling.core.levels import LevelCache
from zsampling.core.rules import GuidanceCall
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
    """The non-network work of one standard step at batch 2 (1 prompt + CFG), piece by piece,
    in inference mode as a run's loop is."""
    sigma = torch.full((2,), 3.0, dtype=torch.float64)
    x = torch.randn(1, 4, 16, 16)
    x2 = torch.cat([x, x])
    eps = torch.randn(2, 4, 16, 16)
    seen = LevelCache(model.process, model.table)
    levels = seen(sigma, x.device, x.ndim)
    alpha, s = model.process.point(3.0)
    pair = from_eps(x2, eps, levels)
    uncond, cond = pair.to(torch.float64).chunk(2)
    call = GuidanceCall(5.0, 3.0, alpha, s, GuidanceContext(), x, model.process, {})
    guided = CFG().combine_predictions(cond, uncond, call)
    dst = LevelPoint(2.0, *model.process.point(2.0))
    pieces = {
        "levels of a new level (LevelCache miss: every predict of standard sampling)": lambda: (
            LevelCache(model.process, model.table)(sigma, x.device, x.ndim)
        ),
        "levels seen before (LevelCache hit: zigzag's repeated levels)": lambda: seen(
            sigma, x.device, x.ndim
        ),
        "the pair of an eps prediction, x0 pending (per predict)": lambda: from_eps(
            x2, eps, levels
        ),
        "branches widened once and cut (per guided call)": lambda: pair.to(torch.float64).chunk(2),
        "CFG combination, guided pair (per guided call)": lambda: CFG().combine_predictions(
            cond, uncond, call
        ),
        "DDIM step with the pending pair, float64 (per step)": lambda: ddim_step(x, guided, dst),
        "a pair made and its x0 derived (where a step reads x0: multistep solvers)": lambda: (
            from_eps(x, eps[:1], levels).x0
        ),
        "all_finite (per step)": lambda: all_finite(x),
    }
    with torch.inference_mode():
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
