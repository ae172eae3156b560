"""The custom-node folder on its own (no ComfyUI needed): what a user sees when zsampling is not
installed in ComfyUI's Python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACK = Path(__file__).resolve().parents[1] / "comfyui" / "zsampling_nodes" / "__init__.py"


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
