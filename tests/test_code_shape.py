"""The shape of the package's code: no function longer than 80 lines (issue 22).

A long function is where the next change gets copied into instead of factored out; the limit
keeps every function readable on one screen. Lines are counted from ``def`` (decorators
excluded) to the function's last line, docstring included, as a reader sees them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zsampling"
MOST_LINES = 80


def long_functions(root: Path, most: int = MOST_LINES) -> list[str]:
    """``path:line name (n lines)`` for every function or method under ``root`` over ``most``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > most:
                    where = path.relative_to(root.parent)
                    found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_the_package_is_longer_than_80_lines() -> None:
    assert long_functions(PACKAGE) == []


def test_the_walk_finds_a_long_function_nested_or_not(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    body = [f"x{i} = {i}" for i in range(80)]
    source = [
        "def long():",
        *("    " + line for line in body),
        "def short():",
        "    return 1",
        "class C:",
        "    def method(self):",
        "        def inner():",
        *("            " + line for line in body),
        "        return inner",
    ]
    (package / "a.py").write_text("\n".join(source) + "\n", encoding="utf-8")
    assert long_functions(package) == [
        "pkg/a.py:1 long (81 lines)",
        "pkg/a.py:85 method (83 lines)",
        "pkg/a.py:86 inner (81 lines)",
    ]
