"""What every hostile case asserts, in one place (the test_hostile_*.py files use it).

A case runs one command in a sandbox folder and asserts: the exit code; one paragraph on the
terminal starting with ``error:`` and naming the culprit; no traceback; no partial output in the
output folder (no output file it did not hold before, no temporary file); and nothing written
outside the output folder (every other file of the sandbox byte-identical, nothing added).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from zsampling.cli import MESSAGE_LIMIT, app
from zsampling.plugins import registering

GOOD_TOML = """
[model]
use = "analytic"
[schedule]
use = "uniform"
steps = 4
[sampler]
use = "zigzag"
guidance = 2.0
[run]
prompts = ["red", "green"]
seeds = [0, 1]
output = "{out}"
"""

DIGITS_TOML = """
[model]
use = "digits"
[schedule]
use = "uniform"
steps = 3
[sampler]
use = "standard"
guidance = 2.0
[run]
prompts = ["1", "2"]
seeds = [0]
output = "{out}"
"""


def plugin(**classes: Sequence[type]) -> object:
    """A plugin object registering ``classes`` by kind: ``plugin(sampler=[A], metric=[B])``."""
    return registering(classes)  # type: ignore[arg-type]


def tree(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every entry under ``root`` (links not followed) with a digest of what it is."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        if skip is not None and (here == skip or skip in here.parents):
            dirs[:] = []
            continue
        for name in dirs + files:
            p = here / name
            if skip is not None and p == skip:
                continue
            if p.is_symlink():
                found[str(p)] = "link:" + os.readlink(p)
            elif p.is_file():
                found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                found[str(p)] = "dir"
            else:
                found[str(p)] = "special"
    return found


OUTPUT_SUFFIXES = (".png", ".safetensors", ".steps.jsonl", ".zs-tmp")


def outputs(out: Path) -> set[str]:
    """Output-like entries in the output folder (outputs, step logs, temporary files)."""
    if not out.is_dir() or out.is_symlink():
        return set()
    return {p.name for p in out.iterdir() if p.name.endswith(OUTPUT_SUFFIXES)}


@dataclass
class Sandbox:
    """A folder for one case: its config, its output folder, and what lay around them."""

    root: Path

    @property
    def out(self) -> Path:
        return self.root / "out"

    def config(self, text: str, name: str = "run.toml") -> Path:
        path = self.root / name
        path.write_text(text.replace("{out}", str(self.out)), encoding="utf-8")
        return path

    def good(self, name: str = "run.toml", template: str = GOOD_TOML) -> Path:
        return self.config(template, name)

    def invoke(self, args: Sequence[str], **kwargs: Any) -> Result:
        return CliRunner().invoke(app, list(args), **kwargs)

    def refused(
        self,
        args: Sequence[str],
        code: int,
        *names: str,
        absent: Sequence[str] = (),
        new_outputs: int = 0,
    ) -> str:
        """Run ``args``; assert the refusal (see the module docstring); the flat message."""
        before = tree(self.root, skip=self.out)
        held = outputs(self.out)
        result = self.invoke(args)
        after = tree(self.root, skip=self.out)
        flat = check_refusal(result, code, names, absent, before, after)
        new = outputs(self.out) - held
        assert len(new) == new_outputs, f"partial output: {new}"
        assert not [n for n in new if n.endswith(".zs-tmp")], f"temporary files left: {new}"
        return flat


def check_refusal(
    result: Result,
    code: int,
    names: Sequence[str],
    absent: Sequence[str],
    before: dict[str, str],
    after: dict[str, str],
) -> str:
    assert result.exit_code == code, (
        f"exit {result.exit_code}, expected {code}: {result.output[-3000:]}"
    )
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output[-3000:]
    assert result.output.count("error:") == 1, result.output[-3000:]
    # The message: what zsampling printed from "error:" on (a library's progress bar may come
    # before it, as it would on a terminal).
    text = result.output[result.output.index("error:") :]
    flat = " ".join(text.split())
    assert "\n\n" not in text.strip(), "one paragraph, no blank lines: " + text
    assert len(text) < MESSAGE_LIMIT + 500, len(text)
    assert "\x1b" not in text, "raw terminal controls in the message"
    for name in names:
        assert name in flat, f"{name!r} not in: {flat}"
    for name in absent:
        assert name not in flat, f"{name!r} in: {flat}"
    assert after == before, "something outside the output folder changed"
    return flat


def cut_guider(model: Any, cond: Any, uncond: Any, counter: Any, columns: int) -> Any:
    """CFG bound to ``model``, its guided predictions cut to their first ``columns`` columns: a
    guider breaking the shape contract (on a (B, 2) latent, 1 column broadcasts, 0 does not)."""
    from zsampling.core.cfg import CFG
    from zsampling.core.prediction import Prediction

    inner = CFG().bind(model, cond, uncond, counter)

    def guided(x: Any, sigma: float, scale: float, context: Any = None) -> Prediction:
        pred = inner(x, sigma, scale, context)
        return Prediction(pred.x0[..., :columns], pred.eps[..., :columns])

    return guided
