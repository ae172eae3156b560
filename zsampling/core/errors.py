"""Errors a user can act on.

Every error zsampling raises for bad input names the field, the value it got and what would be
valid, so that the CLI can print it as one paragraph (and exit with code 2) instead of a traceback.
"""

from __future__ import annotations

from typing import Any


class ZSamplingError(Exception):
    """Base class: something the user (or a plugin author) can fix."""


class InvalidArgument(ZSamplingError, ValueError):
    """A value is outside what is valid; the message says which field, what value, what is valid."""

    def __init__(self, field: str, value: Any, valid: str) -> None:
        self.field = field
        self.value = value
        self.valid = valid
        super().__init__(f"{field} = {value!r} is invalid: {valid}")


class RunFailure(ZSamplingError):
    """Generation failed for a reason outside the config (memory, a plugin's bug)."""


class NonFiniteLatents(ZSamplingError, FloatingPointError):
    """A latent became NaN/inf: we stop rather than hand back a silently wrong sample."""


def check_finite(x: Any, field: str, hint: str = "") -> None:
    """Raise `NonFiniteLatents` naming `field` when tensor `x` has NaN or inf entries."""
    import torch

    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        msg = f"{field} has {bad} non-finite value(s) (NaN or inf) out of {x.numel()}"
        raise NonFiniteLatents(msg + (f"; {hint}" if hint else ""))
