"""Installing a plugin package the way a user does, for the tests that need one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def pip_install(package: Path, target: Path) -> Path:
    """``pip install package`` into the folder ``target`` (put it on PYTHONPATH to use it).

    pip builds from a copy, so no build files are left in the source tree.
    """
    source = target.with_name(target.name + "-src")
    shutil.copytree(package, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target
