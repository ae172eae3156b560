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
