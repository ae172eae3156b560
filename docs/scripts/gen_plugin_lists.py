"""Fill the built-in lists of docs/plugins.md from the registry.

Each hook section of the page holds a region

    <!-- builtins: sampler -->
    ...
    <!-- /builtins -->

whose body this script writes: every built-in component of that kind, with its older names and
the first paragraph of its docstring. Run ``python docs/scripts/gen_plugin_lists.py``; a test
fails when the page is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from zsampling.plugins.manager import build_registry
from zsampling.plugins.registry import KINDS, Registry

PAGE = Path(__file__).resolve().parents[1] / "plugins.md"
REGION = re.compile(
    r"(?P<open><!-- builtins: (?P<kind>\w+) -->\n).*?(?P<close><!-- /builtins -->)", re.DOTALL
)


def builtin_list(registry: Registry, kind: str) -> str:
    lines = []
    for component in registry.components[kind].values():  # type: ignore[index]
        if component.plugin != "zsampling":
            continue
        also = (
            f" (or {', '.join(f'`{a}`' for a in component.aliases)})" if component.aliases else ""
        )
        lines.append(f"- `{component.name}`{also}: {component.summary}")
    return "Built-in:\n\n" + "\n".join(lines) + "\n"


def render(page: str) -> str:
    """``page`` with every built-in region filled in from the registry of built-ins."""
    registry = build_registry(entry_points=False)
    kinds = set(KINDS)

    def fill(match: re.Match[str]) -> str:
        kind = match["kind"]
        if kind not in kinds:
            raise ValueError(f"unknown kind {kind!r} in a builtins region of {PAGE.name}")
        return match["open"] + builtin_list(registry, kind) + match["close"]

    return REGION.sub(fill, page)


if __name__ == "__main__":
    PAGE.write_text(render(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(f"wrote {PAGE}\n")
