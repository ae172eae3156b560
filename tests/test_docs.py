"""The documentation builds strictly, and every Python example in it runs.

Convention for ``docs/*.md``: every fenced block opened with ```` ```python ```` (or ``py``)
is executed, also when indented (inside an admonition, say). The blocks of one page run in
order, in one namespace, so a block may use what an earlier block of the same page defined. A
block is skipped when the last non-blank line before its opening fence is ``<!-- skip -->`` (an
invisible HTML comment in the rendered page); use that for examples that need a GPU, a model
download or a network.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


DOCS_EXTRAS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site, built strictly (any warning fails the build)."""
    if not _have(*DOCS_EXTRAS):
        pytest.skip("needs the [dev] extras (mkdocs-material, mkdocstrings[python])")
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return site


def test_mkdocs_build_is_strict_clean(built_site: Path) -> None:
    assert (built_site / "api" / "index.html").exists()
    for asset in (
        "javascripts/katex.js",
        "vendor/katex/katex.min.js",
        "vendor/katex/katex.min.css",
    ):
        assert (built_site / asset).is_file(), asset


def headless_chromium() -> Any:
    """A headless Chromium (selenium) that cannot resolve any host name: offline by force.

    Skips, saying what to install, where there is none; under CI (``CI`` set) that is a failure
    instead, since .ci/run installs it.
    """
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver = shutil.which("chromedriver")
    missing = []
    if not _have("selenium"):
        missing.append("selenium (pip install selenium)")
    if browser is None or driver is None:
        missing.append("Chromium and its driver (apt-get install chromium chromium-driver)")
    if missing:
        reason = "the rendered-site test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason + "; .ci/run installs them")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(driver)))


RENDERED = """
const article = document.querySelector("article");
const visible = article.cloneNode(true);
visible.querySelectorAll(".katex-mathml").forEach((node) => node.remove());
const main = [...document.fonts].filter((f) => f.family.replace(/"/g, "") === "KaTeX_Main");
return {
  formulas: article.querySelectorAll(".arithmatex").length,
  rendered: article.querySelectorAll(".arithmatex .katex").length,
  errors: article.querySelectorAll(".katex-error").length,
  text: visible.textContent,
  fonts: main.map((f) => f.status),
};
"""


def test_the_built_site_renders_its_math_offline(built_site: Path) -> None:
    """The Concepts page in a real headless browser with no network: every formula typeset by
    the bundled KaTeX with its fonts, no TeX source left in the visible text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser = headless_chromium()
    try:
        browser.get((built_site / "concepts" / "index.html").as_uri())
        # wait until typeset with the fonts in; what is checked is the page as it is then
        with contextlib.suppress(TimeoutException):
            WebDriverWait(browser, 30).until(
                lambda b: b.execute_script(
                    "return document.readyState === 'complete' && "
                    "document.querySelectorAll('article .arithmatex .katex').length > 0 && "
                    "[...document.fonts].every((f) => f.status !== 'loading')"
                )
            )
        page = browser.execute_script(RENDERED)
    finally:
        browser.quit()
    assert page["formulas"] > 50, page["formulas"]
    assert page["rendered"] == page["formulas"], "formulas left untypeset"
    assert page["errors"] == 0
    text = page["text"]
    for raw in ("\\(", "\\)", "\\[", "\\]", "\\sigma", "\\varepsilon", "\\gamma"):
        assert raw not in text, f"raw TeX {raw!r} on the rendered page"
    assert "loaded" in page["fonts"]  # the bundled woff2 fonts, not a fallback font


@pytest.mark.slow
def rows_missing(script: str, page: str, timeout: int) -> list[str]:
    """The table rows ``docs/scripts/<script>`` prints that ``docs/<page>`` lacks."""
    done = subprocess.run(
        [sys.executable, str(DOCS / "scripts" / script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    text = (DOCS / page).read_text(encoding="utf-8")
    return [r for r in done.stdout.splitlines() if r.startswith("| ") and r not in text]


def test_measured_tables_match_the_script() -> None:
    """Every table row ``docs/scripts/inversion_modes.py`` prints is on the Concepts page."""
    missing = rows_missing("inversion_modes.py", "concepts.md", 600)
    assert not missing, "rerun the script and paste its tables:\n" + "\n".join(missing)


@pytest.mark.slow
def test_solver_table_matches_the_script() -> None:
    """Every row ``docs/scripts/gen_solver_table.py`` prints is on the Solvers page (minutes)."""
    missing = rows_missing("gen_solver_table.py", "solvers.md", 1800)
    assert not missing, "rerun the script and paste its tables:\n" + "\n".join(missing)
