"""zsampling's ComfyUI node pack: installed into ``custom_nodes`` like any other pack.

ComfyUI-Manager, ``comfy node install zsampling`` or a copy of this folder plus
``pip install -r requirements.txt`` (docs/comfyui.md). The nodes live in the installed
``zsampling`` package, which ``requirements.txt`` pulls in; this folder only exposes them, with
absolute imports, because ComfyUI loads a custom-node folder as a module of its own where
relative imports into the package cannot work. Loading it also adds zsampling's route samplers
(``zsampling_zigzag``, ...) to the sampler list of ComfyUI's ``KSampler`` nodes.
"""

try:
    from zsampling.integrations.comfyui.ksampler import register_ksampler_samplers
    from zsampling.integrations.comfyui.nodes import (
        NODE_CLASS_MAPPINGS,
        NODE_DISPLAY_NAME_MAPPINGS,
    )
except ModuleNotFoundError as err:  # zsampling itself missing from ComfyUI's Python
    if err.name is None or not err.name.startswith("zsampling"):
        raise
    raise ImportError(
        "zsampling_nodes needs the zsampling package in the Python that runs ComfyUI: "
        "run `python -m pip install -r requirements.txt` in this folder (or "
        "`python -m pip install zsampling`) with that Python, then restart ComfyUI"
    ) from err

register_ksampler_samplers()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
