"""ComfyUI's start-up in a fresh process, with one folder as its only ``custom_nodes`` path.

``python tests/comfy_startup.py CUSTOM_NODES`` imports the vendored ComfyUI as `comfy_tiny` does,
registers ``CUSTOM_NODES`` through ``folder_paths``, runs ComfyUI's own ``init_extra_nodes`` (the
call its ``main.py`` makes: built-in extra nodes, then every pack in ``custom_nodes``), loads
the ``zsampling`` pack a second time through ``load_custom_node`` (ComfyUI reloads packs), and
prints, as one JSON line, what a user would see: the nodes ComfyUI registered and from where,
the sampler menus of KSampler, KSamplerAdvanced and KSamplerSelect, and whether ComfyUI's own
samplers are untouched. A process of its own, so that no other test has loaded the pack before.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_tiny import import_comfyui


def menus() -> dict[str, list[str]]:
    """The sampler_name menu of each sampler-picking node, as its inputs say now."""
    import nodes

    out: dict[str, list[str]] = {}
    for node in ("KSampler", "KSamplerAdvanced", "KSamplerSelect"):
        required = nodes.NODE_CLASS_MAPPINGS[node].INPUT_TYPES()["required"]
        out[node] = list(required["sampler_name"][0])
    return out


def main(custom_nodes: str) -> dict[str, Any]:
    import_comfyui()
    import comfy.k_diffusion.sampling as k_sampling
    import comfy.samplers
    import folder_paths
    import nodes

    folder_paths.folder_names_and_paths["custom_nodes"] = ([custom_nodes], set())
    builtin = list(comfy.samplers.KSampler.SAMPLERS)
    functions = {n: getattr(k_sampling, f"sample_{n}", None) for n in comfy.samplers.KSAMPLER_NAMES}
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    first = menus()
    pack = os.path.join(custom_nodes, "zsampling")
    reloaded = asyncio.run(nodes.load_custom_node(pack, module_parent="custom_nodes"))
    import zsampling

    ours = {k: v for k, v in nodes.NODE_CLASS_MAPPINGS.items() if k.startswith("ZSampling")}
    return {
        "nodes": sorted(ours),
        "modules": sorted({v.RELATIVE_PYTHON_MODULE for v in ours.values()}),
        "loaded_from": nodes.LOADED_MODULE_DIRS.get("zsampling"),
        "zsampling_package": zsampling.__file__,
        "builtin": builtin,
        "menus": first,
        "menus_after_reload": menus(),
        "reloaded": reloaded,
        "builtin_functions_kept": all(
            getattr(k_sampling, f"sample_{n}", None) is f for n, f in functions.items()
        ),
        "zsampling_functions": {  # which zsampling sampler each name's function runs
            n: getattr(k_sampling, f"sample_{n}").keywords["spec"].cls.name
            for n in comfy.samplers.KSAMPLER_NAMES
            if n.startswith("zsampling_")
        },
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
