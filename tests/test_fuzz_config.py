"""Property-based fuzzing of the config loader and CLI overrides: every rejection names a field,
nothing else ever escapes (no traceback)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import tomllib
from hypothesis import HealthCheck, given, settings
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
