"""Plugins are loaded and called through pluggy, one failing plugin never takes the others down.

Hooks go through ``pm.hook`` (so tryfirst/trylast, wrappers, blocking and tracing work as in any
pluggy application) while every registration and every error is attributed to its plugin.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pluggy
import pytest
import torch
from pydantic import BaseModel, model_validator

from zsampling.plugins import hookimpl, manager
from zsampling.plugins.manager import build_registry
from zsampling.plugins.registry import Registry


def sampler_class(name: str) -> type[BaseModel]:
    """A minimal valid sampler component named ``name``."""

    def sample(self: Any, x: torch.Tensor, path: Any) -> torch.Tensor:
        return x

    return type(
        f"Sampler_{name.replace('-', '_')}",
        (BaseModel,),
        {"__annotations__": {"name": ClassVar[str]}, "name": name, "sample": sample},
    )


class Registers:
    """A plugin registering samplers by name, recording when its hook ran."""

    def __init__(self, *names: str, log: list[str] | None = None) -> None:
        self.classes = [sampler_class(n) for n in names]
        self.log = log if log is not None else []

    @hookimpl
    def zsampling_register_samplers(self, register: Any) -> None:
        self.log.append(f"plain {self.classes[0].name}")  # type: ignore[attr-defined]
        for cls in self.classes:
            register(cls)


class First(Registers):
    @hookimpl(tryfirst=True)
    def zsampling_register_samplers(self, register: Any) -> None:
        super().zsampling_register_samplers(register)


class Last(Registers):
    @hookimpl(trylast=True)
    def zsampling_register_samplers(self, register: Any) -> None:
        super().zsampling_register_samplers(register)


def samplers(registry: Registry) -> list[str]:
    """Sampler names in registration order."""
    return list(registry.components["sampler"])


def errors(registry: Registry) -> dict[str, str | None]:
    return {p.name: p.error for p in registry.plugins}


def test_tryfirst_registers_first_and_trylast_last() -> None:
    """Plain implementations run in load order (built-ins first); ``tryfirst`` before all of
    them, ``trylast`` after; the first to claim a name keeps it."""
    registry = build_registry(
        [
            ("late", Last("late-one")),
            ("plain", Registers("plain-one")),
            ("loser", Registers("loser-one", "claimed")),
            ("early", First("early-one", "claimed")),
        ],
        entry_points=False,
    )
    names = samplers(registry)
    assert names[0] == "early-one"
    assert names[-1] == "late-one"
    assert names.index("zigzag") < names.index("plain-one")
    assert registry.get("sampler", "claimed").plugin == "early"
    assert "already registered by plugin 'early'" in (errors(registry)["loser"] or "")
    assert "loser-one" not in names
    assert errors(registry)["zsampling"] is None


class Wraps:
    """A new-style hook wrapper around every sampler registration, registering one itself."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    @hookimpl(wrapper=True)
    def zsampling_register_samplers(self, register: Any) -> Generator[None, Any, Any]:
        self.log.append("wrapper before")
        result = yield
        self.log.append("wrapper after")
        register(sampler_class("from-the-wrapper"))
        return result


class OldStyleWraps:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    @hookimpl(hookwrapper=True)
    def zsampling_register_samplers(self, register: Any) -> Generator[None, Any, None]:
        self.log.append("old wrapper before")
        outcome = yield
        self.log.append(f"old wrapper after ({type(outcome).__name__})")


def test_wrappers_wrap_the_whole_hook_call_once() -> None:
    log: list[str] = []
    registry = build_registry(
        [
            ("a", Registers("a-one", log=log)),
            ("wraps", Wraps(log)),
            ("old", OldStyleWraps(log)),
            ("b", Registers("b-one", log=log)),
        ],
        entry_points=False,
    )
    assert log == [
        "wrapper before",
        "old wrapper before",
        "plain a-one",
        "plain b-one",
        "old wrapper after (Result)",
        "wrapper after",
    ]
    assert registry.get("sampler", "from-the-wrapper").plugin == "wraps"
    assert set(errors(registry).values()) == {None}


class BrokenWrapper:
    @hookimpl(wrapper=True)
    def zsampling_register_samplers(self, register: Any) -> Generator[None, Any, Any]:
        raise RuntimeError("wrapper setup failed")
        yield  # pragma: no cover


class BrokenTeardown:
    @hookimpl(wrapper=True)
    def zsampling_register_samplers(self, register: Any) -> Generator[None, Any, Any]:
        yield
        raise ValueError("teardown failed")


class NoYield:
    @hookimpl(wrapper=True)
    def zsampling_register_schedules(self, register: Any) -> Generator[None, Any, Any]:
        if register is None:  # pragma: no cover - never: a wrapper that forgets to yield
            yield


class SecondYield:
    @hookimpl(wrapper=True)
    def zsampling_register_samplers(self, register: Any) -> Generator[None, Any, Any]:
        result = yield
        yield
        return result


class NotAGenerator:
    @hookimpl(wrapper=True)
    def zsampling_register_schedules(self, register: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (BrokenWrapper(), "hook wrapper zsampling_register_samplers raised RuntimeError: wrapper"),
        (BrokenTeardown(), "hook wrapper zsampling_register_samplers raised ValueError: teardown"),
        (NoYield(), "wrapper zsampling_register_schedules raised RuntimeError: hook wrapper"),
        (NotAGenerator(), "registration failed: TypeError: zsampling_register_schedules is"),
        (SecondYield(), "wrapper zsampling_register_samplers raised RuntimeError: hook wrapper"),
    ],
    ids=["setup", "teardown", "no-yield", "not-a-generator", "second-yield"],
)
def test_a_failing_wrapper_is_named_and_the_others_still_register(
    plugin: Any, message: str
) -> None:
    log: list[str] = []
    registry = build_registry(
        [("a", Registers("a-one", log=log)), ("broken", plugin), ("b", Registers("b", log=log))],
        entry_points=False,
    )
    assert message in (errors(registry)["broken"] or "")
    assert {"a-one", "b", "zigzag"} <= set(samplers(registry))
    assert log.count("plain a-one") == 1 and log.count("plain b") == 1
    assert errors(registry)["a"] is None and errors(registry)["b"] is None


class Typo:
    @hookimpl
    def zsampling_register_sampler(self, register: Any) -> None:  # no such hook: a typo
        register(sampler_class("typo-sampler"))

    @hookimpl
    def zsampling_register_samplers(self, register: Any) -> None:
        register(sampler_class("typo-ok"))


class Optional:
    @hookimpl(optionalhook=True)
    def zsampling_register_widgets(self, register: Any) -> None:
        raise AssertionError("never called: no such hook")

    @hookimpl
    def zsampling_register_samplers(self, register: Any) -> None:
        register(sampler_class("optional-ok"))


def test_an_unknown_hook_name_fails_only_its_plugin() -> None:
    registry = build_registry(
        [("typo", Typo()), ("optional", Optional()), ("good", Registers("good-one"))],
        entry_points=False,
    )
    error = errors(registry)["typo"] or ""
    assert error.startswith("not loaded: zsampling_register_sampler is not a zsampling hook")
    assert "zsampling_register_samplers" in error and "optionalhook=True" in error
    assert "typo-ok" not in samplers(registry)
    assert errors(registry)["optional"] is None
    assert {"optional-ok", "good-one"} <= set(samplers(registry))


class HalfBroken:
    @hookimpl
    def zsampling_register_samplers(self, register: Any) -> None:
        register(sampler_class("half-good"))

    @hookimpl
    def zsampling_register_solvers(self, register: Any) -> None:
        raise SystemExit(3)


def test_a_failed_plugin_contributes_nothing() -> None:
    """Whatever a plugin registered before it failed is taken back: it is listed as failed, not
    half there; ``SystemExit`` from a hook is recorded, not obeyed."""
    registry = build_registry([("half", HalfBroken())], entry_points=False)
    assert errors(registry)["half"] == (
        "plugin 'half' hook zsampling_register_solvers raised SystemExit: 3"
    )
    assert "half-good" not in samplers(registry)
    assert registry.plugins[-1].components == []


def test_a_failed_plugins_names_are_free_for_a_later_plugin() -> None:
    """The half-broken plugin registers ``half-good`` and then fails in another hook: its name
    is released, so a later plugin registering it keeps it and runs (instead of being refused
    for a name that configs then call unknown)."""
    registry = build_registry(
        [("half", HalfBroken()), ("later", Registers("half-good", "later-own"))],
        entry_points=False,
    )
    assert errors(registry)["half"] is not None
    assert errors(registry)["later"] is None
    assert registry.get("sampler", "half-good").plugin == "later"
    assert [c.name for c in registry.plugins[-1].components] == ["half-good", "later-own"]


def test_a_plugin_refused_for_a_name_releases_its_others() -> None:
    """``b`` loses ``taken`` to ``a`` and fails: the name it registered first goes back too, so
    ``c`` (refused for it while ``b`` held it) keeps it."""
    registry = build_registry(
        [
            ("a", Registers("taken")),
            ("b", Registers("b-first", "taken")),
            ("c", Registers("b-first")),
        ],
        entry_points=False,
    )
    assert errors(registry)["b"] == (
        "plugin 'b' (zsampling_register_samplers): sampler 'taken' is already registered by "
        "plugin 'a'"
    )
    assert errors(registry)["c"] is None
    assert registry.get("sampler", "b-first").plugin == "c"


def test_register_outside_a_hook_is_refused() -> None:
    saved: list[Any] = []

    class Keeps:
        @hookimpl
        def zsampling_register_samplers(self, register: Any) -> None:
            saved.append(register)

    build_registry([("keeps", Keeps())], entry_points=False)
    with pytest.raises(Exception, match="called outside the hook"):
        saved[0](sampler_class("late"))


def test_blocking_and_tracing_through_a_prepared_plugin_manager() -> None:
    pm = pluggy.PluginManager("zsampling")
    pm.set_blocked("blocked")
    trace: list[str] = []
    pm.trace.root.setwriter(trace.append)
    pm.enable_tracing()
    registry = build_registry(
        [("blocked", Registers("blocked-one")), ("seen", Registers("seen-one"))],
        entry_points=False,
        plugin_manager=pm,
    )
    assert "blocked" not in errors(registry)
    assert "blocked-one" not in samplers(registry)
    assert "seen-one" in samplers(registry)
    text = "".join(trace)
    assert "zsampling_register_samplers" in text and "finish" in text


# --- entry points: a plugin package on disk, as pip would leave it ---------------------------


def write_plugin(site: Path, name: str, module_source: str) -> None:
    """A distribution ``name`` whose entry point is the module ``zsp_<name>`` in ``site``."""
    module = f"zsp_{name.replace('-', '_')}"
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[zsampling]\n{name} = {module}\n")


HOSTILE = {
    "exits": "raise SystemExit(7)\n",
    "base-exception": "class Weird(BaseException):\n    pass\nraise Weird('odd')\n",
    "typo": """
        from zsampling.plugins import hookimpl

        @hookimpl
        def zsampling_register_sampler(register):
            pass
    """,
    "raising": """
        from zsampling.plugins import hookimpl

        @hookimpl
        def zsampling_register_schedules(register):
            raise ValueError("bad [bold]markup[/bold]")
    """,
    "brackets": """
        from typing import ClassVar
        from pydantic import BaseModel
        from zsampling.plugins import hookimpl

        class Brackets(BaseModel):
            \"\"\"Keeps [red]tags[/red] and [1, 2] as typed.\"\"\"

            name: ClassVar[str] = "brackets"
            levels: list[int] = [1, 2]

            def sample(self, x, path):
                return x

        @hookimpl
        def zsampling_register_samplers(register):
            register(Brackets)
    """,
    "bad-args": """
        from zsampling.plugins import hookimpl

        @hookimpl
        def zsampling_register_samplers(register, extra):
            pass
    """,
}


@pytest.fixture
def hostile_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    for name, source in HOSTILE.items():
        write_plugin(site, name, source)
    return site


@pytest.fixture
def on_path(hostile_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(hostile_site))
    md_path = [str(hostile_site)]

    def entry_points(group: str) -> md.EntryPoints:
        dists = md.distributions(path=md_path)
        return md.EntryPoints(ep for d in dists for ep in d.entry_points if ep.group == group)

    monkeypatch.setattr(manager.md, "entry_points", entry_points)
    yield hostile_site
    for name in HOSTILE:
        sys.modules.pop(f"zsp_{name.replace('-', '_')}", None)


def test_every_kind_of_import_and_hook_failure_is_isolated(on_path: Path) -> None:
    registry = build_registry()
    found = errors(registry)
    assert found["exits"] == "import failed: SystemExit: 7"
    assert found["base-exception"] == "import failed: Weird: odd"
    assert (found["typo"] or "").startswith("not loaded: zsampling_register_sampler is not a")
    assert found["raising"] == (
        "plugin 'raising' hook zsampling_register_schedules raised ValueError: bad [bold]markup"
        "[/bold]"
    )
    assert "registration failed: PluginValidationError" in (found["bad-args"] or "")
    assert "'extra'" in (found["bad-args"] or "")
    assert found["zsampling"] is None
    assert "zigzag" in samplers(registry)


def test_keyboard_interrupt_at_import_is_not_swallowed(
    on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(on_path, "interrupted", "raise KeyboardInterrupt\n")
    try:
        with pytest.raises(KeyboardInterrupt):
            build_registry()
    finally:
        sys.modules.pop("zsp_interrupted", None)


def _zsampling(args: list[str], site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(site), environ.get("PYTHONPATH", "")])
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "zsampling", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
    )


def test_commands_keep_working_next_to_hostile_plugins(hostile_site: Path, tmp_path: Path) -> None:
    """From the command line: ``plugins`` names every broken plugin with its reason (markup in
    the reason shown as typed), ``check`` and ``run`` work, and a blocked plugin is not even
    imported."""
    listing = _zsampling(["plugins", "--json"], hostile_site)
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    assert plugins["exits"]["error"] == "import failed: SystemExit: 7"
    assert plugins["typo"]["error"].startswith("not loaded: zsampling_register_sampler")
    assert plugins["zsampling"]["error"] is None

    text = _zsampling(["plugins"], hostile_site, COLUMNS="400")
    assert text.returncode == 0, text.stderr
    assert "bad [bold]markup[/bold]" in text.stdout
    assert "Keeps [red]tags[/red] and [1, 2] as typed." in text.stdout
    assert "levels=[1, 2]" in text.stdout

    config = tmp_path / "run.toml"
    config.write_text(
        '[model]\nuse = "analytic"\n[schedule]\nuse = "karras"\nsteps = 4\n'
        '[sampler]\nuse = "zigzag"\nguidance = 3\n'
        f'[run]\nprompts = ["red"]\noutput = "{tmp_path / "out"}"\n'
    )
    check = _zsampling(["check", str(config)], hostile_site)
    assert check.returncode == 0, check.stderr
    run = _zsampling(["run", str(config), "-q"], hostile_site)
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "out").glob("*.safetensors"))) == 1

    blocked = _zsampling(["plugins", "--json"], hostile_site, ZSAMPLING_BLOCK_PLUGINS="exits, typo")
    names = {p["name"] for p in json.loads(blocked.stdout)}
    assert "exits" not in names and "typo" not in names and "raising" in names

    traced = _zsampling(["plugins", "--json"], hostile_site, ZSAMPLING_TRACE_PLUGINS="1")
    assert "zsampling_register_samplers" in traced.stderr


# --- a plugin's own checks become config errors (exit 2), naming it --------------------------


class PickySteps(BaseModel):
    name: ClassVar[str] = "picky"
    guidance: float = 2.0

    def check_steps(self, steps: int) -> int:
        raise ValueError(f"needs an even number of steps, not {steps}")

    def sample(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return x


class Fussy(BaseModel):
    name: ClassVar[str] = "fussy"

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, data: Any) -> Any:
        raise TypeError("settings must come as a [fussy] table")

    def sample(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return x


class Checks:
    @hookimpl
    def zsampling_register_samplers(self, register: Any) -> None:
        register(PickySteps)
        register(Fussy)


@pytest.mark.parametrize(
    ("sampler", "message"),
    [
        (
            "picky",
            "sampler: sampler 'picky' (plugin 'checks') raised ValueError: needs an even number "
            "of steps, not 5 (in check_steps)",
        ),
        (
            "fussy",
            "sampler: sampler 'fussy' (plugin 'checks') raised TypeError: settings must come as a "
            "[fussy] table (in settings validation)",
        ),
    ],
)
def test_a_plugins_own_check_is_a_config_error_naming_it(
    sampler: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from zsampling import cli

    registry = build_registry([("checks", Checks())], entry_points=False)
    monkeypatch.setattr(cli, "_registry", lambda: registry)
    config = tmp_path / "c.toml"
    config.write_text(
        '[model]\nuse = "analytic"\n[schedule]\nuse = "uniform"\nsteps = 5\n'
        f'[sampler]\nuse = "{sampler}"\n[run]\nprompts = ["red"]\n'
    )
    result = CliRunner().invoke(cli.app, ["check", str(config)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
