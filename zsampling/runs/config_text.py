"""Reading a config file's text into plain data, safely, whatever the file holds.

A config is data from anywhere (a colleague's file, a download), so reading it must neither run
code, nor take unbounded time or memory, nor crash. What is refused, each with the file and the
setting named (`ConfigError`, exit code 2):

- files over `MAX_BYTES`, bytes that are not UTF-8;
- YAML: tags that build objects (the safe loader), nesting deeper than `MAX_DEPTH`, recursive
  aliases, aliases that expand past `MAX_NODES` values (a 512-byte "billion laughs" file expands to
  10^9 strings: the expanded size is counted on the node graph, in linear time, before anything is
  built), and keys given twice in one mapping (YAML's spec forbids it; PyYAML keeps the last);
- TOML: what `tomllib` refuses (keys given twice included), and nesting too deep for its parser;
- in both: values that are not plain JSON-like data (dates, times, timestamps, binary, sets,
  non-string keys), numbers that are not finite, integers past Python's 4300-digit conversion limit.

What comes out is plain data: dicts with string keys, lists, strings, finite numbers, booleans and
None, at most `MAX_DEPTH` deep: exactly what JSON can hold.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import tomllib
import yaml

from zsampling.core.errors import shown
from zsampling.runs.config_locate import locate
from zsampling.runs.issues import ConfigError, ConfigIssue, short_key

MAX_BYTES = 4 << 20  # 4 MiB: about 40,000 prompts of 100 characters
MAX_DEPTH = 32  # a config is at most ~6 deep (model.patches.0.means.0.0)
MAX_NODES = 1_000_000  # values after alias expansion


def read_text(path: Path) -> str:
    """The file's text: a regular file, at most `MAX_BYTES`, UTF-8."""
    source = str(path)
    if not path.is_file():
        what = "no such file" if not path.exists() else "not a regular file (a folder?)"
        raise _refused(source, what)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise _refused(source, f"cannot be read: {err.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise _refused(source, f"larger than {MAX_BYTES >> 20} MiB; a config file is smaller")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        why = f"not UTF-8 text (byte {raw[err.start]:#04x} on line {line})"
        raise _refused(source, why) from None


def _refused(source: str, why: str) -> ConfigError:
    """The error for a file refused as a whole."""
    return ConfigError([ConfigIssue(source, why)], source)


def parse(text: str, suffix: str, source: str) -> Any:
    """Parse TOML or YAML text into plain data (see the module docstring)."""
    def parser(text: str) -> Any:
        return _yaml(text, source) if suffix in (".yaml", ".yml") else tomllib.loads(text)

    if suffix not in (".yaml", ".yml", ".toml"):
        raise _refused(source, "expected a .toml, .yaml or .yml file")
    try:
        data = parser(text)
    except tomllib.TOMLDecodeError as exc:
        raise _refused(source, f"not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        raise _refused(source, f"not valid YAML: {_short(exc)}") from None
    except (RecursionError, ValueError) as exc:  # ValueError: Python's limit on integer digits
        why = (
            f"nested deeper than {MAX_DEPTH} levels"
            if isinstance(exc, RecursionError)
            else f"cannot be read: {exc}"
        )
        located = locate(text, parser, MAX_DEPTH, _join)
        raise ConfigError(located or [ConfigIssue(source, why)], source) from None
    issues = plain_data_issues(data)
    if issues:
        raise ConfigError(issues, source)
    return data


def _short(exc: yaml.YAMLError) -> str:
    return " ".join(str(exc).split())[:500]


class _Loader(yaml.SafeLoader):
    """The safe loader (no python/* tags), read node by node so the graph can be checked."""


def _yaml(text: str, source: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = _graph_problem(node)
        if problem:
            raise ConfigError([problem], source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _graph_problem(root: yaml.Node) -> ConfigIssue | None:
    """Why a composed YAML document may not be built, or None.

    The graph can share nodes (aliases), so sizes are memoized per node: each node is visited
    once, however often it is referenced; the path depth is bounded, so the recursion is too.
    """
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    open_nodes: set[int] = set()

    def visit(node: yaml.Node, depth: int, where: str) -> None:
        key = id(node)
        if key in open_nodes:
            raise _Refused(where, "a recursive alias (a value that contains itself)")
        if key in sizes:
            if depth + heights[key] > MAX_DEPTH:
                raise _Refused(where, f"nested deeper than {MAX_DEPTH} levels")
            return
        if depth > MAX_DEPTH:
            raise _Refused(where, f"nested deeper than {MAX_DEPTH} levels")
        open_nodes.add(key)
        size, height = 1, 0
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.SequenceNode):
            children = [(c, f"{where}.{i}") for i, c in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                label = str(k.value) if isinstance(k, yaml.ScalarNode) else "<key>"
                if k.tag != "tag:yaml.org,2002:merge" and isinstance(k, yaml.ScalarNode):
                    if label in seen:
                        line = k.start_mark.line + 1
                        why = f"given twice (lines {seen[label]} and {line})"
                        raise _Refused(_join(where, label), f"{why}; YAML keys must be unique")
                    seen[label] = k.start_mark.line + 1
                children += [(k, _join(where, label)), (v, _join(where, label))]
        for child, path in children:
            visit(child, depth + 1, path)
            size += sizes[id(child)]
            height = max(height, heights[id(child)] + 1)
            if size > MAX_NODES:
                why = f"expands (through aliases) to more than {MAX_NODES:,} values"
                raise _Refused(where, why)
        open_nodes.discard(key)
        sizes[key], heights[key] = size, height

    try:
        visit(root, 0, "")
    except _Refused as refused:
        where, why = refused.args
        return ConfigIssue(where or "(top level)", why)
    return None


class _Refused(Exception):
    """``(path, why)``; the path is empty for the document itself."""


def _join(where: str, key: object) -> str:
    text = short_key(key if isinstance(key, str) else shown(key))
    return f"{where}.{text}" if where else text


NOT_PLAIN = {
    datetime.datetime: "a date and time (a YAML timestamp or TOML datetime)",
    datetime.date: "a date",
    datetime.time: "a time of day",
    bytes: "binary data (!!binary)",
    set: "a set (!!set)",
}


def plain_data_issues(data: Any, where: str = "") -> list[ConfigIssue]:
    """Every place where ``data`` is not plain, finite, JSON-like data, by path (at most 20)."""
    issues: list[ConfigIssue] = []
    stack: list[tuple[Any, str, int]] = [(data, where, 0)]
    while stack and len(issues) < 20:
        value, path, depth = stack.pop()
        label = path or "(top level)"
        if depth > MAX_DEPTH:
            issues.append(ConfigIssue(label, f"nested deeper than {MAX_DEPTH} levels"))
        elif isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    issues.append(
                        ConfigIssue(
                            _join(path, k), f"the key {shown(k)} is not text (keys must be text)"
                        )
                    )
                    continue
                stack.append((v, _join(path, k), depth + 1))
        elif isinstance(value, list):
            stack.extend((v, _join(path, i), depth + 1) for i, v in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            issues.append(ConfigIssue(label, f"{value} is not a finite number"))
        elif not (value is None or isinstance(value, (str, int, float))):
            kind = next((t for c, t in NOT_PLAIN.items() if isinstance(value, c)), None)
            kind = kind or f"a {type(value).__name__}"
            issues.append(
                ConfigIssue(
                    label,
                    f"{shown(value)} is {kind}, which no setting takes; quote it if you mean text",
                )
            )
    return sorted(issues, key=lambda i: i.path)
