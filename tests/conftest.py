"""Shared fixtures: the analytic model is the ground truth most tests stand on."""

from __future__ import annotations

import pytest
import torch

from zsampling.adapters.analytic import AnalyticModel, demo_mixture


@pytest.fixture
def analytic() -> AnalyticModel:
    return AnalyticModel(demo_mixture())


@pytest.fixture
def noise64() -> torch.Tensor:
    """Float64 starting noise: 6 rows of the demo's 2-D latent."""
    return torch.randn(6, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


# -- tiny diffusers pipelines (tests/test_diffusers_*.py) -------------------------------------
# Built once per session, saved with save_pretrained and loaded back through DiffusersAdapter.


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tiny_pipelines import write_tiny_pipeline

    return write_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"), "sd")


@pytest.fixture(scope="session")
def tiny_sdv_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tiny_pipelines import write_tiny_pipeline

    return write_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd-v"), "sd-v")


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tiny_pipelines import write_tiny_pipeline

    return write_tiny_pipeline(tmp_path_factory.mktemp("tiny-sdxl"), "sdxl")


@pytest.fixture(scope="session")
def tiny_sd(tiny_sd_dir):  # type: ignore[no-untyped-def]
    from tiny_pipelines import load_tiny

    return load_tiny(tiny_sd_dir)


@pytest.fixture(scope="session")
def tiny_sdv(tiny_sdv_dir):  # type: ignore[no-untyped-def]
    from tiny_pipelines import load_tiny

    return load_tiny(tiny_sdv_dir)


@pytest.fixture(scope="session")
def tiny_sdxl(tiny_sdxl_dir):  # type: ignore[no-untyped-def]
    from tiny_pipelines import load_tiny

    return load_tiny(tiny_sdxl_dir)


@pytest.fixture
def single_thread():  # type: ignore[no-untyped-def]
    """Run a tiny-model test on one intra-op thread (restored afterwards).

    Tiny UNets are too small for torch's intra-op parallelism: on 2 shared cores one thread ran
    the diffusers tests 2.3x faster (56 s vs 132 s) and with half the CPU time.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
