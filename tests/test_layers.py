"""The layer rule: imports only go down, and nothing imports in a circle.

Every import counts: module level, inside functions (deferred), and under ``TYPE_CHECKING``. The
map below is docs/architecture.md's tree; a module in a package that is not in it fails the test,
so a new folder has to be placed in a layer on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zsampling"

LAYERS: dict[str, int] = {
    # 0. core: the math and the protocols
    "zsampling.core": 0,
    # 1. components: implementations of the protocols, and what they stand on
    "zsampling.digits": 1,
    "zsampling.shapes": 1,
    "zsampling.adapters": 1,
    "zsampling.schedules": 1,
    "zsampling.solvers": 1,
    "zsampling.samplers": 1,
    "zsampling.patches": 1,
    "zsampling.metrics": 1,
    "zsampling.observers": 1,
    "zsampling.guiders": 1,
    "zsampling.testing": 1,
    "zsampling.verifiers": 1,
    "zsampling.search": 1,
    # 2. the plugin system: hooks, registry, built-ins
    "zsampling.plugins": 2,
    # 3. integrations: zsampling inside other tools
    "zsampling.integrations": 3,
    # 4. the application: runs, evaluation, the command line
    "zsampling.runs": 4,
    "zsampling.evaluation": 4,
    "zsampling.compare": 4,
    "zsampling.cli": 5,
    "zsampling.api": 5,  # the stable API: re-exports from every layer below
    "zsampling.__main__": 6,
    "zsampling": 6,  # the package's lazy re-exports: the top, imported by nothing inside
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """The layer of a module: its longest prefix in `LAYERS`."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(module)


def imports_of(module: str) -> set[str]:
    """Every zsampling module ``module`` imports, wherever the import statement stands."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), module, package)


def imports_in(source: str, module: str, package: str) -> set[str]:
    """The zsampling modules ``source`` imports (``ast.walk`` sees every statement, nested ones
    too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            if not (name == "zsampling" or name.startswith("zsampling.")):
                continue
            while name not in MODULES and "." in name:  # `from pkg import obj`: the module is pkg
                name = name.rpartition(".")[0]
            if name in MODULES and name != module:
                found.add(name)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_is_in_a_layer() -> None:
    unplaced = []
    for m in MODULES:
        try:
            layer(m)
        except KeyError:
            unplaced.append(m)
    assert not unplaced, f"add these to LAYERS (and docs/architecture.md): {unplaced}"


def upward(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
        for m, targets in sorted(graph.items())
        for t in sorted(targets)
        if layer(t) > layer(m)
    ]


def test_imports_only_go_down() -> None:
    assert not upward(GRAPH)


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a list of modules), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return [*stack[stack.index(t) :], t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles() -> None:
    assert cycle(GRAPH) is None, " -> ".join(cycle(GRAPH) or [])


def test_no_package_cycles_within_a_layer() -> None:
    """Component packages may use each other (patches use the diffusers adapter), but one way."""
    packages: dict[str, set[str]] = {}
    for m, targets in GRAPH.items():
        src = ".".join(m.split(".")[:2])
        for t in targets:
            dst = ".".join(t.split(".")[:2])
            if dst != src:
                packages.setdefault(src, set()).add(dst)
    assert cycle(packages) is None, " -> ".join(cycle(packages) or [])


@pytest.mark.parametrize(
    ("graph", "complaint"),
    [
        ({"zsampling.core.path": {"zsampling.runs.run"}}, "upward"),
        (
            {
                "zsampling.core.path": {"zsampling.core.sampler"},
                "zsampling.core.sampler": {"zsampling.core.path"},
            },
            "cycle",
        ),
    ],
)
def test_the_checks_catch_what_they_should(graph: dict[str, set[str]], complaint: str) -> None:
    """An upward import and a cycle, planted: the checks above must see them."""
    if complaint == "upward":
        assert upward(graph)
    else:
        assert cycle(graph) is not None


def test_type_checking_and_deferred_imports_count() -> None:
    """The scanner reads imports inside functions and under TYPE_CHECKING, relative ones too."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from zsampling.runs.run import RunItem\n"
        "def f():\n    from zsampling.cli import app\n"
        "def g():\n    from ..samplers import zigzag\n"
    )
    found = imports_in(source, "zsampling.core.path", "zsampling.core")
    # importing from a package runs the package's __init__ too
    expected = {
        "zsampling.runs.run",
        "zsampling.cli",
        "zsampling.samplers",
        "zsampling.samplers.zigzag",
    }
    assert found == expected
