"""The plugin and config reference pages cannot drift from the code."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

import pytest

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


def test_evaluation_page_leads_with_its_findings() -> None:
    """The findings and the frontier picture come first; the run's commit, times and memory sit
    beside the tables, and the generator refuses a page that puts them back in front."""
    gen = script("gen_evaluation_tables")
    page = (DOCS / "evaluation.md").read_text()
    assert page[page.index("\n## ") :].startswith("\n## What the results say\n")
    assert page.index("(results/pairs.png)") < page.index("\n## The protocol\n")
    run = page.index("\n## The run behind the tables\n")
    assert run < page.index("on commit ") < page.index("<!-- results:facts -->")
    swapped = (
        page.replace("## What the results say", "@@")
        .replace("## The run behind the tables", "## What the results say")
        .replace("@@", "## The run behind the tables")
    )
    with pytest.raises(SystemExit, match="in this order"):
        gen.render(swapped, {})


def test_home_page_catalogue_is_generated_from_the_registry() -> None:
    """docs/index.md lists every built-in of every kind (docs/scripts/gen_catalogue.py), each
    with the first sentence of its docstring, so the home page cannot go stale."""
    gen = script("gen_catalogue")
    page = (DOCS / "index.md").read_text()
    assert page == gen.render(page), (
        "docs/index.md is stale: run python docs/scripts/gen_catalogue.py"
    )
    registry = build_registry(entry_points=False)
    for kind in KINDS:
        for name in registry.names(kind):
            assert f"- `{name}`" in page, (kind, name)
    zigzag = "- `zigzag`: Denoise with a strong guidance, invert with a weak one, denoise again.\n"
    assert zigzag in page
    karras = "Karras et al. (2022) levels."
    assert gen.first_sentence(f"{karras} More.") == karras


def test_catalogue_picks_up_a_kind_it_has_no_title_for(monkeypatch: Any) -> None:
    """A kind added to the registry later gets its own section without editing the page."""
    gen = script("gen_catalogue")
    monkeypatch.setattr(gen, "TITLES", {k: v for k, v in gen.TITLES.items() if k != "metric"})
    monkeypatch.setattr(gen, "FIRST", tuple(k for k in gen.FIRST if k != "metric"))
    body = gen.catalogue(build_registry(entry_points=False))
    assert "### Metrics\n\n6 built-in.\n\n- `class-posterior`: " in body
    assert body.index("### Observers") < body.index("### Metrics")
