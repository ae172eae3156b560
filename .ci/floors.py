"""Pin every declared floor of pyproject.toml (``name>=X`` -> ``name==X``) for .ci/run-floors.

``python .ci/floors.py EXTRA...`` prints pip constraints; ``--check EXTRA...`` fails unless the
installed versions are those floors. torch is left out: the CI installs the CPU wheel that lies on
the machine (see .ci/run-floors for why).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
FLOOR = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][0-9A-Za-z.\-]*)\s*$")


def floors(extras: list[str]) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    pinned: dict[str, str] = {}
    for spec in specs:
        match = FLOOR.match(spec.split(";")[0])
        if match is None:
            raise SystemExit(f"not a plain floor (name>=version): {spec!r}")
        pinned[match[1].lower()] = match[3]
    return pinned


def check(extras: list[str]) -> None:
    from importlib.metadata import version as installed

    from packaging.version import Version

    for name, floor in floors(extras).items():
        if name != "torch" and Version(installed(name)) != Version(floor):
            raise SystemExit(f"{name} {installed(name)} is installed, not its floor {floor}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--check"]:
        check(args[1:])
    else:
        for name, version in floors(args).items():
            if name != "torch":
                print(f"{name}=={version}")
