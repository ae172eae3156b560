"""Where in a config file a value the parsers cannot build lies, as a setting's path.

`tomllib` and PyYAML report an integer past Python's 4,300-digit conversion limit, or nesting deep
enough to exhaust their recursion, without saying where: the message could only name the file. A
user needs the setting (``run.seeds.0``). `locate` rewrites the text, replacing each such value
with a marker string, parses the rewritten text and reports the paths where the markers landed.
It runs only after a parser has failed, and gives up (None) when its scan of the text does not
find the value, so the file-level message stays the fallback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from zsampling.runs.issues import ConfigError, ConfigIssue, walk

DIGITS_MARKER = "zsampling-marker:too-many-digits"
DEEP_MARKER = "zsampling-marker:too-deep"
OPEN, CLOSE = "[{", "]}"


def locate(
    text: str, parser: Callable[[str], Any], max_depth: int, key: Callable[[str, Any], str]
) -> list[ConfigIssue] | None:
    """The issues at the paths where ``text`` holds over-long integers or too deep nesting, or
    None if they cannot be placed. ``key`` joins a path and a key as messages show them."""
    rewritten = _rewrite(text, max_depth)
    if rewritten == text:
        return None
    try:
        data = parser(rewritten)
    except ConfigError as err:  # the YAML reader's own depth check, now with the path
        return err.issues
    except Exception:  # the scan misread the text: keep the parser's own message
        return None
    limit = sys.get_int_max_str_digits()
    why = {
        DIGITS_MARKER: f"an integer with more than {limit} digits; no setting takes one",
        DEEP_MARKER: f"nested deeper than {max_depth} levels",
    }
    found = [
        ConfigIssue(path or "(top level)", why[value])
        for path, value in walk(data, "", key)
        if value in (DIGITS_MARKER, DEEP_MARKER)
    ]
    return found or None


def _rewrite(text: str, max_depth: int) -> str:
    """``text`` with long digit runs and too deep brackets (outside strings and comments)
    replaced by quoted markers."""
    out: list[str] = []
    limit = sys.get_int_max_str_digits()
    depth, i, n = 0, 0, len(text)
    quote: str | None = None
    cut: int | None = None  # the depth of the bracket being replaced, up to its closing one
    while i < n:
        ch, step, keep = text[i], 1, cut is None
        if quote is not None:
            if ch == "\\" and quote == '"':
                step = 2
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            end = text.find("\n", i)
            step = (n if end < 0 else end) - i
        elif ch in OPEN:
            if keep and depth >= max_depth:
                cut, keep = depth, False
                out.append(f'"{DEEP_MARKER}"')
            depth += 1
        elif ch in CLOSE:
            depth = max(0, depth - 1)
            cut = None if depth == cut else cut
        elif keep and ch.isdigit() and not (i and (text[i - 1].isalnum() or text[i - 1] in "._")):
            end = i
            while end < n and (text[end].isdigit() or text[end] == "_"):
                end += 1
            step = end - i
            if sum(c.isdigit() for c in text[i:end]) > limit:
                if out and out[-1] in "+-":
                    out.pop()
                out.append(f'"{DIGITS_MARKER}"')
                keep = False
        if keep:
            out.append(text[i : i + step])
        i += step
    return "".join(out)
