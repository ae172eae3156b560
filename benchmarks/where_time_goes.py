"""Where the time of a tiny-SD step goes: UNet cost by batch size, and the adapter's own work.

Not a benchmark test (no pytest): ``python benchmarks/where_time_goes.py``. One thread. Prints
the median time of one tiny-UNet call at batch 1, 2 and 4 for 16x16 and 64x64 latents (with a
fit ``fixed + per_row * batch``), and of the non-network pieces of ``DiffusersModel.predict``
at batch 4, to explain the ratios in docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import time
import timeit

import torch

from zsampling.adapters.diffusers import DiffusersModel
from zsampling.core.errors import check_finite
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
    sigma = torch.full((4,), 3.0, dtype=torch.float64)
    x = torch.randn(4, 4, 16, 16)
    pieces = {
        "TimestepTable.timestep (per predict)": lambda: model.table.timestep(sigma),
        "Process.coefficients (per predict)": lambda: model.process.coefficients(sigma),
        "float64 x0/eps from eps (per predict)": lambda: (
            (x.to(torch.float64) - 0.5 * x.to(torch.float64)) / 0.7
        ).to(torch.float32),
        "check_finite (per step)": lambda: check_finite(x, "x"),
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
