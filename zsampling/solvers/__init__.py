"""Solvers beyond DDIM and DPM-Solver++(2M): one file per method, each a `zsampling.core.solvers`
solver registered in `zsampling.plugins.builtins` (import them from their modules)."""
