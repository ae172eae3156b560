"""Measure zsampling's ComfyUI samplers against ComfyUI's own and against zsampling's core.

Run from the repository root, in the ComfyUI venv (see ``.ci/run-comfyui``)::

    python docs/scripts/comfyui_parity.py

It prints the table of ``docs/comfyui.md`` ("Measured against ComfyUI"). Setup: the test suite's
tiny SD 1.5-type UNet with seeded random weights (``tests/comfy_tiny.py``), an empty 8x8 latent,
seed 0, CFG 5 in a ``CFGGuider``; 8 Karras steps (SD) or 8 ``simple`` steps of the same UNet
patched to a flow model by ComfyUI's ``ModelSamplingSD3`` node (shift 3). The zigzag rows use
``inversion_guidance = 0.5`` and the default zigzag steps (all but the last); the restart rows
restart once from 0.5 to 5; the APG row uses ``eta = 0``, ``norm_threshold = 1``,
``momentum = -0.5``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from comfy_tiny import (
    cfg_guider,
    conditioning,
    core_zigzag,
    import_comfyui,
    model_sigmas,
    run,
    tiny_patcher,
)

import_comfyui()

import comfy.samplers  # noqa: E402
from comfy_extras.nodes_model_advanced import ModelSamplingSD3  # noqa: E402

from zsampling import APG, Restart, Standard, Zigzag  # noqa: E402
from zsampling.core.solvers import DPMSolverPP2M, Euler  # noqa: E402
from zsampling.integrations.comfyui.guiders import RuleGuider  # noqa: E402
from zsampling.integrations.comfyui.sampling import SamplerSpec, comfy_sampler  # noqa: E402
from zsampling.testing.compare import relative_max as rel  # noqa: E402

G = 5.0
POS, NEG = conditioning(1), conditioning(2)


def ours(
    patcher: Any, sigmas: Any, cls: Any, settings: dict[str, Any], solver: Any, around: Any = None
) -> Any:
    spec = SamplerSpec(cls, settings, solver, around=around)
    return run(cfg_guider(patcher, G, POS, NEG), comfy_sampler(spec), sigmas)


def comfyui(patcher: Any, sigmas: Any, name: str) -> Any:
    return run(cfg_guider(patcher, G, POS, NEG), comfy.samplers.sampler_object(name), sigmas)


def main() -> None:
    sd = tiny_patcher()
    (flow,) = ModelSamplingSD3().patch(sd, 3.0)
    models = {
        "SD (EPS)": (sd, model_sigmas(sd, 8)),
        "flow": (flow, model_sigmas(flow, 8, "simple")),
    }
    rows = []
    for label, (m, sigmas) in models.items():
        mine = ours(m, sigmas, Zigzag, {"zigzag_steps": 0}, Euler())
        what = "zigzag, `zigzag_steps = 0`, " + (
            "SD (EPS)" if label == "SD (EPS)" else "flow (ModelSamplingSD3)"
        )
        rows.append((what, "ComfyUI `euler`", rel(mine, comfyui(m, sigmas, "euler"))))
    sigmas = models["SD (EPS)"][1]
    mine = ours(sd, sigmas, Standard, {}, DPMSolverPP2M())
    rows.append(
        ("standard, `dpmpp-2m`", "ComfyUI `dpmpp_2m`", rel(mine, comfyui(sd, sigmas, "dpmpp_2m")))
    )
    cases = [("sd", "source"), ("sd", "target"), ("sd", "official"), ("flow", "source")]
    for model, inversion in cases:
        m, sigmas = models["SD (EPS)" if model == "sd" else "flow"]
        settings = {"inversion_guidance": 0.5, "inversion": inversion}
        mine = ours(m, sigmas, Zigzag, settings, Euler())
        core = core_zigzag(m, sigmas, Zigzag(guidance=G, **settings), POS, NEG)
        what = f"zigzag, `{inversion}`" + (", flow" if model == "flow" else "")
        rows.append((what, "zsampling's core zigzag, same UNet", rel(mine, core)))
    rows += around_and_guider_rows(sd, models["SD (EPS)"][1])
    print("| what | reference | relative difference |")
    print("|---|---|---|")
    for what, ref, value in rows:
        print(f"| {what} | {ref} | {value:.1e} |")


def around_and_guider_rows(sd: Any, sigmas: Any) -> list[tuple[str, str, float]]:
    """The route nodes around a ComfyUI sampler, and the GUIDER node, against their references."""
    euler, res = (comfy.samplers.sampler_object(n) for n in ("euler", "res_multistep"))
    zigzag = {"inversion_guidance": 0.5}
    restart = {"restart_min": 0.5, "restart_max": 5.0, "rounds": 1}
    around = ours(sd, sigmas, Zigzag, zigzag, Euler(), around=euler)
    built_in = ours(sd, sigmas, Zigzag, zigzag, Euler())
    res_restart = ours(sd, sigmas, Restart, restart, Euler(), around=res)
    euler_restart = ours(sd, sigmas, Restart, restart, Euler(), around=euler)
    apg = APG(eta=0.0, norm_threshold=1.0, momentum=-0.5)
    node = RuleGuider(sd, apg)
    node.set_conds(POS, NEG)
    node.set_cfg(G)
    core = core_zigzag(sd, sigmas, Standard(guidance=G), POS, NEG, guider=apg)
    return [
        ("zigzag around ComfyUI `euler` (`sampler` input)", "zigzag node, `euler` solver",
         rel(around, built_in)),
        ("restart around ComfyUI `res_multistep`", "restart around ComfyUI `euler`",
         rel(res_restart, euler_restart)),
        ("`ZSamplingGuider` APG, ComfyUI `euler`", "zsampling's core, APG guider, same UNet",
         rel(run(node, euler, sigmas), core)),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
