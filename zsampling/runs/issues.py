"""Config problems: each names its path; a `ConfigError` lists every one found in a file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from zsampling.core.errors import ZSamplingError

#: A file with a thousand bad prompts gets a readable message, not a thousand lines.
SHOWN_ISSUES = 20


def short_key(key: str, limit: int = 60) -> str:
    """A key as a message shows it: a 100,000-character section name is cut, not printed."""
    return key if len(key) <= limit else key[: limit - 3] + "..."


def dotted(where: str, key: object) -> str:
    """``where.key`` (``key`` alone at the top)."""
    return f"{where}.{key}" if where else str(key)


def walk(
    data: Any, where: str = "", join: Callable[[str, Any], str] = dotted
) -> Iterator[tuple[str, Any]]:
    """Every leaf of plain data with its path, in document order (without recursion: parsed
    data can be nested deeper than Python's stack)."""
    stack = [(data, where)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(reversed([(v, join(path, k)) for k, v in items]))
        else:
            yield path, value


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(ZSamplingError):
    """All problems found in one config, each naming its path; raised before any model loads."""

    def __init__(self, issues: list[ConfigIssue], source: str = "config") -> None:
        self.issues = issues
        self.source = source
        lines = "\n".join(f"  - {i}" for i in issues[:SHOWN_ISSUES])
        more = len(issues) - SHOWN_ISSUES
        if more > 0:
            lines += f"\n  - ... and {more} more"
        super().__init__(f"{source} has {len(issues)} problem(s):\n{lines}")
