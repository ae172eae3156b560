"""Hostile plugins: a component that raises, returns the wrong thing, or exits is named (kind,
name and plugin) in one paragraph, before anything it touched is written; a core error never
blames a plugin; plugin text is shown as text.

The components below live in this module and are registered in-process as plugin
``hostile-plugin``; each has a ``fault`` setting that picks what goes wrong, so every case is the
good config plus ``--set`` overrides.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from hostile import Sandbox, cut_guider, plugin
from pydantic import BaseModel, model_validator

from zsampling.adapters.analytic import AnalyticAdapter, AnalyticModel
from zsampling.core.errors import InvalidArgument
from zsampling.core.prediction import Prediction
from zsampling.core.rules import GuidanceRule
from zsampling.plugins.manager import build_registry

PLUGIN = "plugin 'hostile-plugin'"

OUTPUTS = {
    "shape": lambda x: x[..., :1],
    "extra-row": lambda x: torch.cat([x, x]),
    "float16": lambda x: x.half(),
    "float64": lambda x: x.double(),
    "int": lambda x: x.long(),
    "nan": lambda x: x * float("nan"),
    "inf": lambda x: x + float("inf"),
    "none": lambda x: None,
    "list": lambda x: x.tolist(),
    "numpy": lambda x: x.numpy(),
}
RAISES: dict[str, tuple[type[BaseException], tuple[Any, ...]]] = {
    "value": (ValueError, ("my sampler's bad value",)),
    "key": (KeyError, ("missing",)),
    "runtime": (RuntimeError, ("CUDA kernel failed",)),
    "zero": (ZeroDivisionError, ("division by zero in my sampler",)),
    "exit": (SystemExit, (3,)),
    "recursion": (RecursionError, ("maximum recursion depth exceeded",)),
    "memory": (MemoryError, ()),
    "assert": (AssertionError, ("invariant broken",)),
    "import": (ImportError, ("No module named 'fancy_ext'",)),
    "notimplemented": (NotImplementedError, ("zag not written yet",)),
}


def fail_with(fault: str, prefix: str) -> None:
    """Raise a fresh exception of the kind ``fault`` names after ``prefix``, if it does."""
    kind = fault.removeprefix(prefix) if fault.startswith(prefix) else None
    if kind in RAISES:
        cls, args = RAISES[kind]
        raise cls(*args)


class Faulty(BaseModel):
    """A sampler that walks the standard route, then does what ``fault`` says."""

    name: ClassVar[str] = "faulty"
    fault: str = "nothing"

    @model_validator(mode="after")
    def _validate(self) -> Faulty:
        fail_with(self.fault, "settings-")
        return self

    def check_steps(self, steps: int) -> None:
        if self.fault == "check-invalid":
            raise InvalidArgument("sampler.fault", self.fault, "a fault the check lets through")
        fail_with(self.fault, "check-")

    def sample(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        fail_with(self.fault, "raise-")
        for i in range(path.steps):
            x = path.denoise(x, i, 2.0)
        return OUTPUTS[self.fault](x) if self.fault in OUTPUTS else x


class FaultyModel(AnalyticModel):
    """The analytic model with a ``fault`` in one of its methods."""

    fault = "nothing"

    def encode(self, prompts: Any, negative_prompts: Any = None) -> Any:
        if self.fault == "encode-invalid":
            raise InvalidArgument("prompt", prompts[0], "a prompt without vowels")
        fail_with(self.fault, "encode-")
        return super().encode(prompts, negative_prompts)

    def predict(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Prediction:
        pred = super().predict(x, sigma, cond)
        if self.fault == "predict-shape":
            return Prediction(torch.cat([pred.x0, pred.x0], -1), torch.cat([pred.eps] * 2, -1))
        if self.fault == "predict-rows":
            return Prediction(pred.x0[:1], pred.eps[:1])
        if self.fault == "predict-nan":
            return Prediction(pred.x0 * float("nan"), pred.eps)
        fail_with(self.fault, "predict-")
        return pred

    def decode(self, x: torch.Tensor) -> Any:
        if self.fault == "decode-type":
            return [object()]
        if self.fault == "decode-empty":
            return []
        fail_with(self.fault, "decode-")
        return x


class FaultyAdapter(AnalyticAdapter):
    """The analytic adapter, with a ``fault``."""

    name: ClassVar[str] = "faulty-analytic"
    fault: str = "nothing"

    def load(self) -> Any:
        fail_with(self.fault, "load-")
        if self.fault == "load-none":
            return None
        if self.fault == "load-object":
            return object()
        model = FaultyModel(self.mixture())
        model.fault = self.fault
        return model


class FaultyPatch(BaseModel):
    """A patch with a ``fault``."""

    name: ClassVar[str] = "faulty-patch"
    fault: str = "nothing"

    def apply(self, model: Any) -> Any:
        fail_with(self.fault, "apply-")
        return None if self.fault == "none" else model


class FaultyMetric(BaseModel):
    """A metric with a ``fault``."""

    name: ClassVar[str] = "faulty-metric"
    fault: str = "nothing"

    def score(self, model: Any, latents: torch.Tensor, prompts: list[str]) -> Any:
        fail_with(self.fault, "raise-")
        return {
            "nan": torch.full((len(prompts),), float("nan")),
            "inf": torch.full((len(prompts),), float("inf")),
            "empty": torch.tensor([]),
            "text": "high",
        }.get(self.fault, torch.zeros(len(prompts)))


class FaultyObserver(BaseModel):
    """An observer with a ``fault``: in ``bind`` or in the observer it returns."""

    name: ClassVar[str] = "faulty-observer"
    fault: str = "nothing"

    def bind(self, item: Any) -> Any:
        fail_with(self.fault, "bind-")

        def observe(event: Any) -> None:
            fail_with(self.fault, "call-")

        return observe


class FaultySchedule(BaseModel):
    """A schedule with a ``fault``."""

    name: ClassVar[str] = "faulty-schedule"
    steps: int = 4
    fault: str = "nothing"

    def sigmas(self, model: Any) -> torch.Tensor:
        fail_with(self.fault, "raise-")
        if self.fault == "increasing":
            return torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
        if self.fault == "nan":
            return torch.tensor([4.0, float("nan"), 1.0, 0.5, 0.0], dtype=torch.float64)
        if self.fault == "short":  # steps levels, not steps + 1
            return torch.tensor([14.0, 4.0, 1.0, 0.0], dtype=torch.float64)
        if self.fault == "flat":  # not strictly decreasing: a repeated level
            return torch.tensor([14.0, 4.0, 4.0, 0.3, 0.0], dtype=torch.float64)
        if self.fault == "float32":
            return torch.tensor([14.0, 4.0, 1.0, 0.3, 0.0], dtype=torch.float32)
        return torch.tensor([14.0, 4.0, 1.0, 0.3, 0.0], dtype=torch.float64)


class FaultyGuider(BaseModel):
    """A guider whose ``bind`` fails, or whose guided predictions are cut to ``fault``'s shape
    (``cut-1``: broadcasts against the latent; ``cut-0``: does not)."""

    name: ClassVar[str] = "faulty-guider"
    fault: str = "bind-runtime"

    def bind(self, model: Any, cond: Any, uncond: Any, counter: Any = None) -> Any:
        fail_with(self.fault, "bind-")
        if not self.fault.startswith("cut-"):
            raise AssertionError("unreachable")
        return cut_guider(model, cond, uncond, counter, int(self.fault[4:]))


class FaultyRule(GuidanceRule):
    """A guider written as a combine rule whose combine returns the wrong shape."""

    name: ClassVar[str] = "faulty-rule"
    cut: int = 0

    def combine(self, cond: torch.Tensor, uncond: torch.Tensor, call: Any) -> torch.Tensor:
        return (uncond + call.scale * (cond - uncond))[..., : self.cut]


PLUGIN_OBJECT = plugin(
    sampler=[Faulty],
    adapter=[FaultyAdapter],
    patch=[FaultyPatch],
    metric=[FaultyMetric],
    observer=[FaultyObserver],
    schedule=[FaultySchedule],
    guider=[FaultyGuider, FaultyRule],
)


@pytest.fixture
def hostile_registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    registry = build_registry([("hostile-plugin", PLUGIN_OBJECT)], entry_points=False)
    monkeypatch.setattr("zsampling.plugins.manager.default_registry", lambda: registry)
    return registry


SAMPLER = "sampler 'faulty' (plugin 'hostile-plugin')"
ADAPTER = "adapter 'faulty-analytic' (plugin 'hostile-plugin')"


def sampler(fault: str) -> list[str]:
    return [f'sampler={{use = "faulty", fault = "{fault}"}}']


def adapter(fault: str) -> list[str]:
    return [f'model={{use = "faulty-analytic", fault = "{fault}"}}']


# (id, overrides, exit code, fragments, fragments that must not appear)
CASES: list[tuple[str, list[str], int, tuple[str, ...], tuple[str, ...]]] = [
    *[
        (f"sampler-returns-{f}", sampler(f), 1, (SAMPLER, "returned"), ("sampler 'zigzag'",))
        for f in ("shape", "extra-row", "float16", "float64", "int", "list", "numpy", "none")
    ],
    *[(f"sampler-returns-{f}", sampler(f), 1, (SAMPLER, "non-finite"), ()) for f in ("nan", "inf")],
    *[
        (f"sampler-raise-{f}", sampler(f"raise-{f}"), 1, (SAMPLER, "failed while generating"), ())
        for f in ("value", "key", "runtime", "zero", "exit", "recursion", "assert", "import")
    ],
    (
        "sampler-raise-notimplemented",
        sampler("raise-notimplemented"),
        1,
        (SAMPLER, "NotImplementedError"),
        (),
    ),
    ("sampler-raise-memory", sampler("raise-memory"), 1, ("out of memory while generating",), ()),
    (
        "sampler-check-value",
        sampler("check-value"),
        2,
        (SAMPLER, "raised ValueError", "(in check_steps)"),
        (),
    ),
    (
        "sampler-check-runtime",
        sampler("check-runtime"),
        2,
        ("raised RuntimeError", "(in check_steps)"),
        (),
    ),
    ("sampler-check-exit", sampler("check-exit"), 2, (SAMPLER, "called sys.exit(3)"), ()),
    (
        "sampler-check-invalid",
        sampler("check-invalid"),
        2,
        ("sampler.fault", "the check lets through"),
        (),
    ),
    (
        "sampler-settings-runtime",
        sampler("settings-runtime"),
        2,
        (SAMPLER, "raised RuntimeError", "(in settings validation)"),
        (),
    ),
    (
        "sampler-settings-key",
        sampler("settings-key"),
        2,
        ("raised KeyError", "settings validation"),
        (),
    ),
    (
        "sampler-settings-value",
        sampler("settings-value"),
        2,
        ("sampler", "my sampler's bad value"),
        (),
    ),
    *[
        (
            f"adapter-load-{f}",
            adapter(f"load-{f}"),
            1,
            (ADAPTER, "failed while loading the model"),
            (),
        )
        for f in ("runtime", "exit", "import", "key", "assert")
    ],
    ("adapter-load-memory", adapter("load-memory"), 1, ("out of memory while loading",), ()),
    ("adapter-load-none", adapter("load-none"), 1, (ADAPTER, "not a model adapter"), ()),
    ("adapter-load-object", adapter("load-object"), 1, (ADAPTER, "lacks process"), ()),
    (
        "adapter-encode-runtime",
        adapter("encode-runtime"),
        1,
        (ADAPTER, "encoding the prompt 'red'"),
        (),
    ),
    (
        "adapter-encode-invalid",
        adapter("encode-invalid"),
        2,
        ("run.prompts.0", "without vowels"),
        (),
    ),
    (
        "adapter-predict-shape",
        adapter("predict-shape"),
        1,
        (ADAPTER, "predict() returned"),
        ("sampler 'zigzag'",),
    ),
    (
        "adapter-predict-rows",
        adapter("predict-rows"),
        1,
        (ADAPTER, "x0 is (1, 2); expected (8, 2)"),  # one batch of 4 items, both CFG branches
        (),
    ),
    (
        "adapter-predict-runtime",
        adapter("predict-runtime"),
        1,
        (ADAPTER, "RuntimeError"),
        ("sampler 'zigzag'",),
    ),
    (
        "adapter-predict-nan",
        adapter("predict-nan"),
        1,
        ("non-finite", "red", "sampler.guidance"),
        (),
    ),
    ("adapter-decode-runtime", adapter("decode-runtime"), 1, (ADAPTER, "decoding"), ()),
    ("adapter-decode-type", adapter("decode-type"), 1, (ADAPTER, "decode() gave a object"), ()),
    ("adapter-decode-empty", adapter("decode-empty"), 1, (ADAPTER, "IndexError"), ()),
    *[
        (
            f"patch-{f}",
            [f'model.patches=[{{use = "faulty-patch", fault = "{f}"}}]'],
            1,
            ("patch 'faulty-patch' (plugin 'hostile-plugin')", what),
            ("adapter 'analytic'",),
        )
        for f, what in (
            ("apply-runtime", "failed while applying a patch"),
            ("apply-exit", "sys.exit(3)"),
            ("none", "apply() returned a NoneType"),
        )
    ],
    *[
        (
            f"metric-{f}",
            [f'metrics=[{{use = "faulty-metric", fault = "{f}"}}]'],
            1,
            ("metric 'faulty-metric' (plugin 'hostile-plugin')", what),
            ("sampler 'zigzag'", "sampler 'faulty'"),
        )
        for f, what in (
            ("raise-runtime", "RuntimeError"),
            ("raise-zero", "ZeroDivisionError"),
            ("nan", "non-finite score nan"),
            ("inf", "non-finite score inf"),
            ("empty", "returned 0 score(s) for a batch of 4 items"),
            ("text", "ValueError"),
        )
    ],
    *[
        (
            f"observer-{f}",
            [f'observers=[{{use = "faulty-observer", fault = "{f}"}}]'],
            1,
            ("observer 'faulty-observer' (plugin 'hostile-plugin')", "RuntimeError"),
            ("sampler 'zigzag'",),
        )
        for f in ("bind-runtime", "call-runtime")
    ],
    (
        "schedule-raise",
        ['schedule={use = "faulty-schedule", fault = "raise-runtime"}'],
        1,
        ("schedule 'faulty-schedule' (plugin 'hostile-plugin')", "making the levels"),
        (),
    ),
    *[
        (
            f"schedule-{f}",
            [f'schedule={{use = "faulty-schedule", fault = "{f}"}}'],
            2,
            ("schedule 'faulty-schedule' (plugin 'hostile-plugin')", what),
            (),
        )
        for f, what in (
            ("increasing", "strictly decreasing"),
            ("flat", "strictly decreasing"),
            ("nan", "not NaN"),
            ("short", "gave 4 levels for 4 steps"),
            ("float32", "returned torch.float32 levels; a schedule gives a float64 tensor"),
        )
    ],
    (
        "guider-bind",
        ['guider={use = "faulty-guider"}'],
        1,
        ("guider 'faulty-guider' (plugin 'hostile-plugin')", "CUDA kernel failed"),
        ("sampler 'zigzag'",),
    ),
    *[
        (
            f"guider-returns-{what}",
            [f"guider={{{setting}}}"],
            1,
            (f"guider '{name}' (plugin 'hostile-plugin')", returned, "expected (4, 2)"),
            ("sampler 'zigzag'", "model 'main' ", "failed while"),
        )
        for what, name, setting, returned in (
            (
                "broadcasting-shape",
                "faulty-guider",
                'use = "faulty-guider", fault = "cut-1"',
                "returned a guided prediction whose x0 is (4, 1)",
            ),
            (
                "shape",
                "faulty-guider",
                'use = "faulty-guider", fault = "cut-0"',
                "returned a guided prediction whose x0 is (4, 0)",
            ),
            *[
                (
                    f"combine-{cut}",
                    "faulty-rule",
                    f'use = "faulty-rule", cut = {cut}',
                    f"combine() returned (4, {cut})",
                )
                for cut in (0, 1)
            ],
        )
    ],
    (
        "metric-blamed-not-sampler",
        [
            'sampler={use = "faulty", fault = "nothing"}',
            'metrics=[{use = "faulty-metric", fault = "raise-value"}]',
        ],
        1,
        ("metric 'faulty-metric'",),
        ("sampler 'faulty'",),
    ),
    (
        "sampler-blamed-not-metric",
        [
            'sampler={use = "faulty", fault = "raise-value"}',
            'metrics=[{use = "faulty-metric"}]',
        ],
        1,
        (SAMPLER,),
        ("metric",),
    ),
]


@pytest.mark.usefixtures("hostile_registry")
@pytest.mark.parametrize(
    ("overrides", "code", "names", "absent"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_hostile_plugin(
    tmp_path: Path,
    overrides: list[str],
    code: int,
    names: tuple[str, ...],
    absent: tuple[str, ...],
) -> None:
    box = Sandbox(tmp_path)
    config = box.good()
    args = ["run", str(config), "-q"]
    for o in overrides:
        args += ["--set", o]
    box.refused(args, code, *names, absent=absent)
    assert not (box.out / "manifest.jsonl").exists()


@pytest.mark.usefixtures("hostile_registry")
def test_the_traceback_is_there_when_asked_for(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    args = ["run", str(box.good()), "-q", "--set", 'sampler={use = "faulty", fault = "raise-key"}']
    plain = box.invoke(args)
    assert plain.exit_code == 1 and "Traceback" not in plain.output
    assert "run with --traceback to see where" in " ".join(plain.output.split())
    for before, after, env in (
        (["--traceback"], [], {}),
        ([], ["--traceback"], {}),  # after the command, where users type it
        ([], [], {"ZSAMPLING_TRACEBACK": "1"}),
    ):
        shown = box.invoke([*before, *args, *after], env=env)
        assert shown.exit_code == 1
        assert "Traceback (most recent call last)" in shown.output
        flat = " ".join(shown.output.split())  # the console wraps long frame lines
        assert "in sample" in flat and "test_hostile_plugins.py" in flat
        assert f"error: {SAMPLER} failed" in flat


@pytest.mark.usefixtures("hostile_registry")
def test_a_core_error_never_blames_an_unrelated_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin package named ``samplers`` is installed; zsampling's own zigzag fails inside
    zsampling/samplers/zigzag.py's call chain: the built-in is named, not the plugin."""
    package = tmp_path / "site" / "samplers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from typing import Any, ClassVar
            from pydantic import BaseModel
            from zsampling.plugins import hookimpl

            class Unrelated(BaseModel):
                name: ClassVar[str] = "unrelated"

                def sample(self, x: Any, path: Any) -> Any:
                    return x

            class Plugin:
                @hookimpl
                def zsampling_register_samplers(self, register: Any) -> None:
                    register(Unrelated)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    module = importlib.import_module("samplers")
    monkeypatch.setitem(sys.modules, "samplers", module)
    registry = build_registry([("samplers-plugin", module.Plugin())], entry_points=False)
    monkeypatch.setattr("zsampling.plugins.manager.default_registry", lambda: registry)
    # A core bug, raised from C code called by zsampling/core/path.py: no plugin frame at all.
    monkeypatch.setattr("zsampling.core.path.GuidanceContext", divmod)
    box = Sandbox(tmp_path)
    box.refused(
        ["run", str(box.good()), "-q"],
        1,
        "sampler 'zigzag' (built in) failed while generating",
        "TypeError",
        absent=("samplers-plugin", "unrelated"),
    )


class Loud(BaseModel):
    """[bold red]Loud[/] docs \x1b[2J with \u202e reversed text and [link=file:///etc]links[/]."""

    name: ClassVar[str] = "[red]loud[/]"

    def sample(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return x


class Unschemable(BaseModel):
    """A sampler pydantic cannot describe."""

    name: ClassVar[str] = "unschemable"

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise TypeError("cannot describe a callable field")

    def sample(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        return x


@pytest.mark.parametrize(
    "args", [["plugins"], ["plugins", "--json"], ["schema"]], ids=["table", "json", "schema"]
)
def test_plugin_text_is_shown_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """Rich markup in a plugin's names and docstrings is not interpreted, terminal controls are
    escaped, and a schema that fails is reported in place: the listing still works."""
    from rich.console import Console

    registry = build_registry(
        [("[blink]loud-plugin[/]", plugin(sampler=[Loud, Unschemable]))], entry_points=False
    )
    monkeypatch.setattr("zsampling.plugins.manager.default_registry", lambda: registry)
    monkeypatch.setattr("zsampling.cli.console", Console(width=1000))  # no wrapped cells
    result = Sandbox(tmp_path).invoke(args)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    flat = " ".join(result.output.split())
    if args == ["plugins"]:
        assert "[blink]loud-plugin[/]" in flat and "[red]loud[/]" in flat
        assert "[bold red]Loud[/] docs \\x1b[2J with \\u202e reversed" in flat
        assert "its settings schema failed: TypeError: cannot describe" in flat
    else:
        assert "cannot describe a callable field" in flat


def write_entry_points(site: Path, modules: dict[str, str], entries: dict[str, str]) -> None:
    """A distribution ``zsampling-evil`` on ``site`` with ``entries`` in group ``zsampling``."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / "zsampling_evil-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zsampling-evil\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[zsampling]\n{lines}")


EVIL = {
    "import-error": ("evil_import", "import nonexistent_module_for_zsampling_tests\n"),
    "system-exit": ("evil_exit", "raise SystemExit(1)\n"),
    "keyboard-free-exit": ("evil_exit0", "import sys\nsys.exit(0)\n"),
    "unknown-hook": (
        "evil_hook",
        """
        from zsampling.plugins import hookimpl

        class Plugin:
            @hookimpl
            def zsampling_register_bogus(self, register):
                pass

        plugin = Plugin()
        """,
    ),
}


@pytest.mark.parametrize("case", list(EVIL))
def test_a_broken_entry_point_is_listed_and_the_rest_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """An installed plugin that fails at import (of any kind, SystemExit included) or names an
    unknown hook: ``zsampling plugins`` lists it as failed and every other command works."""
    module, source = EVIL[case]
    site = tmp_path / "site"
    target = f"{module}:plugin" if case == "unknown-hook" else module
    write_entry_points(site, {module: source}, {case: target})
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setattr("zsampling.plugins.manager.default_registry", lambda: build_registry())
    box = Sandbox(tmp_path)
    listing = box.invoke(["plugins"])
    assert listing.exit_code == 0, listing.output
    flat = " ".join(listing.output.split())
    assert f"{case} ?" in flat or f"{case} 0.1" in flat, flat
    assert "FAILED" in flat
    checked = box.invoke(["check", str(box.good())])
    assert checked.exit_code == 0, checked.output
    ran = box.invoke(["run", str(box.good()), "-q"])
    assert ran.exit_code == 0, ran.output
    assert len(list(box.out.glob("*.safetensors"))) == 4
