"""The custom-node folder on its own (no ComfyUI needed): what a user sees when zsampling is not
installed in ComfyUI's Python, and the metadata ComfyUI-Manager and the Comfy registry read.
(tests/test_comfyui_install.py installs and loads it in ComfyUI.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

from zsampling.core.version import VERSION

FOLDER = Path(__file__).resolve().parents[1] / "comfyui" / "zsampling_nodes"
PACK = FOLDER / "__init__.py"


def test_the_pack_says_how_to_install_zsampling_when_it_is_missing() -> None:
    # loaded as ComfyUI's loader does (a module from a file), with zsampling unimportable
    code = (
        "import importlib.util, sys\n"
        "sys.modules['zsampling'] = None\n"
        f"spec = importlib.util.spec_from_file_location('zsampling_nodes', {str(PACK)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: zsampling_nodes needs the zsampling package in the Python")
    assert "pip install zsampling" in last


def requirement_lines() -> list[str]:
    text = (FOLDER / "requirements.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_requirements_pull_zsampling_at_this_version_and_never_torch() -> None:
    """What ComfyUI-Manager and comfy-cli pip-install: zsampling (which this checkout satisfies,
    so CI can install it before the release), nothing that would replace ComfyUI's torch."""
    requirements = [Requirement(line) for line in requirement_lines()]
    assert [r.name for r in requirements] == ["zsampling"]
    assert requirements[0].specifier.contains(VERSION)
    assert not {r.name.lower() for r in requirements} & {"torch", "torchvision", "torchaudio"}


def test_pyproject_carries_the_registry_fields() -> None:
    config = tomllib.loads((FOLDER / "pyproject.toml").read_text())
    project, comfy = config["project"], config["tool"]["comfy"]
    assert project["name"] == "zsampling"
    assert project["version"] == VERSION  # the pack is released with the library
    assert project["dependencies"] == requirement_lines()
    assert project["license"] == {"text": "Apache-2.0"}
    assert {"PublisherId", "DisplayName", "Icon", "includes"} <= set(comfy)
    assert comfy["PublisherId"] and comfy["DisplayName"]
