"""Benchmark fixtures: one thread, tiny pipelines saved and loaded like a config would load them.

Run with ``python -m pytest benchmarks --benchmark-only -q`` (the default test run only collects
``tests/``). Everything runs on one intra-op thread: tiny models gain nothing from torch's
parallelism and timings on a shared CPU are steadier that way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from zsampling.testing.tiny import write_tiny_pipeline

    return write_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"), "sd")


@pytest.fixture(scope="session")
def tiny_sd(tiny_sd_dir: Path) -> Any:
    from zsampling.adapters.diffusers import DiffusersAdapter

    return DiffusersAdapter(path=str(tiny_sd_dir)).load()


@pytest.fixture(scope="session")
def digits() -> Any:
    from zsampling.adapters.digits import DigitsAdapter

    return DigitsAdapter().load()
