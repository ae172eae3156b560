"""Patches: components that change the model before sampling, applied in config order."""
