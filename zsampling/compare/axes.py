"""Sweep axes and the cells they span, each cell an ordinary run config, all checked up front.

An axis is one setting and its values, written as ``--set`` writes one value
(``sampler.guidance=3,5.5,7``; a list value keeps its commas: ``model.means=[1,2],[3,4]``). Up
to three axes (x, y, z) span the cells; each cell is the base config with the base ``--set``
overrides, then one value of every axis.

Sweeping a component (``sampler.use=standard,zigzag``) replaces the component, not its table:
the base table's settings the new component does not have are dropped for that cell (the base
config's ``inversion_guidance`` belongs to zigzag, and standard cells are still wanted), while a
setting an *axis* names is kept, so a cell where it does not apply is an error. Every cell is
validated before anything runs, and all problems of all cells are reported together, as a
config file's are.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsampling.core.errors import InvalidArgument
from zsampling.plugins.registry import Kind, Registry
from zsampling.runs.config import (
    RunConfig,
    apply_overrides,
    parse_override,
    read_config,
    validate_config,
)
from zsampling.runs.config_text import plain_data_issues
from zsampling.runs.issues import ConfigError, ConfigIssue
from zsampling.runs.outputs import slug

AXIS_NAMES = ("x", "y", "z")

#: The config sections whose ``use`` an axis may sweep, and the kind each names.
SWEEPABLE: dict[str, Kind] = {
    "sampler": "sampler",
    "solver": "solver",
    "schedule": "schedule",
    "guider": "guider",
    "model": "adapter",
}


@dataclass(frozen=True)
class Axis:
    """One swept setting: ``key`` (``sampler.guidance``) and its values as written."""

    name: str  # x, y or z
    key: str
    values: tuple[str, ...]

    def override(self, k: int) -> str:
        return f"{self.key}={self.values[k]}"


@dataclass(frozen=True)
class Cell:
    """One point of the sweep: its position on each axis, and its run config."""

    position: tuple[int, ...]  # index into each axis's values, in axis order
    overrides: tuple[str, ...]  # the axis overrides, in axis order
    config: RunConfig

    @property
    def folder(self) -> Path:
        return Path(self.config.run.output)

    @property
    def label(self) -> str:
        return ", ".join(self.overrides) or "base config"


def cell_folder(overrides: tuple[str, ...]) -> str:
    """A stable, readable folder name for a cell's outputs: the same cell finds its folder again
    whatever else the sweep holds, so an interrupted compare resumes."""
    text = " ".join(overrides)
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{slug(text, 60)}-{digest}" if text else "base"


def split_values(text: str) -> list[str]:
    """The comma-separated values of an axis; commas inside brackets or quotes stay."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def parse_axis(name: str, text: str) -> Axis:
    """``key=v1,v2,...`` as an `Axis`; a malformed one names the option and what is valid."""
    option = f"--{name}"
    key, sep, raw = text.partition("=")
    key = key.strip()
    values = split_values(raw) if sep else []
    if not sep or not key or not all(key.split(".")) or not all(values):
        raise InvalidArgument(
            option, text, "key.path=value1,value2,... e.g. sampler.guidance=3,5.5,7"
        )
    if len(set(values)) != len(values):
        raise InvalidArgument(option, text, "distinct values (each value names one column)")
    return Axis(name, key, tuple(values))


def check_axes(axes: list[Axis]) -> None:
    """Two axes over one setting would make cells that contradict themselves."""
    keys = [a.key for a in axes]
    for axis in axes:
        if keys.count(axis.key) > 1:
            raise InvalidArgument(
                f"--{axis.name}", axis.key, "a setting no other axis sweeps (one axis per setting)"
            )


def plan_cells(
    config_path: Path,
    sets: list[str],
    axes: list[Axis],
    registry: Registry,
    output: Path,
) -> list[Cell]:
    """Every cell of the sweep (x fastest), validated; `ConfigError` lists every bad cell's
    problems, each prefixed with the cell."""
    check_axes(axes)
    base = apply_overrides(read_config(config_path), sets)
    cells, issues = [], []
    for position in itertools.product(*(range(len(a.values)) for a in reversed(axes))):
        position = tuple(reversed(position))
        overrides = tuple(a.override(k) for a, k in zip(axes, position, strict=True))
        try:
            data = cell_data(base, overrides, registry)
        except ConfigError as err:
            issues += _in_cell(overrides, err)
            continue
        if isinstance(data.get("run"), dict):
            data["run"]["output"] = str(output / "cells" / cell_folder(overrides))
        try:
            config = validate_config(data, registry, f"{config_path} [{', '.join(overrides)}]")
        except ConfigError as err:
            issues += _in_cell(overrides, err)
            continue
        cells.append(Cell(position, overrides, config))
    if issues:
        total = math.prod(len(a.values) for a in axes)
        raise ConfigError(issues, f"{config_path} swept over {total} cell(s)")
    return cells


def _in_cell(overrides: tuple[str, ...], err: ConfigError) -> list[ConfigIssue]:
    """A cell's problems, each prefixed with the cell, so the report says which cells fail."""
    return [ConfigIssue(f"[{', '.join(overrides)}] {i.path}", i.message) for i in err.issues]


def cell_data(
    base: dict[str, Any], overrides: tuple[str, ...], registry: Registry
) -> dict[str, Any]:
    """The base config data with one cell's overrides: a swept component loses the base table's
    settings it does not have (see the module docstring)."""
    data = apply_overrides(base, list(overrides))
    named = {tuple(parse_override(o)[0]) for o in overrides}
    for section, kind in SWEEPABLE.items():
        if (section, "use") not in named:
            continue
        table, before = data.get(section), base.get(section)
        if not isinstance(table, dict) or not isinstance(before, dict):
            continue  # validation says what the section should be
        use = table.get("use")
        found = registry.lookup(kind, use) if isinstance(use, str) else None
        if found is None or before.get("use") == use:
            continue  # validation names an unknown component
        fields = {"use", "patches", *getattr(found.cls, "model_fields", {})}
        for key in list(table):
            if key not in fields and (section, key) not in named:
                del table[key]
    issues = plain_data_issues(data)
    if issues:  # an axis value can be a TOML date, or inf
        raise ConfigError(issues)
    return data
