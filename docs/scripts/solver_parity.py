"""The parity table of docs/solvers.md: each deterministic solver's largest relative difference
from its reference, on the analytic model with the same noise and levels (the tests' setups,
tests/solver_parity.py, tests/test_*_solvers.py and tests/test_solvers_unipc.py).

Each reference lives in its own venv, so the script takes the reference's name:

    python docs/scripts/solver_parity.py comfyui      # in the ComfyUI venv (.ci/run-comfyui)
    python docs/scripts/solver_parity.py k-diffusion  # in the k-diffusion venv
    python docs/scripts/solver_parity.py diffusers    # in the main venv
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from solver_parity import denoiser, ours, reference_start

from zsampling.plugins.manager import default_registry
from zsampling.testing.compare import relative_max

STEPS = (10, 25)


def solver(name: str, **settings: Any) -> Any:
    return default_registry().get("solver", name, "solver").cls(**settings)


def k_style(
    label: str, module: Any, references: dict[str, Any], processes: tuple[str, ...]
) -> None:
    for name, (function, kwargs, *rest) in references.items():
        settings = rest[-1] if rest and isinstance(rest[-1], dict) else {}
        worst = {}
        for process in processes:
            diffs = []
            for steps in STEPS:
                x, taus = reference_start(process, steps)
                model = module.Wrapped(process) if hasattr(module, "Wrapped") else denoiser(process)
                ref = getattr(module.ks if hasattr(module, "ks") else module.sampling, function)(
                    model, x, taus, disable=True, **kwargs
                )
                diffs.append(relative_max(ours(process, steps, solver(name, **settings)), ref))
            worst[process] = f"{max(diffs):.1e}"
        flow = worst.get("flow", "n/a")
        print(f"| `{name}` | {label} `{function}` | {worst['vp']} | {flow} |")


def unipc() -> None:
    import test_solvers_unipc as t

    from zsampling.adapters.analytic import AnalyticModel, demo_mixture

    model = AnalyticModel(demo_mixture())
    for variant, order in (("bh1", 2), ("bh2", 2), ("bh2", 3)):
        diffs = []
        for steps in STEPS:
            config: dict[str, Any] = dict(solver_type=variant, solver_order=order)
            if variant == "bh1":
                config["final_sigmas_type"] = "sigma_min"
            ref, sigmas = t.diffusers_unipc(model, steps, **config)
            run = t.sample(
                model,
                t.Standard(guidance=3.0),
                prompts=t.PROMPTS,
                noise=t.noise(),
                sigmas=sigmas,
                solver=solver("unipc", variant=variant, max_order=order),
            )
            diffs.append(relative_max(run.latents, ref))
        label = f"diffusers `UniPCMultistepScheduler` ({variant}, order {order})"
        print(f"| `unipc` | {label} | {max(diffs):.1e} | n/a |")


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which == "comfyui":
        import test_comfyui_solvers as comfy

        k_style("ComfyUI", comfy, comfy.REFERENCES, ("vp", "flow"))
    elif which == "k-diffusion":
        import test_kdiffusion_solvers as kd

        k_style("k-diffusion", kd, kd.REFERENCES, ("vp",))
    elif which == "diffusers":
        unipc()
    else:
        sys.exit("usage: solver_parity.py comfyui | k-diffusion | diffusers")


if __name__ == "__main__":
    main()
