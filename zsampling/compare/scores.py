"""What the page's table says of each cell beyond its settings and costs: its scores.

A scorer is a function that reads the cells' results and fills ``CellResult.scores`` (a column
name to a number or a text); the page shows every column any scorer filled, sortable. Three
ship:

- `run_metrics`: every metric the runs computed (``[[metrics]]``: CLIP score where a CLIP folder
  is configured, the digits metrics), the cell's mean over its items, read from the manifest;
- `testbed_judge`: on the embedded models (analytic, digits, digit-pairs), the testbed's judge on
  every output: accuracy (every requested digit right) and mean log p, the numbers the demo and
  the leaderboard report;
- `leaderboard_verdicts`: the CFG-frontier verdict of the leaderboard arm that ran a cell's very
  settings (the arm's items are the testbed's, not the cell's, which the column says).

A verifier (a model that scores outputs) is one more scorer of the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from zsampling.compare.cells import CellResult
from zsampling.evaluation.report import verdict
from zsampling.evaluation.testbeds import MODEL_TESTBEDS, TESTBEDS, Testbed
from zsampling.runs.config import RunConfig
from zsampling.runs.outputs import read_output

Scorer = Callable[[list[CellResult]], None]

JUDGE_ACCURACY = "judge accuracy"
JUDGE_LOGP = "judge log p"
VERDICT = "leaderboard verdict"

#: What a score column means, shown under the page's table when the column is there.
COLUMN_NOTES = {
    JUDGE_ACCURACY: "judge accuracy / judge log p: the testbed's independent judge (a CNN "
    "trained on real digits only, calibrated; the exact posterior on the analytic model) on "
    "every output of the cell: every requested digit right, and the log-probability of the "
    "whole prompt, as zsampling demo and the leaderboard report them.",
    VERDICT: "leaderboard verdict: where zsampling leaderboard placed the arm with this cell's "
    "exact settings on standard CFG's alignment-fidelity frontier (energy distance at equal "
    "alignment, 95% intervals), measured on the testbed's own items, not on this page's.",
}


def run_metrics(results: list[CellResult]) -> None:
    """Each metric the cell's run recorded, as the mean over its items."""
    for result in results:
        names = sorted({name for item in result.items for name in item.metrics})
        for name in names:
            values = [item.metrics[name] for item in result.items if name in item.metrics]
            result.scores[name] = sum(values) / len(values)


def testbed_of(config: RunConfig) -> Testbed | None:
    """The testbed that judges the config's model: only the shipped models at their defaults
    (another digits folder is another model, which the judge's numbers would not describe)."""
    adapter = config.model.adapter
    name = MODEL_TESTBEDS.get(adapter.name)
    if name is None or config.model.patches:
        return None
    if adapter.model_dump(mode="json") != type(adapter)().model_dump(mode="json"):
        return None
    return TESTBEDS[name]()


def as_latents(path: Path) -> torch.Tensor:
    """An output back as the model's sample: PNG pixels mapped back to [-1, 1] (the digits
    models' decode, inverted up to its rounding; a colour PNG, the shapes model's decode, as the
    image (3, H, W) its judge reads), tensors as stored."""
    stored = read_output(path)
    if path.suffix == ".safetensors":
        return stored.float()
    pixels = stored.float() / 127.5 - 1.0
    return pixels.permute(2, 0, 1) if pixels.ndim == 3 else pixels.unsqueeze(0)


def testbed_judge(results: list[CellResult]) -> None:
    """Judge accuracy and mean log p of every cell on an embedded model."""
    for result in results:
        testbed = testbed_of(result.cell.config)
        if testbed is None:
            continue
        latents = torch.stack([as_latents(item.path) for item in result.items])
        stats, _ = testbed.judge(latents, [item.prompt for item in result.items])
        result.scores[JUDGE_ACCURACY] = float(stats["accuracy"].mean())
        result.scores[JUDGE_LOGP] = float(stats["logp"].mean())


def read_leaderboard(folder: Path, testbed: str) -> dict[str, Any] | None:
    """One testbed's results as ``zsampling leaderboard`` writes them (``<folder>/<testbed>/
    results.json``) or as the docs keep them (``<folder>/<testbed>.json``); None if absent."""
    for path in (folder / testbed / "results.json", folder / f"{testbed}.json"):
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
    return None


def _arm_guider(arm: dict[str, Any]) -> str:
    """The guider of a leaderboard arm: its label names any guider but CFG."""
    label = str(arm.get("label", ""))
    if " guider, " in label and "+ " in label:
        return label.split("+ ", 1)[1].split(" guider", 1)[0]
    return "cfg"


def _is_default(component: Any) -> bool:
    try:
        fresh = type(component)()
    except Exception:  # required settings: not the testbed's default
        return False
    return bool(component.model_dump(mode="json") == fresh.model_dump(mode="json"))


def matching_arm(
    config: RunConfig, testbed: Testbed, board: dict[str, Any]
) -> dict[str, Any] | None:
    """The leaderboard arm that ran exactly ``config``'s sampling settings on ``testbed``."""
    steps = int(config.schedule.steps)
    schedule: Any = testbed.schedule(steps)
    same_schedule = config.schedule.name == schedule.name and config.schedule.model_dump(
        mode="json"
    ) == schedule.model_dump(mode="json")
    solver = testbed.solver.name if testbed.solver is not None else "ddim"
    if not same_schedule or config.solver.name != solver or not _is_default(config.solver):
        return None
    if config.models or not _is_default(config.guider):
        return None  # the leaderboard's two-model arms use the testbed's weak model
    sampler = config.sampler.model_dump(mode="json")
    for arm in [*board.get("sweep", []), *board.get("arms", [])]:
        if (
            arm.get("method") == config.sampler.name
            and arm.get("settings") == sampler
            and arm.get("steps") == steps
            and _arm_guider(arm) == config.guider.name
            and "frontier" in arm
        ):
            return dict(arm)
    return None


def leaderboard_verdicts(folder: Path) -> Scorer:
    """A scorer naming, for each cell on an embedded model, the leaderboard's verdict on the
    arm with the cell's settings (from ``folder``, the output of ``zsampling leaderboard``)."""

    def score(results: list[CellResult]) -> None:
        for result in results:
            testbed = testbed_of(result.cell.config)
            if testbed is None:
                continue
            board = read_leaderboard(folder, testbed.name)
            if board is None:
                result.scores[VERDICT] = f"no leaderboard results in {folder}"
                continue
            arm = matching_arm(result.cell.config, testbed, board)
            if arm is None:
                result.scores[VERDICT] = (
                    "not placed: the leaderboard ran no arm with these settings"
                )
            elif arm.get("kind") == "cfg":
                result.scores[VERDICT] = f"a point of the CFG sweep ({board['items']} items)"
            else:
                text = verdict(board, arm["frontier"])
                result.scores[VERDICT] = f"{text} (arm {arm['label']!r}, {board['items']} items)"

    return score


def default_scorers(leaderboard: Path | None) -> list[Scorer]:
    scorers: list[Scorer] = [run_metrics, testbed_judge]
    if leaderboard is not None:
        scorers.append(leaderboard_verdicts(leaderboard))
    return scorers
