"""Malformed configs: one paragraph naming the field path, exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from zsampling.cli import app
from zsampling.plugins.manager import default_registry

GOOD = {
    "model": 'use = "analytic"',
    "schedule": 'use = "uniform"\nsteps = 10',
    "sampler": 'use = "zigzag"\nguidance = 2.0',
    "run": 'prompts = ["red"]\nseeds = [0]\noutput = "OUT"',
}


def toml(**sections: str | None) -> str:
    """The good config with some sections replaced (a string) or removed (None)."""
    merged = {**GOOD, **sections}
    return "\n".join(f"[{k}]\n{v}\n" for k, v in merged.items() if v is not None)


CASES: list[tuple[str, str, str, str]] = [
    # (id, file suffix, content, expected fragment of the message)
    ("broken-toml", ".toml", "[model\nuse = ", "not valid TOML"),
    ("broken-yaml", ".yaml", "model: [use: analytic", "not valid YAML"),
    ("yaml-not-a-table", ".yaml", "- a\n- b\n", "the top level must be a table"),
    ("wrong-suffix", ".json", "{}", "expected a .toml, .yaml or .yml file"),
    ("missing-model", ".toml", toml(model=None), "model: missing section"),
    ("missing-sampler", ".toml", toml(sampler=None), "sampler: missing section"),
    ("missing-run", ".toml", toml(run=None), "run: missing section"),
    (
        "unknown-section",
        ".toml",
        toml() + "[sampelr]\nuse = 'zigzag'\n",
        "sampelr: unknown section; valid sections: model",
    ),
    (
        "missing-use",
        ".toml",
        toml(model="variance = 0.5"),
        "model.use: missing; registered adapters: analytic, diffusers, digit-pairs, digits, flux,"
        " k-diffusion, sd3, shapes",
    ),
    (
        "unknown-adapter",
        ".toml",
        toml(model='use = "sd99"'),
        "model.use: unknown adapter 'sd99'; registered adapters: analytic, diffusers,"
        " digit-pairs, digits, flux, k-diffusion, sd3, shapes",
    ),
    (
        "unknown-sampler",
        ".toml",
        toml(sampler='use = "zagzig"'),
        "sampler.use: unknown sampler 'zagzig'; registered samplers: asymmetry-zigzag,"
        " implicit-zigzag, restart, standard, w2sd, z2, zigzag",
    ),
    ("use-not-string", ".toml", toml(sampler="use = 3"), "sampler.use: unknown sampler 3"),
    (
        "wrong-type",
        ".toml",
        toml(sampler='use = "zigzag"\nguidance = "high"'),
        "sampler.guidance: Input should be a valid number",
    ),
    (
        "negative-gamma2",
        ".toml",
        toml(sampler='use = "zigzag"\ninversion_guidance = -1'),
        "sampler.inversion_guidance: Input should be greater than or equal to 0 (got -1)",
    ),
    (
        "unknown-key",
        ".toml",
        toml(sampler='use = "zigzag"\ngama = 1'),
        "sampler.gama: unknown setting; valid settings: guidance, inversion_guidance",
    ),
    (
        "bad-inversion",
        ".toml",
        toml(sampler='use = "zigzag"\ninversion = "middle"'),
        "sampler.inversion: Input should be 'official', 'target' or 'source'",
    ),
    (
        "lambda-too-big",
        ".toml",
        toml(sampler='use = "zigzag"\nzigzag_steps = 10'),
        "sampler.zigzag_steps: 10 is invalid: an integer in [0, 9] for a 10-step schedule",
    ),
    (
        "zero-steps",
        ".toml",
        toml(schedule='use = "uniform"\nsteps = 0'),
        "schedule.steps: Input should be greater than or equal to 1 (got 0)",
    ),
    (
        "unknown-schedule",
        ".toml",
        toml(schedule='use = "cosine"'),
        "schedule.use: unknown schedule 'cosine'; registered schedules: align-your-steps (or"
        " ays), beta, ddim-uniform, exponential, flow-match, karras, kl-optimal,"
        " linear-quadratic, normal, polyexponential, scheduler, sgm-uniform, simple, uniform",
    ),
    (
        "unknown-solver",
        ".toml",
        toml() + '[solver]\nuse = "dpm-fast"\n',
        "solver.use: unknown solver 'dpm-fast'; registered solvers: "
        + ", ".join(default_registry().names("solver")),
    ),
    (
        "section-not-table",
        ".toml",
        "schedule = 5\n" + toml(schedule=None),
        "schedule: expected a table with use",
    ),
    (
        "empty-prompts",
        ".toml",
        toml(run="prompts = []"),
        "run.prompts: List should have at least 1 item",
    ),
    ("missing-prompts", ".toml", toml(run="seeds = [1]"), "run.prompts: Field required"),
    (
        "bad-seed",
        ".toml",
        toml(run='prompts = ["red"]\nseeds = ["a"]'),
        "run.seeds.0: Input should be a valid integer",
    ),
    (
        "zip-mismatch",
        ".toml",
        toml(run='prompts = ["red", "blue"]\nseeds = [1]\npairing = "zip"'),
        "run.seeds: pairing = 'zip' needs one seed per prompt (2), got 1",
    ),
    (
        "output-not-string",
        ".toml",
        toml(run='prompts = ["red"]\noutput = 3'),
        "run.output: Input should be a valid string",
    ),
    (
        "patches-not-list",
        ".toml",
        toml(model='use = "analytic"\npatches = {use = "x"}'),
        "model.patches: expected a list of tables",
    ),
    (
        "unknown-patch",
        ".toml",
        toml() + '[[model.patches]]\nuse = "lora9"\n',
        "model.patches.0.use: unknown patch 'lora9'",
    ),
    (
        "patch-out-of-range",
        ".toml",
        toml() + '[[model.patches]]\nuse = "dynamic-threshold"\npercentile = 2\n',
        "model.patches.0.percentile: Input should be less than or equal to 1 (got 2)",
    ),
    (
        "unknown-metric",
        ".toml",
        toml() + '[[metrics]]\nuse = "fid"\n',
        "metrics.0.use: unknown metric 'fid'; registered metrics: class-posterior, clip-score,"
        " digit-accuracy, digit-alignment, digit-typicality (or digit-realism), log-density",
    ),
    (
        "observers-not-list",
        ".toml",
        'observers = "step-log"\n' + toml(),
        "observers: expected a list of tables",
    ),
    (
        "w2sd-without-weak",
        ".toml",
        toml(sampler='use = "w2sd"'),
        "sampler.weak_model: 'weak' names no model; define [models.weak]",
    ),
    ("models-main", ".toml", toml() + '[models.main]\nuse = "analytic"\n', "models.main: reserved"),
    (
        "restart-interval",
        ".toml",
        toml(sampler='use = "restart"\nrestart_min = 3.0\nrestart_max = 1.0'),
        "sampler: restart_max (1.0) must be greater than restart_min (3.0)",
    ),
    (
        "analytic-shapes",
        ".toml",
        toml(model='use = "analytic"\nmeans = [[0.0], [1.0]]\nlabels = [0]'),
        "model: labels must give one class per mean (2)",
    ),
    (
        "guider-weak-model",
        ".toml",
        toml() + '[guider]\nuse = "auto-guidance"\n',
        "guider.weak_model: 'weak' names no model; define [models.weak]",
    ),
    (
        "guider-type",
        ".toml",
        toml() + '[guider]\nskip_unused_branches = "maybe"\n',
        "guider.skip_unused_branches: Input should be a valid boolean",
    ),
]


@pytest.mark.parametrize(
    ("suffix", "content", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_config(tmp_path: Path, suffix: str, content: str, expected: str) -> None:
    path = tmp_path / f"config{suffix}"
    path.write_text(content.replace("OUT", str(tmp_path / "out")))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    flat = " ".join(result.output.split())
    assert expected in flat, flat
    assert not (tmp_path / "out").exists()  # nothing was generated, no model was loaded


def test_at_least_25_cases() -> None:
    assert len({c[0] for c in CASES}) >= 25


def test_all_problems_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml(sampler='use = "zigzag"\nguidance = -2\nrounds = 0', run="prompts = []"))
    result = CliRunner().invoke(app, ["check", str(path)])
    flat = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "3 problem(s)" in flat
    for field in ("sampler.guidance", "sampler.rounds", "run.prompts"):
        assert field in flat


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("sampler.guidance", "--set: 'sampler.guidance' is not of the form key.path=value"),
        ("sampler.guidance=-3", "sampler.guidance: Input should be greater than or equal to 0"),
        ("model.patches.4.percentile=0.5", "--set: 'model.patches.4.percentile=0.5': no list item"),
        ("run.prompts.x=1", "run.prompts.x: unknown"),
    ],
)
def test_bad_overrides(tmp_path: Path, override: str, expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml().replace("OUT", str(tmp_path / "out")))
    result = CliRunner().invoke(app, ["check", str(path), "--set", override])
    flat = " ".join(result.output.split())
    assert result.exit_code == 2, flat
    assert expected.split(":")[0] in flat
    assert "Traceback" not in result.output


def test_missing_file() -> None:
    result = CliRunner().invoke(app, ["run", "/nonexistent/zs.toml"])
    assert result.exit_code == 2
    assert "/nonexistent/zs.toml: no such file" in " ".join(result.output.split())
