"""Hostile command lines: every command's own options, tampered outputs for ``reproduce``, text
that tries to act on the terminal, and the error boundary every command runs inside."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from hostile import DIGITS_TOML, GOOD_TOML, Sandbox, plugin
from safetensors import safe_open
from safetensors.torch import save_file

from zsampling.adapters.analytic import AnalyticAdapter, AnalyticModel
from zsampling.plugins.manager import build_registry

EVAL_TOML = GOOD_TOML + '\n[[metrics]]\nuse = "class-posterior"\n[[metrics]]\nuse = "log-density"\n'


def a_file(box: Sandbox) -> str:
    path = box.root / "a-file"
    path.write_text("x")
    return str(path)


# (id, args (CONFIG, FILE replaced), fragments)
OPTION_CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    *[
        (f"eval-scales-{name}", ["eval", "CONFIG", "--scales", value], ("--scales", "finite"))
        for name, value in (
            ("nan", "1,nan"),
            ("inf", "inf"),
            ("negative", "1,-2"),
            ("words", "one,two"),
            ("empty", ","),
            ("huge", "1e400"),
        )
    ],
    ("eval-out-file", ["eval", "CONFIG", "--out", "FILE"], ("--out", "it is a file")),
    ("train-out-file", ["train-digits", "--out", "FILE"], ("--out", "it is a file")),
    ("train-out-under-file", ["train-digits", "--out", "FILE/x"], ("--out", "is not a folder")),
    ("train-seconds-inf", ["train-digits", "--seconds", "inf"], ("--seconds", "finite")),
    ("shapes-out-file", ["train-shapes", "--out", "FILE"], ("--out", "it is a file")),
    ("shapes-seconds-inf", ["train-shapes", "--seconds", "inf"], ("--seconds", "finite")),
    ("demo-out-file", ["demo", "--out", "FILE"], ("--out", "it is a file")),
    ("demo-guidance-inf", ["demo", "--guidance", "inf"], ("--guidance", "finite")),
    ("demo-model-bogus", ["demo", "--model", "[bold]x[/]"], ("--model", "'[bold]x[/]'")),
]


@pytest.mark.parametrize(
    ("args", "fragments"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES]
)
def test_hostile_options(tmp_path: Path, args: list[str], fragments: tuple[str, ...]) -> None:
    box = Sandbox(tmp_path)
    config = str(box.config(EVAL_TOML))
    file = a_file(box)
    args = [a.replace("CONFIG", config).replace("FILE", file) for a in args]
    box.refused(args, 2, *fragments)


@pytest.mark.parametrize(
    "args",
    [
        ["train-digits", "--seconds", "nan"],
        ["train-digits", "--seed", "-1"],
        ["train-shapes", "--unet-steps", "0"],
        ["demo", "--guidance", "nan"],
        ["demo", "--steps", "1"],
        ["run"],
        ["no-such-command"],
    ],
)
def test_usage_errors_are_typers_one_box(tmp_path: Path, args: list[str]) -> None:
    """What typer refuses while parsing (a range, a missing argument) is its usage box: exit 2,
    no traceback, nothing written."""
    box = Sandbox(tmp_path)
    result = box.invoke(args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Usage:" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def made(tmp_path: Path) -> tuple[Sandbox, Path]:
    """A sandbox with one genuine output to tamper with."""
    box = Sandbox(tmp_path)
    assert box.invoke(["run", str(box.good()), "-q"]).exit_code == 0
    return box, sorted(box.out.glob("red-*-seed1-*.safetensors"))[0]


def retag(path: Path, change: Any) -> Path:
    """Rewrite ``path``'s embedded settings through ``change`` (a function of the dict, or a
    string to store as is) into a new file next to it."""
    with safe_open(str(path), framework="pt") as fh:
        tensor, text = fh.get_tensor("sample"), fh.metadata()["zsampling"]
    if callable(change):
        meta = json.loads(text)
        change(meta)
        text = json.dumps(meta)
    elif isinstance(change, str):
        text = change
    target = path.with_name("tampered.safetensors")
    save_file({"sample": tensor}, str(target), metadata={"zsampling": text})
    return target


def set_key(key: str, value: Any) -> Any:
    def change(meta: dict[str, Any]) -> None:
        node = meta
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value

    return change


REPRODUCE_CASES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("seed-text", set_key("seed", "abc"), ("damaged", "seed")),
    ("seed-2-70", set_key("seed", 2**70), ("damaged", "seed")),
    ("seed-negative", set_key("seed", -5), ("damaged", "seed")),
    ("index-negative", set_key("index", -1), ("damaged", "index")),
    ("prompt-not-text", set_key("prompt", ["red"]), ("damaged", "prompt")),
    ("config-not-table", set_key("config", [1, 2]), ("damaged", "config")),
    ("run-not-table", set_key("config.run", 5), ("damaged", "config.run")),
    ("config-nan", set_key("config.sampler.guidance", float("nan")), ("not a finite number",)),
    ("config-unknown-sampler", set_key("config.sampler.use", "evil"), ("unknown sampler",)),
    (
        "config-dotted-use",
        set_key("config.sampler.use", "os.system"),
        ("unknown sampler 'os.system'",),
    ),
    ("config-extra-key", set_key("config.sampler.exec", "rm -rf /"), ("sampler.exec",)),
    ("prompt-not-a-class", set_key("prompt", "purple"), ("'purple'",)),
    ("no-settings", lambda m: m.clear(), ("carries no zsampling settings",)),
    ("not-json", "{not json", ("not a readable PNG or safetensors",)),
    ("deep-json", "[" * 100_000 + "]" * 100_000, ("not a readable PNG or safetensors",)),
]


@pytest.mark.parametrize(
    ("change", "fragments"),
    [c[1:] for c in REPRODUCE_CASES],
    ids=[c[0] for c in REPRODUCE_CASES],
)
def test_reproduce_refuses_tampered_settings(
    made: tuple[Sandbox, Path], change: Any, fragments: tuple[str, ...]
) -> None:
    box, output = made
    tampered = retag(output, change)
    box.refused(["reproduce", str(tampered)], 2, "tampered.safetensors", *fragments)
    assert not (box.out / "reproduced").exists() or not list(
        (box.out / "reproduced").glob("*.safetensors")
    )


@pytest.mark.parametrize(
    "kind", ["missing", "folder", "random-bytes", "png-without-settings", "out-is-file"]
)
def test_reproduce_refuses_what_is_not_an_output(made: tuple[Sandbox, Path], kind: str) -> None:
    box, output = made
    args = ["reproduce", str(output)]
    fragments: tuple[str, ...] = ("OUTPUT",)
    if kind == "missing":
        args = ["reproduce", str(box.root / "nope.png")]
    elif kind == "folder":
        args = ["reproduce", str(box.out)]
    elif kind == "random-bytes":
        (box.root / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
        args = ["reproduce", str(box.root / "junk.png")]
        fragments = ("not a readable PNG",)
    elif kind == "png-without-settings":
        from PIL import Image

        Image.new("L", (4, 4)).save(box.root / "plain.png")
        args = ["reproduce", str(box.root / "plain.png")]
        fragments = ("carries no zsampling settings",)
    else:
        args += ["--out", a_file(box)]
        fragments = ("--out", "it is a file")
    box.refused(args, 2, *fragments)


class AnyPrompt(AnalyticAdapter):
    """The analytic model taking any text as a prompt (class ``red``): for display tests."""

    name: ClassVar[str] = "any-prompt"

    def load(self) -> AnalyticModel:
        model = super().load()
        model.label = lambda prompt, field="prompt": 0  # type: ignore[method-assign]
        return model


NASTY_PROMPTS = [
    "\x1b[2J\x1b[31mcleared",
    "[bold red]markup[/] [link=https://example.com]x[/link]",
    "abc\u202edcba",
    "tab\there\rcarriage",
    "emoji 🐕‍🦺 ok",
]


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` (control characters as \\u escapes)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def test_prompts_print_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress bars and the summary table show prompts escaped: no terminal control acts, no
    markup is interpreted, ordinary text (emoji sequences included) is untouched."""
    from rich.console import Console

    registry = build_registry([("any", plugin(adapter=[AnyPrompt]))], entry_points=False)
    monkeypatch.setattr("zsampling.plugins.manager.default_registry", lambda: registry)
    monkeypatch.setattr("zsampling.cli.console", Console(width=400))
    box = Sandbox(tmp_path)
    prompts = ", ".join(toml_string(p) for p in NASTY_PROMPTS)
    config = box.config(
        GOOD_TOML.replace('use = "analytic"', 'use = "any-prompt"').replace(
            'prompts = ["red", "green"]', f"prompts = [{prompts}]"
        )
    )
    result = box.invoke(["run", str(config)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert not any(c in out for c in "\x1b\u202e\r\t"), repr(out)
    for shown in ("\\x1b[2J\\x1b[31mcleared", "[bold red]markup[/]", "abc\\u202edcba"):
        assert shown in out, shown
    assert "tab\\there\\rcarriage" in out and "emoji 🐕‍🦺 ok" in out
    assert len(list(box.out.glob("*.safetensors"))) == 10


def test_check_prints_json_without_raw_controls(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    config = box.good()
    result = box.invoke(["check", str(config), "--set", 'run.negative_prompt="\\u001b[2J\\u202e"'])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "\\u001b[2J\\u202e" in result.output


@pytest.mark.parametrize(
    "name", ["[bold]c.toml", "c\x1b[31m.toml", "c\u202e.toml"], ids=["markup", "ansi", "bidi"]
)
def test_file_names_print_as_text(tmp_path: Path, name: str) -> None:
    box = Sandbox(tmp_path)
    flat = box.refused(["run", str(tmp_path / name)], 2, "no such file")
    assert "[bold]c.toml" in flat or "\\x1b[31m" in flat or "\\u202e" in flat


# Every command runs inside the error boundary: an exception nobody expected (a bug) is exit 1
# and one paragraph naming the command, never a traceback.
BOUNDARY: list[tuple[str, str, list[str]]] = [
    ("run", "zsampling.cli._registry", ["run", "CONFIG"]),
    ("check", "zsampling.cli._registry", ["check", "CONFIG"]),
    ("plugins", "zsampling.cli._registry", ["plugins"]),
    ("schema", "zsampling.cli._registry", ["schema"]),
    ("eval", "zsampling.evaluation.evaluate.evaluate", ["eval", "CONFIG"]),
    ("demo", "zsampling.evaluation.demo.run_demo", ["demo", "--model", "analytic"]),
    ("train-digits", "zsampling.digits.train.train", ["train-digits", "--out", "OUT"]),
    ("reproduce", "zsampling.runs.run.execute", ["reproduce", "OUTPUT"]),
]


@pytest.mark.parametrize(
    ("target", "args"), [b[1:] for b in BOUNDARY], ids=[b[0] for b in BOUNDARY]
)
def test_every_command_has_the_error_boundary(
    made: tuple[Sandbox, Path], monkeypatch: pytest.MonkeyPatch, target: str, args: list[str]
) -> None:
    box, output = made

    def bug(*a: Any, **k: Any) -> Any:
        raise RuntimeError("an unexpected bug")

    monkeypatch.setattr(target, bug)
    config = str(box.config(EVAL_TOML, "eval.toml"))
    args = [
        a.replace("CONFIG", config)
        .replace("OUTPUT", str(output))
        .replace("OUT", str(box.out / "sub"))
        for a in args
    ]
    # eval runs components: its failures are blamed as a run's are (here: the built-in sampler)
    stage = "failed while evaluating" if args[0] == "eval" else f"zsampling {args[0]} failed"
    box.refused(args, 1, stage, "RuntimeError: an unexpected bug")


def test_a_keyboard_interrupt_is_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*a: Any, **k: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("zsampling.runs.run.sample", interrupted)
    box = Sandbox(tmp_path)
    box.refused(
        ["run", str(box.good()), "-q"],
        130,
        "stopped by SIGINT: 0 item(s) written by this run, 0 of 4 done",
        "Run the same command again to resume",
    )
    assert not list(box.out.glob("*.safetensors")) and not list(box.out.glob(".*"))


def test_sample_nan_is_named_with_the_guidance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NaN latents at run time (here: a model whose predictions overflow) are a failed run,
    exit 1, naming the step, the item and the guidance settings."""
    real = AnalyticModel.predict

    def overflowing(self: Any, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> Any:
        pred = real(self, x, sigma, cond)
        return type(pred)(pred.x0 * 1e38, pred.eps * 1e38)

    monkeypatch.setattr(AnalyticModel, "predict", overflowing)
    box = Sandbox(tmp_path)
    box.refused(
        ["run", str(box.good()), "-q", "--set", "sampler.guidance=30"],
        1,
        "non-finite",
        "step",
        "seed 0",
        "sampler.guidance = 30",
    )


STOPPED_DIGITS = (
    DIGITS_TOML.replace('"standard"', '"zigzag"')
    .replace("steps = 3", "steps = 8")
    .replace('prompts = ["1", "2"]', "prompts = " + json.dumps(list("0123456789")))
    + "batch_size = 1\n"
)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_under_quiet_prints_where_the_run_stopped(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """A real process, stopped mid-run under -q: exit 128 + signal, one line saying how many
    items were written and that a rerun resumes; every written output complete and recorded
    once, no temporary file; the same command then makes the rest and keeps what was written."""
    out = tmp_path / "out"
    config = tmp_path / "run.toml"
    config.write_text(STOPPED_DIGITS.format(out=out))
    cmd = [sys.executable, "-m", "zsampling", "run", str(config), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists() and manifest.read_text().count("\n") >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    text = " ".join(stderr.decode().split())
    assert proc.returncode == code, text
    written = sorted(p.name for p in out.glob("*.png"))
    assert 2 <= len(written) < 10, "the signal must land mid-run"
    assert f"error: stopped by {sig.name}: {len(written)} item(s) written by this run" in text
    assert f"{len(written)} of 10 done" in text and "Run the same command again" in text
    assert "Traceback" not in text and not stdout.strip()
    assert not list(out.glob(".*")), "temporary files or claims left behind"
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert sorted(r["file"] for r in lines) == written
    before = {name: (out / name).stat().st_mtime_ns for name in written}
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{10 - len(written)} generated, {len(written)} kept" in " ".join(again.stdout.split())
    assert len(list(out.glob("*.png"))) == 10
    assert all((out / n).stat().st_mtime_ns == t for n, t in before.items())
