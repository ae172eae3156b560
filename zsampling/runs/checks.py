"""What a run checks before it writes anything, beyond what the config file can say alone.

- `check_devices` (before loading): every ``device`` setting names a device this machine has
  (``device = "cuda"`` on a CPU build is refused naming the setting, instead of an AssertionError
  from deep inside torch). `zsampling check` does not do this: a config checked on a laptop may be
  meant for a GPU server.
- `check_output_folder` (before loading): the output folder is a folder (or can be made), it can be
  written, and nothing but a regular file sits where an item's output, side file, temporary file or
  claim, the manifest or its lock goes (a planted link or a folder is refused by name).
- `model_issues` (after loading, before the first item): what only the loaded model can answer:
  every prompt (and the negative prompt) encodes with every model of the run, every number in the
  settings fits the model's dtype (``guidance = 1e300`` is infinite in float32), and the schedule
  makes valid levels for this model. Every problem is collected and reported together.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from zsampling.core.devices import device_problem
from zsampling.core.errors import ComponentFault, InvalidArgument, shown
from zsampling.core.files import UnsafePath, entry_kind
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import check_levels
from zsampling.runs.blame import Blame
from zsampling.runs.config import RunConfig
from zsampling.runs.issues import ConfigError, ConfigIssue, walk


def check_devices(config: RunConfig) -> None:
    """Refuse every ``device`` setting naming a device this machine lacks (`ConfigError`)."""
    issues = []
    for path, value in walk(config.as_dict()):
        if path.rpartition(".")[2] == "device" and isinstance(value, str):
            problem = device_problem(value)
            if problem:
                issues.append(ConfigIssue(path, f"{shown(value)}: {problem}"))
    if issues:
        raise ConfigError(issues, f"{config.source}, checked against this machine,")


def check_output_folder(folder: Path, stems: Iterable[str], field: str = "run.output") -> None:
    """Refuse an output folder zsampling must not (or cannot) write into; see the module."""
    kind = entry_kind(folder)
    if kind == "a symbolic link" and folder.is_dir():
        kind = "a folder"  # the user's own choice of where outputs go: a link to a folder is fine
    if kind is None:
        parent = folder.parent
        while entry_kind(parent) is None and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise InvalidArgument(field, str(folder), f"a folder; {parent} is not a folder")
        target = parent
    elif kind != "a folder":
        raise InvalidArgument(field, str(folder), f"a folder; it is {_article(kind)}")
    else:
        target = folder
    if not writable(target):
        raise InvalidArgument(field, str(folder), f"a folder you can write in ({target} is not)")
    if kind is None:
        return
    from zsampling.runs.claims import CLAIM_SUFFIX
    from zsampling.runs.outputs import MANIFEST

    wanted = set(stems)
    for name in os.listdir(folder):
        ours = name in (MANIFEST, MANIFEST + ".lock")
        if not ours:
            bare = name[1:] if name.startswith(".") else name
            ours = bare.removesuffix(CLAIM_SUFFIX) in wanted or any(
                bare[:i] in wanted for i, c in enumerate(bare) if c == "."
            )
        if ours:
            what = entry_kind(folder / name)
            if what not in (None, "file"):
                raise UnsafePath(folder / name, what or "")
            appended = name == MANIFEST or name.endswith(".steps.jsonl")
            if appended and what == "file" and os.lstat(folder / name).st_nlink > 1:
                raise UnsafePath(folder / name, "a file with other hard links")


def writable(folder: Path) -> bool:
    """Whether this process may create files in ``folder`` (what the kernel would answer)."""
    return os.access(folder, os.W_OK | os.X_OK)


def _article(kind: str) -> str:
    return kind if kind.startswith("a") else f"a {kind}"


def model_issues(
    config: RunConfig,
    models: Mapping[str, ModelAdapter],
    prompts: Iterable[str],
    blame: Blame,
) -> list[ConfigIssue]:
    """What the loaded models say about the config (see the module docstring)."""
    issues = _prompt_issues(config, models, prompts, blame)
    main = models["main"]
    issues += _number_issues(config, main.dtype)
    schedule = blame.of("schedule", config.schedule)
    try:
        with blame.stage("making the levels of the schedule", schedule):
            levels = config.schedule.sigmas(main)
        check_levels(config.schedule, levels)
    except InvalidArgument as err:
        field = err.field if err.field.startswith("schedule") else f"schedule ({err.field})"
        issues.append(ConfigIssue(field, f"{shown(err.value)} is invalid: {err.valid}"))
    except ComponentFault as fault:
        issues.append(ConfigIssue("schedule", f"{blame.fault(fault)} {fault.problem}"))
    return issues


def _prompt_issues(
    config: RunConfig, models: Mapping[str, ModelAdapter], prompts: Iterable[str], blame: Blame
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    negative = [config.run.negative_prompt] if config.run.negative_prompt else None
    index = {p: i for i, p in reversed(list(enumerate(config.run.prompts)))}
    seen_negative = False
    for name, model in models.items():
        adapter = blame.of(
            "adapter", (config.model if name == "main" else config.models[name]).adapter
        )
        for prompt in dict.fromkeys(prompts):
            try:
                with blame.stage(f"encoding the prompt {shown(prompt)}", adapter):
                    model.encode([prompt], negative)
            except InvalidArgument as err:
                if err.field == "negative_prompt":
                    if not seen_negative:
                        issues.append(
                            ConfigIssue("run.negative_prompt", f"{shown(err.value)}: {err.valid}")
                        )
                        seen_negative = True
                    continue
                where = f"run.prompts.{index[prompt]}" if prompt in index else "prompt"
                model_name = "" if name == "main" else f" (model {name!r})"
                issues.append(ConfigIssue(where, f"{shown(prompt)}{model_name}: {err.valid}"))
    return issues


def _number_issues(config: RunConfig, dtype: torch.dtype) -> list[ConfigIssue]:
    """Settings whose magnitude the model's floating-point type cannot hold (they become inf)."""
    if not dtype.is_floating_point:
        return []
    largest = torch.finfo(dtype).max
    settings = config.as_dict()
    settings.pop("run")
    return [
        ConfigIssue(
            path,
            f"{value!r} is larger than the model's {str(dtype).removeprefix('torch.')} can hold "
            f"(|x| <= {largest:.3g}); it would turn the samples into inf/NaN",
        )
        for path, value in walk(settings)
        if isinstance(value, float) and math.isfinite(value) and abs(value) > largest
    ]
