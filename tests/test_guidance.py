"""The guider evaluates only the branches a scale needs, in one batched call, and counts it."""

from __future__ import annotations

import pytest
import torch

from zsampling import CFG, InvalidArgument
from zsampling.adapters.analytic import AnalyticModel


def branches(model: AnalyticModel, x: torch.Tensor, sigma: float):  # type: ignore[no-untyped-def]
    cond, uncond = model.encode(["red", "blue"])
    sig = torch.full((2,), sigma, dtype=torch.float64)
    return model.predict(x, sig, cond), model.predict(x, sig, uncond)


@pytest.mark.parametrize(
    ("scale", "calls", "cond_rows", "uncond_rows"), [(0.0, 1, 0, 2), (1.0, 1, 2, 0), (3.5, 1, 2, 2)]
)
def test_branches_evaluated_per_scale(
    analytic: AnalyticModel, scale: float, calls: int, cond_rows: int, uncond_rows: int
) -> None:
    x = torch.tensor([[0.2, 0.9], [-1.0, 0.1]], dtype=torch.float64)
    guider = CFG().bind(analytic, *analytic.encode(["red", "blue"]))
    pred = guider(x, 1.3, scale)
    c = guider.counter
    assert (c.model_calls, c.cond_rows, c.uncond_rows) == (calls, cond_rows, uncond_rows)
    cond, uncond = branches(analytic, x, 1.3)
    torch.testing.assert_close(pred.eps, uncond.eps + scale * (cond.eps - uncond.eps))
    torch.testing.assert_close(pred.x0, uncond.x0 + scale * (cond.x0 - uncond.x0))


def test_both_branches_always_when_asked(analytic: AnalyticModel) -> None:
    x = torch.zeros(2, 2, dtype=torch.float64)
    guider = CFG(skip_unused_branches=False).bind(analytic, *analytic.encode(["red", "blue"]))
    a = guider(x, 2.0, 0.0)
    assert (guider.counter.cond_rows, guider.counter.uncond_rows, guider.counter.rows) == (2, 2, 4)
    b = CFG().bind(analytic, *analytic.encode(["red", "blue"]))(x, 2.0, 0.0)
    torch.testing.assert_close(a.eps, b.eps)


def test_guided_pair_stays_consistent(analytic: AnalyticModel) -> None:
    x = torch.tensor([[0.5, -0.5], [1.5, 0.3]], dtype=torch.float64)
    pred = CFG().bind(analytic, *analytic.encode(["red", "green"]))(x, 0.8, 4.0)
    alpha, s = analytic.process.coefficients(torch.tensor(0.8, dtype=torch.float64))
    torch.testing.assert_close(alpha * pred.x0 + s * pred.eps, x)


def test_negative_prompt_is_the_unconditional_branch(analytic: AnalyticModel) -> None:
    _, uncond = analytic.encode(["red"], ["blue"])
    assert uncond["label"].tolist() == [2]


def test_no_uncond_branch_needs_scale_one(analytic: AnalyticModel) -> None:
    cond, _ = analytic.encode(["red"])
    guider = CFG().bind(analytic, cond, None)
    guider(torch.zeros(1, 2), 1.0, 1.0)
    with pytest.raises(InvalidArgument, match=r"guidance = 2\.0"):
        guider(torch.zeros(1, 2), 1.0, 2.0)
