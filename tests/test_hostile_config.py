"""Hostile config text and values: refused with the file and the setting named, exit code 2,
before any model loads (or, for what only the model can answer, before the first output).

Each case is one file (and optional ``--set`` overrides) that a new user or an attacker might
write; the assertions are `hostile.Sandbox.refused`'s: exit code, one paragraph naming the culprit,
no traceback, no partial output, nothing written outside the output folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hostile import DIGITS_TOML, GOOD_TOML, Sandbox

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)
GOOD_YAML = """
model: {use: analytic}
schedule: {use: uniform, steps: 4}
sampler: {use: zigzag, guidance: 2.0}
run: {prompts: [red, green], seeds: [0, 1], output: "{out}"}
"""


def toml_with(section: str, body: str) -> str:
    """The good TOML config with one section's body replaced (``[run]`` keeps its output)."""
    if section == "run" and "output" not in body:
        body += 'output = "{out}"\n'
    blocks = GOOD_TOML.split("\n[")
    out = []
    for block in blocks:
        name = block.split("]", 1)[0]
        out.append(f"{name}]\n{body}" if name == section else block)
    return "\n[".join(out)


def yaml_with(line_key: str, line: str) -> str:
    return "\n".join(line if x.startswith(line_key) else x for x in GOOD_YAML.splitlines())


# (id, file name, content, expected fragments)
TEXT_CASES: list[tuple[str, str, str | bytes, tuple[str, ...]]] = [
    ("billion-laughs", "c.yaml", LAUGHS, ("expands (through aliases) to more than",)),
    (
        "laughs-into-prompts",
        "c.yaml",
        LAUGHS + GOOD_YAML.replace("prompts: [red, green]", "prompts: *i"),
        ("expands (through aliases)",),
    ),
    ("recursive-alias", "c.yaml", "a: &a [1, *a]\n", ("recursive alias",)),
    ("recursive-mapping", "c.yaml", "a: &a {b: *a}\n", ("recursive alias",)),
    ("deep-yaml-flow", "c.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n", ("a.0.0", "deeper")),
    ("deep-yaml-40", "c.yaml", "a: " + "[" * 40 + "]" * 40 + "\n", ("nested deeper than 32",)),
    (
        "deep-yaml-aliases",
        "c.yaml",
        "x0: &x0 [1]\n" + "".join(f"x{i}: &x{i} [*x{i - 1}]\n" for i in range(1, 40)),
        ("nested deeper than 32",),
    ),
    ("deep-toml-array", "c.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n", ("a.0.0", "deeper")),
    (
        "deep-toml-array-comment",
        "c.toml",
        "a = " + "[" * 5000 + " # ]\n" + "]" * 5000 + "\n",
        ("a.0.0", "deeper"),
    ),
    ("deep-toml-inline", "c.toml", "a = " + "{b = " * 3000 + "1" + "}" * 3000, ("a.b.b", "deeper")),
    ("deep-toml-40", "c.toml", "a = " + "[" * 40 + "]" * 40 + "\n", ("nested deeper than 32",)),
    ("latin1-toml", "c.toml", b'[run]\nprompts = ["caf\xe9"]\n', ("not UTF-8 text", "line 2")),
    ("latin1-yaml", "c.yaml", b"run: {prompts: [caf\xe9]}\n", ("not UTF-8 text",)),
    ("binary-junk", "c.toml", bytes(range(256)) * 4, ("not UTF-8 text",)),
    ("utf16", "c.toml", GOOD_TOML.encode("utf-16"), ("not UTF-8 text",)),
    ("too-big", "c.toml", "# " + "x" * (4 << 20) + "\n", ("larger than 4 MiB",)),
    ("yaml-duplicate-top", "c.yaml", GOOD_YAML + "sampler: {use: standard}\n", ("given twice",)),
    (
        "yaml-duplicate-nested",
        "c.yaml",
        GOOD_YAML.replace("guidance: 2.0}", "guidance: 2.0, guidance: 9.0}"),
        ("sampler.guidance: given twice",),
    ),
    (
        "yaml-duplicate-block",
        "c.yaml",
        "model:\n  use: analytic\n  use: digits\n",
        ("model.use: given twice (lines 2 and 3)",),
    ),
    (
        "toml-duplicate-key",
        "c.toml",
        GOOD_TOML + "\n[model]\nuse = 'digits'\n",
        ("not valid TOML",),
    ),
    (
        "toml-duplicate-setting",
        "c.toml",
        toml_with("sampler", 'use = "zigzag"\nguidance = 1.0\nguidance = 2.0\n'),
        ("not valid TOML",),
    ),
    (
        "yaml-timestamp",
        "c.yaml",
        GOOD_YAML.replace("prompts: [red, green]", "prompts: [2024-01-01]"),
        ("run.prompts.0", "a date", "quote it"),
    ),
    (
        "yaml-datetime",
        "c.yaml",
        GOOD_YAML.replace("seeds: [0, 1]", "seeds: [2001-12-14t21:59:43.10-05:00]"),
        ("run.seeds.0", "date and time"),
    ),
    ("toml-date", "c.toml", toml_with("run", "prompts = [1979-05-27]\n"), ("run.prompts.0",)),
    (
        "toml-datetime",
        "c.toml",
        toml_with("run", 'prompts = ["red"]\nseeds = [1979-05-27T07:32:00Z]\n'),
        ("run.seeds.0", "date and time"),
    ),
    ("toml-time", "c.toml", toml_with("sampler", "use = 07:32:00\n"), ("sampler.use", "a time")),
    (
        "yaml-binary",
        "c.yaml",
        GOOD_YAML.replace("prompts: [red, green]", "prompts: [!!binary aGVsbG8=]"),
        ("run.prompts.0", "binary data"),
    ),
    (
        "yaml-set",
        "c.yaml",
        GOOD_YAML.replace("prompts: [red, green]", "prompts: !!set {red, green}"),
        ("run.prompts", "a set"),
    ),
    ("yaml-int-key", "c.yaml", GOOD_YAML + "7: x\n", ("the key 7 is not text",)),
    ("yaml-null-key", "c.yaml", GOOD_YAML + "~: x\n", ("the key None is not text",)),
    ("yaml-unhashable-key", "c.yaml", "? [a, b]\n: 1\n", ("not valid YAML",)),
    ("yaml-python-apply", "c.yaml", "x: !!python/object/apply:os.system ['touch PWNED']\n", ()),
    ("yaml-python-name", "c.yaml", "x: !!python/name:os.system\n", ("not valid YAML",)),
    ("yaml-python-module", "c.yaml", "x: !!python/module:os\n", ("not valid YAML",)),
    ("yaml-python-new", "c.yaml", "x: !!python/object/new:subprocess.Popen [[touch, PWNED]]\n", ()),
    (
        "toml-huge-int",
        "c.toml",
        toml_with("run", 'prompts = ["red"]\nseeds = [' + "9" * 5000 + "]\n"),
        ("run.seeds.0", "more than 4300 digits"),
    ),
    (
        "yaml-huge-int",
        "c.yaml",
        GOOD_YAML.replace("seeds: [0, 1]", "seeds: [" + "9" * 5000 + "]"),
        ("run.seeds.0", "more than 4300 digits"),
    ),
    (
        "toml-seeds-too-deep",
        "c.toml",
        toml_with("run", 'prompts = ["red"]\nseeds = ' + "[" * 3000 + "]" * 3000 + "\n"),
        ("run.seeds.0.0", "nested deeper than 32"),
    ),
    (
        "yaml-seeds-too-deep",
        "c.yaml",
        GOOD_YAML.replace("seeds: [0, 1]", "seeds: " + "[" * 3000 + "]" * 3000),
        ("run.seeds.0.0", "nested deeper than 32"),
    ),
    (
        "toml-40-digit-seed",
        "c.toml",
        toml_with("run", 'prompts = ["red"]\nseeds = [' + "9" * 40 + "]\n"),
        ("run.seeds.0", "less than or equal to 18446744073709551615"),
    ),
    (
        "toml-nan",
        "c.toml",
        toml_with("sampler", 'use = "zigzag"\nguidance = nan\n'),
        ("sampler.guidance", "not a finite number"),
    ),
    (
        "toml-inf",
        "c.toml",
        toml_with("sampler", 'use = "zigzag"\nguidance = inf\n'),
        ("sampler.guidance", "inf is not a finite number"),
    ),
    (
        "yaml-inf",
        "c.yaml",
        GOOD_YAML.replace("guidance: 2.0", "guidance: .inf"),
        ("sampler.guidance", "not a finite number"),
    ),
    (
        "yaml-nan-variance",
        "c.yaml",
        GOOD_YAML.replace("{use: analytic}", "{use: analytic, variance: .nan}"),
        ("model.variance",),
    ),
    ("empty-yaml", "c.yaml", "", ("the top level must be a table",)),
    ("yaml-null", "c.yaml", "~\n", ("the top level must be a table",)),
    ("yaml-scalar", "c.yaml", "just text\n", ("the top level must be a table",)),
    ("yaml-two-documents", "c.yaml", GOOD_YAML + "---\n" + GOOD_YAML, ("not valid YAML",)),
    ("empty-toml", "c.toml", "", ("model: missing section",)),
    ("json-suffix", "c.json", "{}", ("expected a .toml, .yaml or .yml file",)),
    ("no-suffix", "config", GOOD_TOML, ("expected a .toml, .yaml or .yml file",)),
    (
        "long-key",
        "c.toml",
        GOOD_TOML + "\n[" + "k" * 100_000 + "]\n",
        ("unknown section",),
    ),
    (
        "control-chars-in-key",
        "c.toml",
        GOOD_TOML + '\n["\\u001b[31mred\\u001b[0m"]\n',
        ("\\x1b[31mred", "unknown section"),
    ),
    (
        "markup-in-key",
        "c.toml",
        GOOD_TOML + '\n["[bold red]boom[/]"]\n',
        ("[bold red]boom[/]: unknown section",),
    ),
    (
        "many-bad-seeds",
        "c.toml",
        toml_with("run", 'prompts = ["red"]\nseeds = [' + ", ".join(['"x"'] * 5000) + "]\n"),
        ("5000 problem(s)", "and 4980 more"),
    ),
    (
        "huge-value-in-message",
        "c.toml",
        toml_with("sampler", 'use = "zigzag"\nguidance = "' + "x" * 500_000 + '"\n'),
        ("sampler.guidance", "..."),
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [c[1:] for c in TEXT_CASES],
    ids=[c[0] for c in TEXT_CASES],
)
@pytest.mark.parametrize("command", ["run", "check"])
def test_hostile_config_text(
    tmp_path: Path, name: str, content: str | bytes, fragments: tuple[str, ...], command: str
) -> None:
    box = Sandbox(tmp_path)
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content.replace("{out}", str(box.out)), encoding="utf-8")
    start = time.perf_counter()
    box.refused([command, str(path)], 2, name, *fragments)
    assert time.perf_counter() - start < 20, "a hostile file must be refused quickly"
    assert not box.out.exists(), "nothing is created for a config that is refused"
    assert not (tmp_path / "PWNED").exists(), "a YAML tag ran code"


# (id, template, --set overrides, expected fragments): values the config file's syntax allows.
VALUE_CASES: list[tuple[str, str, list[str], tuple[str, ...]]] = [
    ("seed-2-64", GOOD_TOML, ["run.seeds=[18446744073709551616]"], ("run.seeds.0",)),
    ("seed-negative", GOOD_TOML, ["run.seeds=[-1]"], ("run.seeds.0", "greater than or equal to 0")),
    ("seed-float", GOOD_TOML, ["run.seeds=[0.5]"], ("run.seeds.0",)),
    ("seed-huge-override", GOOD_TOML, ["run.seeds=[" + "7" * 5000 + "]"], ("run.seeds",)),
    ("steps-1e9", GOOD_TOML, ["schedule.steps=1000000000"], ("schedule.steps", "10000")),
    (
        "karras-steps-1e9",
        GOOD_TOML,
        ['schedule={use = "karras", steps = 1000000000}'],
        ("schedule.steps", "less than or equal to 10000"),
    ),
    ("guidance-inf", GOOD_TOML, ["sampler.guidance=inf"], ("sampler.guidance", "finite")),
    ("guidance-minus-inf", GOOD_TOML, ["sampler.guidance=-inf"], ("sampler.guidance",)),
    ("guidance-nan", GOOD_TOML, ["sampler.guidance=nan"], ("sampler.guidance", "finite")),
    ("variance-inf", GOOD_TOML, ["model.variance=inf"], ("model.variance", "finite")),
    ("override-date", GOOD_TOML, ["run.prompts=[1979-05-27]"], ("run.prompts.0", "a date")),
    ("override-deep", GOOD_TOML, ["run.prompts=" + "[" * 3000 + "]" * 3000], ("run.prompts",)),
    ("restart-rho-inf", GOOD_TOML, ['schedule={use = "karras", rho = inf}'], ("schedule.rho",)),
    ("prompts-not-list", GOOD_TOML, ["run.prompts=5"], ("run.prompts",)),
    ("pairing-bogus", GOOD_TOML, ["run.pairing=diagonal"], ("run.pairing",)),
    ("output-not-text", GOOD_TOML, ["run.output=[1]"], ("run.output",)),
    ("models-not-table", GOOD_TOML, ["models=3"], ("models",)),
    ("observers-table", GOOD_TOML, ["observers={use = 'step-log'}"], ("observers",)),
    ("use-list", GOOD_TOML, ["sampler.use=[1, 2]"], ("sampler.use", "unknown sampler")),
    ("set-not-key", GOOD_TOML, ["=3"], ("--set",)),
    ("set-index-out", GOOD_TOML, ["run.prompts.99=x"], ("no list item 99",)),
]


@pytest.mark.parametrize(
    ("template", "overrides", "fragments"),
    [c[1:] for c in VALUE_CASES],
    ids=[c[0] for c in VALUE_CASES],
)
def test_hostile_config_values(
    tmp_path: Path, template: str, overrides: list[str], fragments: tuple[str, ...]
) -> None:
    box = Sandbox(tmp_path)
    config = box.config(template)
    args = ["run", str(config), "-q"]
    for o in overrides:
        args += ["--set", o]
    box.refused(args, 2, *fragments, absent=("model.path",))
    assert not box.out.exists()


def test_config_errors_come_before_the_folders(tmp_path: Path) -> None:
    """A config with errors of its own and a model folder that is not there: both in one
    message, the config's first; nothing loaded, nothing written."""
    box = Sandbox(tmp_path)
    args = ["run", str(box.config(DIGITS_TOML)), "-q"]
    args += ["--set", "model.path=/nonexistent/digits", "--set", "sampler.guidance=-1"]
    flat = box.refused(args, 2, "2 problem(s)", "sampler.guidance", "model.path", "no folder there")
    assert flat.index("sampler.guidance") < flat.index("model.path")
    assert not box.out.exists()


# Values only the loaded model can judge: refused in the check phase, before the first output.
MODEL_CASES: list[tuple[str, str, list[str], tuple[str, ...]]] = [
    ("guidance-1e300", GOOD_TOML, ["sampler.guidance=1e300"], ("sampler.guidance", "float32")),
    (
        "inversion-guidance-1e39",
        GOOD_TOML,
        ["sampler.inversion_guidance=1e39"],
        ("sampler.inversion_guidance", "float32"),
    ),
    ("prompt-unknown-class", GOOD_TOML, ['run.prompts=["red", "bogus"]'], ("run.prompts.1",)),
    (
        "prompt-superscript-two",
        GOOD_TOML,
        ['run.prompts=["red", "\u00b2"]'],
        ("run.prompts.1", "'\u00b2'", "a class of this model: red, green, blue"),
    ),
    (
        "prompt-5000-digits",
        GOOD_TOML,
        ['run.prompts=["' + "1" * 5000 + '"]'],
        ("run.prompts.0", "a class of this model"),
    ),
    (
        "negative-unknown-class",
        GOOD_TOML,
        ["run.negative_prompt=purple"],
        ("run.negative_prompt", "'purple'"),
    ),
    ("digits-bogus", DIGITS_TOML, ['run.prompts=["1", "bogus"]'], ("run.prompts.1", "a digit")),
    (
        "digits-many-bogus",
        DIGITS_TOML,
        ['run.prompts=["x", "1", "y", "z"]'],
        ("3 problem(s)", "run.prompts.0", "run.prompts.2", "run.prompts.3"),
    ),
    ("uniform-steps-2000", GOOD_TOML, ["schedule.steps=2000"], ("schedule.steps", "[1, 1000]")),
    ("device-cuda", DIGITS_TOML, ["model.device=cuda"], ("model.device", "'cuda'")),
    ("device-cuda-7", DIGITS_TOML, ["model.device=cuda:7"], ("model.device",)),
    ("device-nonsense", DIGITS_TOML, ["model.device=gpu please"], ("model.device", "not a torch")),
    ("device-meta", DIGITS_TOML, ["model.device=meta"], ("model.device",)),
    ("digits-folder-missing", DIGITS_TOML, ["model.path=/nonexistent"], ("model.path",)),
    ("karras-min-over-max", GOOD_TOML, ['schedule={use="karras", sigma_min=100.0}'], ("schedule",)),
]


@pytest.mark.parametrize(
    ("template", "overrides", "fragments"),
    [c[1:] for c in MODEL_CASES],
    ids=[c[0] for c in MODEL_CASES],
)
def test_checked_against_the_model_before_any_output(
    tmp_path: Path, template: str, overrides: list[str], fragments: tuple[str, ...]
) -> None:
    import torch

    if "cuda" in " ".join(overrides) and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    box = Sandbox(tmp_path)
    config = box.config(template)
    args = ["run", str(config), "-q"]
    for o in overrides:
        args += ["--set", o]
    box.refused(args, 2, *fragments)
    assert not (box.out / "manifest.jsonl").exists()


def test_yaml_merge_keys_and_small_aliases_still_work(tmp_path: Path) -> None:
    """Positive control: the checks refuse abuse, not YAML's features (anchors, aliases, merge
    keys) nor quoted text that looks like a date."""
    box = Sandbox(tmp_path)
    config = box.config(
        "model: &main {use: analytic}\n"
        "models:\n  weak: {<<: *main, variance: 0.5}\n"
        "schedule: {use: uniform, steps: 4}\n"
        "sampler: {use: w2sd, guidance: 2.0}\n"
        'run: {prompts: [red, "2024-01-01"], seeds: &s [0, 1], output: "{out}"}\n',
        "c.yaml",
    )
    result = box.invoke(["check", str(config)])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert '"variance": 0.5' in flat and '"2024-01-01"' in flat


def test_ten_thousand_prompts_are_not_too_many(tmp_path: Path) -> None:
    """Positive control: the size limits sit far above real configs."""
    box = Sandbox(tmp_path)
    prompts = ", ".join('"red"' for _ in range(10_000))
    config = box.config(
        toml_with("run", f'prompts = [{prompts}]\nseeds = [0]\noutput = "{{out}}"\n')
    )
    result = box.invoke(["check", str(config)])
    assert result.exit_code == 0, result.output[-2000:]


def test_a_duplicate_key_with_a_colon_is_named_whole() -> None:
    """The issue's path is the key as written, ``": "`` included (not split at it)."""
    from zsampling.runs.config_text import parse
    from zsampling.runs.issues import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse('model:\n  "a: b": 1\n  "a: b": 2\n', ".yaml", "c.yaml")
    [issue] = caught.value.issues
    assert (issue.path, issue.message) == (
        "model.a: b",
        "given twice (lines 2 and 3); YAML keys must be unique",
    )
