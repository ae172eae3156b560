"""The stochastic and ancestral solvers: their zag is the documented deterministic step, their
noise is the run's seeded noise (reproducible, independent of batching, `zsampling reproduce`
holds), and they compose with zigzag and restart on the digits model.

Parity with k-diffusion and ComfyUI given the same noise: tests/test_kdiffusion_stochastic.py and
tests/test_comfyui_stochastic.py (their own venvs).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from stochastic_reference import LABELS, NULL, FlowAnalyticModel
from torch import Tensor
from typer.testing import CliRunner

from zsampling import Restart, Standard, Uniform, Zigzag, sample
from zsampling.adapters.analytic import AnalyticModel, demo_mixture
from zsampling.adapters.digits import DigitsAdapter
from zsampling.cli import app
from zsampling.core.cfg import CFG
from zsampling.core.path import SamplingPath
from zsampling.core.solvers import DDIM, DPMSolverPP2M
from zsampling.plugins.builtins import BUILTINS
from zsampling.solvers.ancestral import EulerAncestral
from zsampling.solvers.ddpm import DDPM
from zsampling.solvers.dpm2_ancestral import DPM2Ancestral
from zsampling.solvers.dpmpp_2m_sde import DPMPP2MSDE
from zsampling.solvers.dpmpp_2s_ancestral import DPMPP2SAncestral
from zsampling.solvers.dpmpp_3m_sde import DPMPP3MSDE
from zsampling.solvers.dpmpp_sde import DPMPPSDE
from zsampling.solvers.er_sde import ERSDE
from zsampling.solvers.lcm import LCM

ZAGS: list[tuple[Any, Any]] = [
    (EulerAncestral(), DDIM()),
    (DDPM(), DDIM()),
    (LCM(), DDIM()),
    (ERSDE(), DDIM()),
    (DPMPP2MSDE(), DPMSolverPP2M()),
    (DPMPP2MSDE(solver_type="heun"), DPMPP2MSDE(solver_type="heun", eta=0.0)),
    (DPM2Ancestral(), DPM2Ancestral(eta=0.0)),
    (DPMPP2SAncestral(), DPMPP2SAncestral(eta=0.0)),
    (DPMPPSDE(), DPMPPSDE(eta=0.0)),
    (DPMPP3MSDE(), DPMPP3MSDE(eta=0.0)),
]
"""Each stochastic solver and the deterministic step its zag is (docs/concepts.md)."""

SOLVERS = [cls() for cls in BUILTINS["solver"]]  # type: ignore[operator]


class Draws:
    """Counts the noise a path hands out (in place of its `noise_like`)."""

    def __init__(self, path: SamplingPath) -> None:
        self.count = 0
        self.inner = path.noise_like

    def __call__(self, x: Tensor) -> Tensor:
        self.count += 1
        return self.inner(x)


def path_of(model: Any, solver: Any, sigmas: Tensor) -> tuple[SamplingPath, Draws]:
    guider = CFG().bind(model, {"label": LABELS}, {"label": NULL})
    path = SamplingPath(sigmas, model.process, {"main": guider}, solver)
    draws = Draws(path)
    path.noise_like = draws  # type: ignore[method-assign]
    return path, draws


def levels(flow: bool) -> Tensor:
    if flow:  # t from 0.95 to 0
        t = torch.linspace(0.95, 0.0, 9, dtype=torch.float64)
        return t / (1 - t)
    return torch.tensor([14.6, 8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.0], dtype=torch.float64)


def test_every_registered_stochastic_solver_has_a_documented_zag() -> None:
    stochastic = set()
    for solver in SOLVERS:
        path, draws = path_of(AnalyticModel(demo_mixture()), solver, levels(False))
        x = torch.randn(4, 2, dtype=torch.float64)
        for i in range(4):
            x = path.denoise(x, i, 2.0)
        if draws.count:
            stochastic.add(solver.name)
    assert stochastic == {solver.name for solver, _ in ZAGS}


@pytest.mark.parametrize("flow", [False, True], ids=["vp", "flow"])
@pytest.mark.parametrize(("solver", "counterpart"), ZAGS, ids=lambda s: repr(s))
def test_the_zag_is_the_deterministic_counterparts(
    solver: Any, counterpart: Any, flow: bool
) -> None:
    model = FlowAnalyticModel(demo_mixture()) if flow else AnalyticModel(demo_mixture())
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (ours, draws), (theirs, _) = (path_of(model, s, levels(flow)) for s in (solver, counterpart))
    # an isolated zag after a zig (Z-Sampling), then a whole inversion with upward history
    zig = ours.denoise(x, 2, 3.0)
    before = draws.count
    a, b = ours.invert(zig, 2, 1.0), theirs.invert(zig, 2, 1.0)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for i in range(6, -1, -1):
        a, b = ours.invert(a if i < 6 else x, i, 1.0), theirs.invert(b if i < 6 else x, i, 1.0)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert draws.count == before  # a zag never draws noise


@pytest.mark.parametrize("solver", [s for s, _ in ZAGS], ids=lambda s: repr(s))
def test_noise_is_the_runs_seeded_noise(solver: Any) -> None:
    def run(prompts: list[str], seeds: list[int]) -> Tensor:
        return sample(
            AnalyticModel(demo_mixture()),
            Standard(guidance=2.0),
            prompts=prompts,
            seeds=seeds,
            schedule=Uniform(steps=6),
            solver=solver,
        ).latents

    both = run(["red", "blue"], [3, 4])
    assert torch.equal(run(["red", "blue"], [3, 4]), both)
    assert torch.equal(run(["blue"], [4])[0], both[1])
    assert not torch.equal(run(["red", "blue"], [3, 5])[1], both[1])


@pytest.fixture(scope="module")
def digits() -> Any:
    return DigitsAdapter().load()


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: s.name)
def test_zigzag_and_restart_with_every_solver_on_digits(digits: Any, solver: Any) -> None:
    kw: dict[str, Any] = dict(prompts=["3", "eight"], seeds=[0, 1], schedule=Uniform(steps=5))
    std = sample(digits, Standard(guidance=3.0), solver=solver, **kw)
    zig = sample(digits, Zigzag(guidance=3.0, zigzag_steps=2), solver=solver, **kw)
    restart = Restart(guidance=3.0, restart_min=0.5, restart_max=3.0, rounds=1)
    res = sample(digits, restart, solver=solver, **kw)
    for run in (std, zig, res):
        assert bool(torch.isfinite(run.latents).all())
    # a zig and a zag per zigzag step, each as many calls as the solver's step makes
    assert zig.counter.guided_calls > std.counter.guided_calls
    assert (zig.latents - std.latents).abs().max() > 1e-3
    assert (res.latents - std.latents).abs().max() > 1e-3


def test_bad_settings_are_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    bad = 'eta = -1\nsolver_type = "rk4"\n'
    config.write_text(CONFIG.format(out=tmp_path / "out").replace("eta = 0.7\n", bad))
    result = CliRunner().invoke(app, ["run", str(config), "-q"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "solver.eta: Input should be greater than or equal to 0 (got -1)" in message
    assert "solver.solver_type: Input should be 'midpoint' or 'heun' (got 'rk4')" in message


def test_the_registry_lists_them() -> None:
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = result.output
    for solver, _ in ZAGS:
        assert f'"{solver.name}"' in listed


CONFIG = """
[model]
use = "analytic"
[schedule]
use = "karras"
steps = 8
[sampler]
use = "zigzag"
guidance = 2.0
[solver]
use = "dpmpp-2m-sde"
eta = 0.7
[run]
prompts = ["red", "green"]
seeds = [0, 1]
output = "{out}"
"""


def test_a_stochastic_run_reproduces_bit_for_bit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(out=out))
    assert CliRunner().invoke(app, ["run", str(config), "-q"]).exit_code == 0
    targets = sorted(out.glob("*.safetensors"))
    assert len(targets) == 4
    again = tmp_path / "again"
    result = CliRunner().invoke(app, ["reproduce", str(targets[1]), "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert "bit for bit" in " ".join(result.output.split())
    assert (again / targets[1].name).read_bytes() == targets[1].read_bytes()


@pytest.mark.skipif(importlib.util.find_spec("torchsde") is not None, reason="torchsde is here")
def test_brownian_noise_without_torchsde_says_what_to_install(tmp_path: Path) -> None:
    config = tmp_path / "brownian.toml"
    brownian = CONFIG.format(out=tmp_path / "out").replace("eta = 0.7", 'noise = "brownian"')
    config.write_text(brownian)
    result = CliRunner().invoke(app, ["run", str(config), "-q"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "solver: noise = 'brownian' needs the torchsde package (pip install torchsde)" in message
