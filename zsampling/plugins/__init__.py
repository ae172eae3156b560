"""The plugin system: hook specs, the registry, and how plugins are found."""

import pluggy

hookimpl = pluggy.HookimplMarker("zsampling")
"""Decorate your plugin's hook implementations with this."""

__all__ = ["hookimpl"]
