"""Integrations: zsampling inside other tools' ways of working.

`diffusers` gives a pipeline you hold a two-line ``generate``; `kdiffusion` gives every reflective
sampler k-diffusion's sampler-function signature (for tools built on ``sample_*`` functions).
"""
