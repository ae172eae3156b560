"""The node pack installed the way ComfyUI-Manager and ``comfy node install`` install packs.

The pack folder is copied into a fresh ``custom_nodes`` under the name a registry install gives
it (the registry id, ``zsampling``), its ``requirements.txt`` goes through pip with ComfyUI's
torch pinned, and a fresh ComfyUI process starts with that folder as its only ``custom_nodes``
path (`comfy_startup`), loading the pack through its own ``init_extra_nodes``. Nothing is
written into the vendored ComfyUI. pip runs with ``--no-index``: these machines reach no
package index, so the requirements must already be met by ComfyUI's venv plus zsampling
installed from the checkout (what .ci/run-comfyui does before the tests; see docs/comfyui.md
for release day, when pip fetches zsampling from PyPI instead).

Runs in the ComfyUI venv (.ci/run-comfyui); skips elsewhere, saying why.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from comfy_tiny import PACK, import_comfyui

import_comfyui()

from comfy_config import config_parser  # noqa: E402
from packaging.requirements import Requirement  # noqa: E402
from packaging.version import Version  # noqa: E402

from zsampling.core.version import VERSION  # noqa: E402
from zsampling.integrations.comfyui.ksampler import ROUTES, ksampler_name  # noqa: E402

STARTUP = Path(__file__).resolve().parent / "comfy_startup.py"
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
OURS = [ksampler_name(r) for r in ROUTES]


def installed_torch() -> dict[str, str]:
    out = {}
    for name in TORCH_FAMILY:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def pip_install_requirements(pack: Path, pins: Path) -> subprocess.CompletedProcess[str]:
    """``pip install -r requirements.txt`` in the pack, as the Manager runs it, torch pinned."""
    command = [
        sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
        "--no-input", "-c", str(pins), "-r", str(pack / "requirements.txt"),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, cwd=pack, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    custom_nodes = tmp_path_factory.mktemp("comfyui") / "custom_nodes"
    pack = custom_nodes / "zsampling"
    shutil.copytree(PACK, pack, ignore=shutil.ignore_patterns("__pycache__"))
    torch_before = installed_torch()
    pins = custom_nodes.parent / "torch-pins.txt"
    pins.write_text("".join(f"{n}=={v}\n" for n, v in torch_before.items()))
    pip = pip_install_requirements(pack, pins)
    started = subprocess.run(
        [sys.executable, str(STARTUP), str(custom_nodes)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert started.returncode == 0, started.stderr[-4000:]
    return {
        "pack": pack,
        "pip": pip,
        "torch_before": torch_before,
        "torch_after": installed_torch(),
        "comfyui": json.loads(started.stdout.strip().splitlines()[-1]),
    }


def test_requirements_install_without_touching_comfyuis_torch(installed: dict[str, Any]) -> None:
    pip = installed["pip"]
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert "Requirement already satisfied: zsampling" in pip.stdout
    assert "Successfully installed" not in pip.stdout  # ComfyUI's venv plus the checkout: a no-op
    assert installed["torch_before"]["torch"]
    assert installed["torch_after"] == installed["torch_before"]


def test_zsamplings_torch_floor_is_met_by_comfyuis_torch() -> None:
    """zsampling's own torch requirement (a floor) holds for the torch ComfyUI runs on."""
    requires = [Requirement(r) for r in importlib.metadata.requires("zsampling") or []]
    (torch_req,) = [r for r in requires if r.name == "torch" and r.marker is None]
    torch_version = Version(importlib.metadata.version("torch")).public
    assert torch_req.specifier.contains(torch_version)


def test_comfyuis_loader_registers_the_nodes_from_the_installed_folder(
    installed: dict[str, Any],
) -> None:
    seen = installed["comfyui"]
    assert seen["nodes"] == sorted(
        ["ZSamplingZigzag", "ZSamplingRestart", "ZSamplingW2SD", "ZSamplingSampler",
         "ZSamplingUniformSigmas", "ZSamplingSigmas", "ZSamplingGuider"]
    )  # fmt: skip
    assert seen["modules"] == ["custom_nodes.zsampling"]
    assert Path(seen["loaded_from"]) == installed["pack"]
    # a pack folder named zsampling does not shadow the package it imports
    assert Path(seen["zsampling_package"]).parent.name == "zsampling"
    assert Path(seen["zsampling_package"]).parent != installed["pack"]


def test_the_route_samplers_join_every_sampler_menu_once(installed: dict[str, Any]) -> None:
    seen = installed["comfyui"]
    builtin = seen["builtin"]
    assert "euler" in builtin and not any(n.startswith("zsampling") for n in builtin)
    for node in ("KSampler", "KSamplerAdvanced", "KSamplerSelect"):
        # ComfyUI's own names first, unchanged and in their order; ours once each
        assert seen["menus"][node] == builtin + OURS, node
    assert seen["reloaded"] is True
    assert seen["menus_after_reload"] == seen["menus"]
    assert seen["builtin_functions_kept"] is True
    assert seen["zsampling_functions"] == {ksampler_name(r): r for r in ROUTES}


def test_comfyui_reads_the_packs_pyproject() -> None:
    """What ComfyUI's loader (and the registry, from the same fields) reads from the pack."""
    config = config_parser.extract_node_configuration(str(PACK))
    assert config is not None
    assert config.project.name == "zsampling"
    assert config.project.version == VERSION
    assert config.project.dependencies == [f"zsampling>={VERSION}"]
    assert config.tool_comfy.publisher_id == "zsampling"
    assert config.tool_comfy.display_name.startswith("zsampling")
