"""The plugin and config reference pages cannot drift from the code."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

from zsampling.plugins import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_hook_has_a_section() -> None:
    page = (DOCS / "plugins.md").read_text()
    hooks = [
        n
        for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
        if n.startswith("zsampling_")
    ]
    assert len(hooks) == 8
    for hook in hooks:
        assert f"### {hook}(register)" in page, hook


def test_config_reference_is_generated_from_the_schema() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen", DOCS / "scripts" / "gen_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    page = gen.render()
    assert '### `use = "zigzag"`' in page
    assert "| `inversion_guidance` | number | `0.0` | >= 0 |" in page
    assert (DOCS / "config-reference.md").read_text() == page, (
        "docs/config-reference.md is stale: run python docs/scripts/gen_config_reference.py"
    )
