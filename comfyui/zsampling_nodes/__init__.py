"""zsampling's ComfyUI nodes: link (or copy) this folder into ComfyUI's ``custom_nodes``.

The nodes live in the installed ``zsampling`` package (``pip install zsampling`` into ComfyUI's
Python); this folder only exposes them, with absolute imports, because ComfyUI loads a custom
node folder as a module of its own where relative imports into the package cannot work.
See docs/comfyui.md.
"""

try:
    from zsampling.integrations.comfyui.nodes import (
        NODE_CLASS_MAPPINGS,
        NODE_DISPLAY_NAME_MAPPINGS,
    )
except ModuleNotFoundError as err:  # zsampling itself missing from ComfyUI's Python
    if err.name is None or not err.name.startswith("zsampling"):
        raise
    raise ImportError(
        "zsampling_nodes needs the zsampling package in the Python that runs ComfyUI: "
        "run `python -m pip install zsampling` (or `pip install -e <zsampling checkout>`) "
        "with that Python, then restart ComfyUI"
    ) from err

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
