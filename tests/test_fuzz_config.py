"""Property-based fuzzing of the config loader and CLI overrides: every rejection names a field,
nothing else ever escapes (no traceback)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import tomllib
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from zsampling.cli import app
from zsampling.plugins.manager import build_registry
from zsampling.runs.config import (
    SECTIONS,
    ConfigError,
    apply_overrides,
    read_config,
    validate_config,
)
from zsampling.runs.issues import SHOWN_ISSUES

REGISTRY = build_registry(entry_points=False)
FIELDS = sorted(
    {f for kind in REGISTRY.components.values() for c in kind.values() for f in c.cls.model_fields}
    | {"prompts", "seeds", "output", "pairing", "use"}
)
NAMES = sorted({n for kind in REGISTRY.components.values() for n in kind})
GOOD: dict[str, Any] = {
    "model": {"use": "analytic"},
    "schedule": {"use": "uniform", "steps": 6},
    "sampler": {"use": "zigzag", "guidance": 2.0},
    "run": {"prompts": ["red"], "seeds": [0], "output": "/tmp/zs-fuzz-never-written"},
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(NAMES)
)
junk = st.recursive(
    scalars,
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(FIELDS), c, max_size=3)
    ),
    max_leaves=8,
)
section = st.one_of(
    junk,
    st.fixed_dictionaries(
        {"use": st.sampled_from(NAMES) | junk}, optional={f: junk for f in FIELDS[:12]}
    ),
    st.dictionaries(st.sampled_from(FIELDS), junk, max_size=4),
)
config_data = st.dictionaries(
    st.sampled_from([*SECTIONS, "other", "patches"]), section, max_size=6
).map(lambda d: {**GOOD, **d})


def fuzz(examples: int) -> settings:
    """Deterministic (derandomized) so CI runs the same examples every time."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


def check_rejection(err: ConfigError) -> None:
    assert err.issues, "a ConfigError with no issue"
    for issue in err.issues:
        assert issue.path and issue.message
    for issue in err.issues[:SHOWN_ISSUES]:  # the message lists the first ones, then a count
        assert issue.path in str(err)
    more = len(err.issues) - SHOWN_ISSUES
    assert (f"and {more} more" in str(err)) == (more > 0)


def test_fuzz_config_data() -> None:
    counts: Counter[str] = Counter()

    @fuzz(500)
    @given(config_data)
    def run(data: dict[str, Any]) -> None:
        try:
            validate_config(data, REGISTRY)
            counts["accepted"] += 1
        except ConfigError as err:
            check_rejection(err)
            counts["rejected"] += 1

    run()
    print(counts)
    assert counts["accepted"] + counts["rejected"] >= 500
    assert counts["rejected"] > 100 and counts["accepted"] > 5, counts


VALID_PATHS = [
    "sampler.guidance",
    "sampler.inversion_guidance",
    "sampler.zigzag_steps",
    "sampler.rounds",
    "sampler.inversion",
    "schedule.steps",
    "schedule.spacing",
    "solver.use",
    "run.seeds",
    "run.prompts",
    "run.negative_prompt",
    "guider.use",
]
keys = st.sampled_from(VALID_PATHS) | st.lists(
    st.sampled_from([*SECTIONS, *FIELDS, "0", "1", "patches"]) | st.text(max_size=6),
    min_size=0,
    max_size=4,
).map(".".join)
values = st.sampled_from(
    [
        "1",
        "0",
        "3",
        "-1",
        "2.5",
        "true",
        "[1, 2]",
        "'x'",
        '"zigzag"',
        '"dpmpp-2m"',
        '"source"',
        '"red"',
        '["red", "blue"]',
        "{a = 1}",
        "nan",
        "inf",
        "[",
    ]
) | st.text(max_size=16)
override = st.one_of(st.builds(lambda k, v: f"{k}={v}", keys, values), st.text(max_size=20))


def test_fuzz_cli_overrides(tmp_path: Path) -> None:
    config = tmp_path / "good.toml"
    config.write_text(
        '[model]\nuse = "analytic"\n[schedule]\nuse = "uniform"\nsteps = 6\n'
        '[sampler]\nuse = "zigzag"\n'
        f'[run]\nprompts = ["red"]\nseeds = [0]\noutput = "{tmp_path / "never"}"\n'
    )
    counts: Counter[str] = Counter()

    @fuzz(500)
    @given(st.lists(override, min_size=1, max_size=2))
    def run(overrides: list[str]) -> None:
        args = ["check", str(config)]
        for o in overrides:
            args += ["--set", o]
        result = CliRunner().invoke(app, args)
        assert "Traceback" not in result.output
        if result.exit_code == 0:
            counts["accepted"] += 1
            return
        assert result.exit_code == 2, (overrides, result.output, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        counts["rejected"] += 1
        try:
            validate_config(apply_overrides(read_config(config), overrides), REGISTRY)
        except ConfigError as err:
            check_rejection(err)

    run()
    print(counts)
    assert counts["accepted"] + counts["rejected"] >= 500
    assert counts["rejected"] > 100 and counts["accepted"] > 10, counts
    assert not (tmp_path / "never").exists()


def test_fuzz_file_text(tmp_path: Path) -> None:
    counts: Counter[str] = Counter()

    @fuzz(300)
    @given(st.text(max_size=80), st.sampled_from([".toml", ".yaml"]))
    def run(text: str, suffix: str) -> None:
        path = tmp_path / f"c{suffix}"
        path.write_text(text)
        try:
            data = read_config(path)
            validate_config(data, REGISTRY)
            counts["accepted"] += 1
        except ConfigError as err:
            check_rejection(err)
            counts["rejected"] += 1

    run()
    print(counts)
    assert counts["rejected"] >= 290, counts


def test_toml_values_in_overrides_are_typed() -> None:
    data = apply_overrides(
        GOOD, ["sampler.guidance=3", "run.seeds=[1, 2]", "sampler.inversion=source"]
    )
    assert data["sampler"]["guidance"] == 3 and data["run"]["seeds"] == [1, 2]
    assert data["sampler"]["inversion"] == "source"
    assert tomllib.loads("a = 1")["a"] == 1


# -- Files: random TOML and YAML trees shaped by the schema, through the CLI ------------------


class HugeInt:
    """An integer past Python's 4,300-digit conversion limit, written as its digits."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


class Deep:
    """Lists nested ``depth`` deep (past the readers' limit of 32, and past recursion)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


def emit(value: Any, flavor: str) -> str:
    """``value`` as TOML or YAML flow text (the same inline syntax, each with its spellings)."""
    if isinstance(value, HugeInt):
        return "9" * value.digits
    if isinstance(value, Deep):
        return "[" * value.depth + "]" * value.depth
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null" if flavor == "yaml" else '""'
    if isinstance(value, float):
        if value != value:
            return "nan" if flavor == "toml" else ".nan"
        if value in (float("inf"), float("-inf")):
            sign = "-" if value < 0 else ""
            return f"{sign}inf" if flavor == "toml" else f"{sign}.inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, list):
        return "[" + ", ".join(emit(v, flavor) for v in value) + "]"
    sep = " = " if flavor == "toml" else ": "
    items = ", ".join(quoted(str(k)) + sep + emit(v, flavor) for k, v in value.items())
    return "{" + items + "}"


def quoted(text: str) -> str:
    """A double-quoted string both readers take: printable characters as they are, the others
    as ``\\u``/``\\U`` escapes (surrogates, which no file can hold, as U+FFFD)."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        elif ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and (code < 0x7F or code > 0xA0):
            out.append(ch)
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def document(data: dict[str, Any], flavor: str) -> str:
    sep = " = " if flavor == "toml" else ": "
    return "".join(f"{quoted(k)}{sep}{emit(v, flavor)}\n" for k, v in data.items())


hostile_leaf = st.sampled_from(
    [HugeInt(5000), HugeInt(4301), Deep(40), Deep(3000), "\u00b2", "\u202e", "", "9" * 5000]
)
leaf = scalars | hostile_leaf | st.integers(2**63, 2**70) | st.floats(allow_nan=True)


def component_of(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """A table naming a registered component of ``kind``, with some of its own settings (random
    values, sometimes the hostile ones) and now and then a key it does not have."""
    names = sorted(REGISTRY.components[kind])

    def table(name: str) -> st.SearchStrategy[dict[str, Any]]:
        fields = sorted(REGISTRY.components[kind][name].cls.model_fields) or ["steps"]
        settings_ = st.dictionaries(st.sampled_from([*fields, "bogus"]), leaf | junk, max_size=3)
        return settings_.map(lambda s: {"use": name, **s})

    return st.sampled_from(names).flatmap(table)


run_table = st.fixed_dictionaries(
    {
        "prompts": st.lists(st.sampled_from(["red", "green", "\u00b2", "0"]) | leaf, max_size=3)
        | leaf,
        "seeds": st.lists(st.integers(0, 2**64) | leaf, max_size=3) | leaf,
    },
    optional={"batch_size": leaf, "pairing": leaf, "negative_prompt": leaf},
)
schema_tree = st.fixed_dictionaries(
    {
        "model": component_of("adapter") | junk,
        "sampler": component_of("sampler"),
        "run": run_table,
    },
    optional={
        "schedule": component_of("schedule"),
        "solver": component_of("solver"),
        "guider": component_of("guider"),
        "observers": st.lists(component_of("observer"), max_size=1),
        "bogus": junk,
    },
)


FILE_EXAMPLES = int(os.environ.get("ZSAMPLING_FUZZ_FILES", "120"))


def test_fuzz_config_files_through_the_cli(tmp_path: Path) -> None:
    """Schema-shaped TOML and YAML files with hostile values (5,000-digit integers, nesting
    3,000 deep, '²'): ``zsampling check`` ends in exit 0 or exit 2, never a traceback, and
    every problem it reports names a setting's path, not only the file."""
    counts: Counter[str] = Counter()

    @settings(fuzz(FILE_EXAMPLES), phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(schema_tree, st.sampled_from(["toml", "yaml"]))
    def run(data: dict[str, Any], flavor: str) -> None:
        data["run"] = {**data["run"], "output": str(tmp_path / "never")}
        path = tmp_path / f"c.{flavor}"
        path.write_text(document(data, flavor), encoding="utf-8")
        result = CliRunner().invoke(app, ["check", str(path)])
        assert "Traceback" not in result.output, result.output
        assert isinstance(result.exception, SystemExit) or result.exit_code == 0
        if result.exit_code == 0:
            counts["accepted"] += 1
            return
        assert result.exit_code == 2, result.output
        counts["rejected"] += 1
        try:
            validate_config(read_config(path), REGISTRY, str(path))
        except ConfigError as err:
            check_rejection(err)
            assert all(i.path != str(path) for i in err.issues), err
            counts["issues"] += len(err.issues)

    run()
    print(counts)
    assert counts["accepted"] + counts["rejected"] >= FILE_EXAMPLES
    assert counts["rejected"] > FILE_EXAMPLES // 4 and counts["issues"] > counts["rejected"]
    assert not (tmp_path / "never").exists()
    for flavor in ("toml", "yaml"):  # the emitter writes files the readers take: a good one passes
        good = tmp_path / f"good.{flavor}"
        good.write_text(document(GOOD, flavor), encoding="utf-8")
        result = CliRunner().invoke(app, ["check", str(good)])
        assert result.exit_code == 0, result.output
