"""The wheel carries what docs/packaging.md says: the package with every data file, the licence
files, and nothing from tests/, docs/ or examples/; under 15 MB.

The wheel is built from a copy of the sources (nothing is written into the checkout), without
build isolation so it needs no network. `.ci/run-wheel` checks the rest of the release path
(twine, the sdist, an install outside the checkout).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 15 * 1000 * 1000
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "NOTICE", "MANIFEST.in", "CHANGELOG.md")


def build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "zsampling", src / "zsampling", ignore=ignore)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), "."],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("zsampling-*.whl")
    return wheel


def test_the_wheel_carries_the_package_its_data_and_its_licence(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    package = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "zsampling").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    missing = package - names
    assert not missing, f"files of zsampling/ the wheel leaves out (package-data?): {missing}"
    licences = {n.split("/", 1)[1] for n in names if ".dist-info/" in n}
    assert {"licenses/LICENSE", "licenses/NOTICE"} <= licences, licences
    outside = {n for n in names if not n.startswith(("zsampling/", "zsampling-"))}
    assert not outside, outside
    assert wheel.stat().st_size < LIMIT, wheel.stat().st_size
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
