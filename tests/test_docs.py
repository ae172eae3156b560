"""The documentation builds strictly, and every Python example in it runs.

Convention for ``docs/*.md``: every fenced block opened with ```` ```python ```` (or ``py``)
is executed, also when indented (inside an admonition, say). The blocks of one page run in
order, in one namespace, so a block may use what an earlier block of the same page defined. A
block is skipped when the last non-blank line before its opening fence is ``<!-- skip -->`` (an
invisible HTML comment in the rendered page); use that for examples that need a GPU, a model
download or a network.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SKIP_MARK = "<!-- skip -->"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    code: str


def blocks(path: Path) -> list[Block]:
    """The runnable Python blocks of one Markdown page, in order (indented ones too)."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    previous = ""  # last non-blank line outside a block
    k = 0
    while k < len(lines):
        opening = FENCE.match(lines[k])
        if opening is None:
            if lines[k].strip():
                previous = lines[k].strip()
            k += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        closing = re.compile(rf"^[ \t]*{fence[0]}{{{len(fence)},}}\s*$")
        end = next((j for j in range(k + 1, len(lines)) if closing.match(lines[j])), None)
        if end is None:
            raise AssertionError(f"{path.name}:{k + 1}: code fence never closed")
        if opening["lang"] in ("python", "py") and previous != SKIP_MARK:
            body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[k + 1 : end]]
            found.append(Block(path.name, k + 1, "\n".join(body) + "\n"))
        previous = lines[end].strip()
        k = end + 1
    return found


PAGES = sorted(DOCS.glob("*.md"))


def test_extractor_finds_and_skips_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\na = 1\n```\n\n<!-- skip -->\n\n```python\nraise SystemExit\n```\n"
        '```bash\nls\n```\n```py title="x"\nb = a\n```\n'
        "````markdown\n```python\nnot run\n```\n````\n"
        "!!! note\n    ```python\n    c = b\n      d = 1\n    ```\n",
        encoding="utf-8",
    )
    assert [(b.line, b.code) for b in blocks(page)] == [
        (3, "a = 1\n"),
        (15, "b = a\n"),
        (24, "c = b\n  d = 1\n"),
    ]


def test_docs_have_runnable_examples() -> None:
    assert sum(len(blocks(p)) for p in PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for block in blocks(page):
        code = compile(block.code, f"docs/{block.page}:{block.line}", "exec")
        try:
            exec(code, namespace)
        except Exception as err:  # pragma: no cover - the message is the point
            raise AssertionError(
                f"the example at docs/{block.page} line {block.line} fails: {err!r}"
            ) from err


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(
    not _have("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"),
    reason="needs the [dev] extras (mkdocs-material, mkdocstrings[python])",
)
def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()


@pytest.mark.slow
def test_measured_tables_match_the_script() -> None:
    """Every table row ``docs/scripts/inversion_modes.py`` prints is on the Concepts page."""
    done = subprocess.run(
        [sys.executable, str(DOCS / "scripts" / "inversion_modes.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    page = (DOCS / "concepts.md").read_text(encoding="utf-8")
    missing = [r for r in done.stdout.splitlines() if r.startswith("| ") and r not in page]
    assert not missing, "rerun the script and paste its tables:\n" + "\n".join(missing)
