"""The plugin system as plugin authors and users meet it: hooks, entry points, CLI, configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import torch
from plugin_install import pip_install
from pydantic import BaseModel
from safetensors.torch import load_file
from typer.testing import CliRunner

from zsampling.cli import app
from zsampling.plugins import hookimpl
from zsampling.plugins.manager import build_registry
from zsampling.runs.config import config_schema, load_config
from zsampling.runs.run import execute

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "zsampling-self-recurrence"


def test_builtins_come_through_the_hooks() -> None:
    registry = build_registry(entry_points=False)
    builtin = registry.plugins[0]
    assert (builtin.name, builtin.source, builtin.error) == ("zsampling", "built-in", None)
    assert registry.names("sampler") == [
        "asymmetry-zigzag",
        "implicit-zigzag",
        "restart",
        "standard",
        "w2sd",
        "z2",
        "zigzag",
    ]
    assert registry.names("solver") == [
        "ddim", "ddpm", "deis", "dpm2", "dpm2-ancestral", "dpmpp-2m", "dpmpp-2m-sde",
        "dpmpp-2s", "dpmpp-2s-ancestral", "dpmpp-3m-sde", "dpmpp-sde", "er-sde", "euler",
        "euler-ancestral", "gradient-estimation", "heun", "ipndm", "lcm", "lms",
        "res-multistep", "unipc",
    ]  # fmt: skip
    assert {c.kind for c in builtin.components} == {
        "adapter",
        "schedule",
        "solver",
        "guider",
        "sampler",
        "patch",
        "observer",
        "metric",
        "verifier",
        "search",
    }


class Echo(BaseModel):
    name: ClassVar[str] = "echo"

    def sample(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return x


def registering(hook: str, *components: type) -> Any:
    """A plugin object whose one hook ``hook`` registers ``components``."""

    def impl(register: Any) -> None:
        for component in components:
            register(component)

    impl.__name__ = hook
    return SimpleNamespace(**{hook: hookimpl(impl)})


class Raising:
    @hookimpl
    def zsampling_register_schedules(self, register: Any) -> None:
        raise RuntimeError("boom")


class NotPydantic:
    @hookimpl
    def zsampling_register_solvers(self, register: Any) -> None:
        register(dict)


def test_in_process_plugin_and_misbehaving_ones() -> None:
    registry = build_registry(
        [
            ("mine", registering("zsampling_register_samplers", Echo)),
            ("dup", registering("zsampling_register_samplers", Echo)),
            ("raising", Raising()),
            ("bad", NotPydantic()),
        ],
        entry_points=False,
    )
    assert registry.get("sampler", "echo").plugin == "mine"
    errors = {p.name: p.error for p in registry.plugins}
    assert errors["mine"] is None
    assert errors["dup"] == (
        "plugin 'dup' (zsampling_register_samplers): sampler 'echo' is already registered by "
        "plugin 'mine'"
    )
    assert errors["raising"] == (
        "plugin 'raising' hook zsampling_register_schedules raised RuntimeError: boom"
    )
    assert "not a pydantic model class" in (errors["bad"] or "")
    assert registry.names("sampler") == [
        "asymmetry-zigzag",
        "echo",
        "implicit-zigzag",
        "restart",
        "standard",
        "w2sd",
        "z2",
        "zigzag",
    ]


class WrongSignature(BaseModel):
    name: ClassVar[str] = "wrong-signature"

    def sample(self, x: torch.Tensor) -> torch.Tensor:  # no path: cannot be a sampler
        return x


class MissingMethod(BaseModel):
    name: ClassVar[str] = "no-sigmas"
    steps: int = 5


class ExtraRequired(BaseModel):
    name: ClassVar[str] = "extra-required"

    def step(self, x: Any, pred: Any, src: Any, dst: Any, history: Any, more: Any) -> Any:
        return x


def test_components_are_checked_against_their_protocol_at_registration() -> None:
    """A plugin whose class does not fit its kind's protocol is named at start-up, with what the
    protocol expects; the built-ins (checked the same way) all pass."""
    registry = build_registry(
        [
            ("misshapen", registering("zsampling_register_samplers", WrongSignature)),
            ("no-sigmas", registering("zsampling_register_schedules", MissingMethod)),
            ("too-many", registering("zsampling_register_solvers", ExtraRequired)),
        ],
        entry_points=False,
    )
    errors = {p.name: p.error for p in registry.plugins}
    assert errors["zsampling"] is None
    assert "sampler 'wrong-signature' method sample() takes (self, x" in (errors["misshapen"] or "")
    assert "expected (self, x, path)" in (errors["misshapen"] or "")
    assert "schedule 'no-sigmas' has no method sigmas()" in (errors["no-sigmas"] or "")
    assert "expected (self, x, pred, src, dst, history)" in (errors["too-many"] or "")
    assert "wrong-signature" not in registry.names("sampler")


def test_a_renamed_component_answers_to_its_old_name(tmp_path: Path) -> None:
    """``ays`` was renamed ``align-your-steps``: old configs validate, resolved to the new name."""
    registry = build_registry(entry_points=False)
    assert registry.get("schedule", "ays") is registry.get("schedule", "align-your-steps")
    config = tmp_path / "old.toml"
    config.write_text(
        '[model]\nuse = "analytic"\n[schedule]\nuse = "ays"\nsteps = 6\n'
        '[sampler]\nuse = "standard"\n[run]\nprompts = ["red"]\n'
    )
    resolved = load_config(config, registry).as_dict()
    assert resolved["schedule"] == {"use": "align-your-steps", "steps": 6, "model": "auto"}
    names = config_schema(registry)["$defs"]["schedule.align-your-steps"]["properties"]["use"]
    assert names == {"enum": ["align-your-steps", "ays"]}


def test_cli_run_equals_python_run(tmp_path: Path) -> None:
    config = ROOT / "examples" / "analytic-zigzag.toml"
    cli_out, py_out = tmp_path / "cli", tmp_path / "py"
    result = CliRunner().invoke(app, ["run", str(config), "--set", f"run.output={cli_out}", "-q"])
    assert result.exit_code == 0, result.output
    cfg = load_config(config, build_registry(entry_points=False), [f"run.output={py_out}"])
    assert [type(p).__name__ for p in cfg.model.patches] == ["DynamicThreshold"]
    results = execute(cfg)
    assert len(results) == 9
    for r in results:
        assert r.path is not None
        from_cli = load_file(str(cli_out / r.path.name))["sample"]
        assert r.latents is not None
        assert torch.equal(from_cli, r.latents[0])
        assert r.metrics["class-posterior"] > 0.5
    manifest = [json.loads(line) for line in (cli_out / "manifest.jsonl").read_text().splitlines()]
    assert [m["seed"] for m in manifest] == [0, 1, 2] * 3
    assert manifest[0]["config"]["sampler"] == {
        "use": "zigzag",
        "guidance": 2.0,
        "inversion_guidance": 0.0,
        "zigzag_steps": None,
        "rounds": 1,
        "inversion": "source",
    }
    again = CliRunner().invoke(app, ["run", str(config), "--set", f"run.output={cli_out}", "-q"])
    assert "0 generated, 9 kept" in " ".join(again.output.split())


def test_schema_covers_every_component() -> None:
    result = CliRunner().invoke(app, ["schema"])
    schema = json.loads(result.output)
    assert schema["required"] == ["model", "sampler", "run"]
    refs = [o["$ref"] for o in schema["properties"]["sampler"]["oneOf"]]
    assert "#/$defs/sampler.zigzag" in refs
    zig = schema["$defs"]["sampler.zigzag"]
    assert zig["properties"]["inversion"]["enum"] == ["official", "target", "source"]
    assert zig["properties"]["inversion_guidance"]["minimum"] == 0
    assert schema == config_schema(build_registry(entry_points=False))


def test_step_log_observer_and_w2sd_from_config(tmp_path: Path) -> None:
    path = tmp_path / "w2sd.yaml"
    path.write_text(
        "model: {use: analytic}\n"
        "models: {weak: {use: analytic, variance: 1.2}}\n"
        "schedule: {use: uniform, steps: 6}\n"
        "sampler: {use: w2sd, guidance: 2.0}\n"
        "observers: [{use: step-log}]\n"
        f"run: {{prompts: [green], seeds: [5], output: '{tmp_path / 'out'}'}}\n"
    )
    result = CliRunner().invoke(app, ["run", str(path), "-q"])
    assert result.exit_code == 0, result.output
    [log] = (tmp_path / "out").glob("green-*-seed5-w2sd-*.steps.jsonl")
    rows = [json.loads(x) for x in log.open()]
    assert [r["kind"] for r in rows[:3]] == ["denoise", "invert", "denoise"]
    assert [r["model"] for r in rows[:3]] == ["main", "weak", "main"]
    assert len(rows) == 6 + 2 * 5


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return env


def test_broken_entry_point_is_reported_and_the_rest_work(tmp_path: Path) -> None:
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[zsampling]\nbroken = no_such_module_zs\n")
    out = subprocess.run(
        [sys.executable, "-m", "zsampling", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        check=True,
    )
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["broken"]["version"] == "1.0"
    assert plugins["broken"]["error"].startswith(
        "import failed: ModuleNotFoundError: No module named 'no_such_module_zs'"
    )
    assert plugins["zsampling"]["error"] is None


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin really pip-installed (into a target folder put on PYTHONPATH)."""
    return pip_install(EXAMPLE, tmp_path_factory.mktemp("example") / "site")


def test_third_party_sampler_found_via_entry_point(installed_example: Path, tmp_path: Path) -> None:
    env = _env(installed_example)
    listing = subprocess.run(
        [sys.executable, "-m", "zsampling", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    mine = plugins["self-recurrence"]
    assert mine["error"] is None
    assert mine["version"] == "0.1.0"
    assert "zsampling-self-recurrence" in mine["source"]
    [component] = mine["components"]
    assert (component["kind"], component["name"]) == ("sampler", "self-recurrence")
    assert set(component["settings"]["properties"]) == {"guidance", "repeats", "recurrent_steps"}

    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "zsampling",
            "run",
            str(ROOT / "examples" / "self-recurrence.toml"),
            "--set",
            f"run.output={out}",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert len(list(out.glob("*.safetensors"))) == 4
    manifest = [json.loads(x) for x in (out / "manifest.jsonl").open()]
    assert [(m["prompt"], m["seed"]) for m in manifest] == [
        ("red", 0),
        ("red", 1),
        ("blue", 0),
        ("blue", 1),
    ]
    for m in manifest:
        assert (out / m["file"]).exists()
        assert m["file"].endswith(".safetensors") and "-self-recurrence-" in m["file"]
        assert m["versions"]["self-recurrence"] == "0.1.0"
    assert manifest[0]["config"]["sampler"]["use"] == "self-recurrence"
    assert manifest[0]["config"]["solver"]["use"] == "dpmpp-2m"
    # 12 denoises + 4 recurrent steps x 2 repeats, each a 2-row guided call
    assert manifest[0]["evaluations"]["guided_calls"] == 12 + 4 * 2
    schema = subprocess.run(
        [sys.executable, "-m", "zsampling", "schema"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "sampler.self-recurrence" in json.loads(schema.stdout)["$defs"]


def test_zsampling_never_imports_the_example() -> None:
    for source in (ROOT / "zsampling").rglob("*.py"):
        assert "zsampling_self_recurrence" not in source.read_text(), source
