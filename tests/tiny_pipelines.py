"""Tiny offline diffusers pipelines for the tests (one copy of the builders: zsampling.testing).

The fixtures in conftest.py save each pipeline to a session folder and load it back through
`DiffusersAdapter`, so the real ``from_pretrained`` path runs; tests that need a pipeline with
another scheduler derive one with `with_scheduler` instead of mutating the shared fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zsampling.adapters.diffusers import DiffusersAdapter, DiffusersModel
from zsampling.testing.tiny import (
    latents_noise,
    tiny_sd_pipeline,
    tiny_sd_unet,
    tiny_sdxl_pipeline,
    tiny_sdxl_unet,
    write_tiny_pipeline,
    write_tiny_unet,
)

__all__ = [
    "latents_noise",
    "load_tiny",
    "tiny_sd_pipeline",
    "tiny_sd_unet",
    "tiny_sdxl_pipeline",
    "tiny_sdxl_unet",
    "with_scheduler",
    "write_tiny_pipeline",
    "write_tiny_unet",
]


def load_tiny(folder: Path, **settings: Any) -> DiffusersModel:
    """Load a saved tiny pipeline the way a config file would."""
    model = DiffusersAdapter(path=str(folder), **settings).load()
    assert isinstance(model, DiffusersModel)
    return model


def with_scheduler(model: DiffusersModel, scheduler_class: type, **options: Any) -> Any:
    """A new pipeline sharing the model's components, with another scheduler from its config."""
    pipe = model.pipeline
    scheduler = scheduler_class.from_config(pipe.scheduler.config, **options)
    other = type(pipe).from_pipe(pipe, scheduler=scheduler)
    other.set_progress_bar_config(disable=True)
    return other
