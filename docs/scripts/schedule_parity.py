"""Measure zsampling's schedules against ComfyUI's scheduler functions and k-diffusion's.

Run from the repository root, in the ComfyUI venv (see ``.ci/run-comfyui``)::

    python docs/scripts/schedule_parity.py

It prints the table of ``docs/schedules.md``: for each schedule, the largest element-wise relative
difference from its reference over 5, 10, 25 and 50 steps, on ComfyUI's model samplings for SD
(eps and v prediction), SD3-type flow (shift 3) and FLUX-type flow (mu 1.15), with zsampling's side
a model that knows nothing of ComfyUI (the setup of ``tests/test_comfyui_schedules.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from comfy_tiny import import_comfyui

import_comfyui()

import comfy.k_diffusion.sampling as kd  # noqa: E402
import comfy.samplers  # noqa: E402
from comfy_schedules import (  # noqa: E402
    COMFY_NAMES,
    KINDS,
    STEPS,
    comfy_sampling,
    in_comfy_space,
    our_model,
    schedule,
    worst,
)
from torch import Tensor  # noqa: E402

from zsampling.core.schedule import schedule_levels  # noqa: E402

HEADER = ("SD eps", "SD v", "SD3 flow", "FLUX flow")


def measured(name: str, kind: str, settings: dict[str, float]) -> float:
    ms = comfy_sampling(kind)
    model = our_model(kind)
    out = 0.0
    for steps in STEPS:
        ref: Tensor
        if name == "polyexponential":
            lo, hi = float(ms.sigma_min), float(ms.sigma_max)
            ref = kd.get_sigmas_polyexponential(steps, lo, hi, settings["rho"])
        else:
            ref = comfy.samplers.calculate_sigmas(ms, COMFY_NAMES.get(name, name), steps)
        ours = schedule_levels(schedule(name, steps, **settings), model)
        out = max(out, worst(in_comfy_space(ours, model), ref))
    return out


def main() -> None:
    rows = [(n, f"ComfyUI `{c}`", {}) for n, c in sorted(COMFY_NAMES.items())]
    rows.append(("karras", "ComfyUI `karras` (k-diffusion's `get_sigmas_karras`)", {}))
    rows.append(("polyexponential", "k-diffusion `get_sigmas_polyexponential`", {"rho": 2.0}))
    print("| schedule | reference | " + " | ".join(HEADER) + " |")
    print("|---|---|" + "---|" * len(HEADER))
    for name, ref, settings in rows:
        kinds = KINDS[:2] if name == "karras" else KINDS
        cells = [f"{measured(name, k, settings):.1e}" if k in kinds else "n/a" for k in KINDS]
        shown = name + (f" (rho {settings['rho']:g})" if settings else "")
        print(f"| `{shown}` | {ref} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
