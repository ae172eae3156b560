"""The plugin and config reference pages cannot drift from the code."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from zsampling.plugins import hookspecs
from zsampling.plugins.manager import build_registry
from zsampling.plugins.registry import KINDS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_hook_has_a_section() -> None:
    page = (DOCS / "plugins.md").read_text()
    hooks = [
        n
        for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
        if n.startswith("zsampling_")
    ]
    assert len(hooks) == len(hookspecs.HOOKS) == 10
    for hook in hooks:
        assert f"### {hook}(register)" in page, hook


def script(name: str) -> Any:
    """A docs/scripts module, loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, DOCS / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_page_lists_every_builtin_from_the_registry() -> None:
    """Each hook section lists its kind's built-ins, written by docs/scripts/gen_plugin_lists.py
    from the registry (names, older names, first docstring paragraph)."""
    page = (DOCS / "plugins.md").read_text()
    for kind in KINDS:
        assert f"<!-- builtins: {kind} -->" in page, kind
    registry = build_registry(entry_points=False)
    for kind in KINDS:
        for name in registry.names(kind):
            assert f"- `{name}`" in page, (kind, name)
    assert "- `align-your-steps` (or `ays`): " in page
    assert page == script("gen_plugin_lists").render(page), (
        "docs/plugins.md is stale: run python docs/scripts/gen_plugin_lists.py"
    )


def test_config_reference_is_generated_from_the_schema() -> None:
    page = script("gen_config_reference").render()
    assert '### `use = "zigzag"`' in page
    assert "| `inversion_guidance` | number | `0.0` | >= 0 |" in page
    assert (DOCS / "config-reference.md").read_text() == page, (
        "docs/config-reference.md is stale: run python docs/scripts/gen_config_reference.py"
    )


def test_evaluation_page_is_generated_from_the_results_files() -> None:
    """docs/evaluation.md's tables are the results files rendered, not typed by hand."""
    gen = script("gen_evaluation_tables")
    page = (DOCS / "evaluation.md").read_text()
    assert gen.render(page, gen.blocks(gen.load())) == page, (
        "docs/evaluation.md is stale: run python docs/scripts/gen_evaluation_tables.py"
    )
    for name in gen.TESTBEDS:
        assert (DOCS / "results" / f"{name}.png").is_file()
        assert f"<!-- results:{name} -->\n| " in page or f"<!-- results:{name} -->\n**" in page
