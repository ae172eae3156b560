"""Whether a torch device named in a setting exists on this machine.

``torch.device("cuda")`` parses on any build; only using it fails, with an AssertionError
("Torch not compiled with CUDA enabled") from deep inside torch. Asking first turns that into a
message naming the setting.
"""

from __future__ import annotations

import torch

DEVICES = "cpu, cuda, cuda:<index>, mps"


def device_problem(name: str) -> str | None:
    """Why ``name`` is not a device this process can use, or None."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        return f"not a torch device; valid: {DEVICES}"
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return (
                "no CUDA device is available here (torch.cuda.is_available() is False); use 'cpu'"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return f"this machine has {count} CUDA device(s): cuda:0 to cuda:{count - 1}"
        return None
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return "no MPS (Apple GPU) device is available here; use 'cpu'"
        return None
    return f"a device type zsampling does not run on; valid: {DEVICES}"
