"""Reading the config of a run, with its model folders looked at when the config is wrong.

A user who fixes a config one error per attempt should not meet a second round after loading
begins: when the config has problems of its own, each model folder it names is also looked at
(only listing entries, no file read) and its problem joins the report, after the config's. A
config without problems of its own goes on to loading, which checks the folder in full (its
files, their types, the weights) and names it. ``zsampling check`` does not look at folders: a
config checked on a laptop may name a folder of the GPU server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zsampling.core.errors import shown
from zsampling.plugins.registry import Registry
from zsampling.runs.config import (
    ModelSpec,
    RunConfig,
    model_specs,
    read_overridden,
    validate_config,
)
from zsampling.runs.issues import ConfigError, ConfigIssue


def load_run_config(path: Path, registry: Registry, overrides: Sequence[str] = ()) -> RunConfig:
    """The validated config; on problems, a `ConfigError` listing the config's own first, then
    its model folders' (see the module docstring)."""
    data = read_overridden(path, overrides)
    try:
        return validate_config(data, registry, str(path))
    except ConfigError as err:
        found = folder_issues(model_specs(data, registry))
        if not found:
            raise
        raise ConfigError([*err.issues, *found], err.source) from None


def folder_issues(specs: Mapping[str, ModelSpec]) -> list[ConfigIssue]:
    """What each component with a ``folder_problem()`` (a cheap look at its folder's layout)
    says is wrong with it, by the setting that names the folder."""
    issues = []
    for where, spec in specs.items():
        named = [(where, spec.adapter)] + [
            (f"{where}.patches.{k}", p) for k, p in enumerate(spec.patches)
        ]
        for at, component in named:
            problem = _problem(component)
            if problem is not None:
                folder = getattr(component, "path", None)
                issues.append(ConfigIssue(f"{at}.path", f"{shown(folder)}: {problem}"))
    return issues


def _problem(component: Any) -> str | None:
    look = getattr(component, "folder_problem", None)
    if not callable(look):
        return None
    try:
        problem = look()
    except OSError as err:  # a folder we may not list is a folder problem too
        return f"cannot be looked at ({err.strerror or err})"
    return problem if isinstance(problem, str) else None
