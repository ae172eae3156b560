"""Dependencies by use: a missing optional dependency is a message naming the extra to install,
from Python and from the command line (simulated by blocking the module in ``sys.modules``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from zsampling.core.extras import DISTRIBUTIONS, MissingExtra, extra
from zsampling.evaluation.stats import wilson
from zsampling.runs.distributed import current_shard

ROOT = Path(__file__).resolve().parents[1]


def test_the_core_install_has_none_of_the_optional_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = " ".join(project["dependencies"])
    for distribution in DISTRIBUTIONS.values():
        assert distribution not in core, distribution
    extras = project["optional-dependencies"]
    assert {"eval", "distributed", "docs", "dev"} <= set(extras)
    assert any(d.startswith("zsampling[") and "eval" in d for d in extras["dev"])


def test_a_blocked_optional_module_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(MissingExtra) as caught:
        wilson(3, 10)
    assert str(caught.value) == (
        "Wilson intervals needs scipy, which is not installed: it comes with the 'eval' extra "
        '(pip install "zsampling[eval]")'
    )
    assert isinstance(caught.value, ImportError)  # callers that catch ImportError still do


def test_accelerate_is_the_distributed_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "accelerate", None)
    with pytest.raises(MissingExtra, match=r"zsampling\[distributed\]") as caught:
        current_shard()
    assert (caught.value.distribution, caught.value.extra) == ("accelerate", "distributed")


def test_other_import_errors_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(ModuleNotFoundError) as caught, extra("eval", "A test"):
        import torchvision  # noqa: F401
    assert not isinstance(caught.value, MissingExtra)


def test_the_command_line_names_the_extra_without_a_traceback(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['scipy'] = None; from zsampling.cli import main; "
        f"sys.argv = ['zsampling', 'eval', {str(ROOT / 'examples' / 'pairs-eval.toml')!r}, "
        f"'--out', {str(tmp_path)!r}]; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert "needs scipy, which is not installed" in message
    assert 'pip install "zsampling[eval]"' in message
