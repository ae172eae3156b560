"""Print pip constraints that pin every declared floor of pyproject.toml (``name>=X`` -> ``name==X``).

Used by .ci/run-floors to install zsampling at its minimum supported versions. torch is left out:
the CI installs the CPU wheel that lies on the machine (see .ci/run-floors for why).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

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


if __name__ == "__main__":
    for name, version in floors(sys.argv[1:]).items():
        if name != "torch":
            print(f"{name}=={version}")
