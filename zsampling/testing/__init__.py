"""Helpers for tests and examples: tiny random-weight models that need no download."""
