"""The frontier protocol on the analytic testbed, where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from zsampling.evaluation.frontier import (
    equivalent_scale,
    place,
    real_arm,
    run_arm,
    sanity_gate,
    sweep_arms,
)
from zsampling.evaluation.report import verdict
from zsampling.evaluation.testbeds import Testbed, analytic_testbed
from zsampling.metrics.sets import RANKABLE
from zsampling.samplers import Standard, Zigzag


def test_equivalent_scale_inverts_the_curve_and_never_extrapolates() -> None:
    scales = np.array([1.0, 2.0, 4.0])
    alignment = np.array([-1.0, -0.5, -0.1])
    assert equivalent_scale(scales, alignment, -0.5) == pytest.approx(2.0)
    between = [equivalent_scale(scales, alignment, a) for a in (-0.45, -0.3, -0.15)]
    assert 2.0 < between[0] < between[1] < between[2] < 4.0  # monotone, inside the interval
    assert np.isnan(equivalent_scale(scales, alignment, -0.05))  # beyond the sweep
    # a dip at high scale (sampling noise) does not make the inverse ambiguous
    bumpy = np.array([-1.0, -0.4, -0.5])
    assert 1.0 < equivalent_scale(scales, bumpy, -0.7) < 2.0


@pytest.fixture(scope="module")
def analytic() -> tuple[Testbed, list, object]:  # type: ignore[type-arg]
    testbed = analytic_testbed(items_per_prompt=60)
    testbed.sweep = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]
    return testbed, sweep_arms(testbed), real_arm(testbed)


def test_every_item_has_its_own_noise() -> None:
    prompts, seeds = analytic_testbed(items_per_prompt=7).items()
    assert len(set(seeds)) == len(seeds) == len(prompts) == 21


def test_the_sanity_gate_holds_for_energy_on_the_analytic_testbed(analytic) -> None:  # type: ignore[no-untyped-def]
    testbed, sweep, real = analytic
    gate = sanity_gate(testbed, real, sweep)
    assert set(gate) == set(RANKABLE)
    assert gate["energy"]["passes"], gate["energy"]
    # real data (exact samples) sit at ~0; strong guidance is far from the data
    assert abs(real.fidelity["energy"]) < 0.05
    assert sweep[-1].fidelity["energy"] > 1.0


def test_a_cfg_arm_between_sweep_scales_lands_on_the_curve(analytic) -> None:  # type: ignore[no-untyped-def]
    """Standard CFG at 2.75, run as a 'method', must be placed at scale ~2.75 with a fidelity
    difference whose interval covers 0: the protocol finds nothing where there is nothing."""
    testbed, sweep, _ = analytic
    probe = run_arm(testbed, "probe", "standard 2.75", "method", Standard(guidance=2.75))
    placed = place(testbed, sweep, [probe], replicates=200)["probe"]
    assert placed["equivalent_scale"]["value"] == pytest.approx(2.75, abs=0.05)
    lo, hi = placed["delta_at_equal_alignment"]["ci95"]
    margin = placed["interpolation_margin"]
    assert lo - margin <= 0.0 <= hi + margin, placed
    assert verdict({"ranks": True}, placed) == "on the CFG frontier"


def test_zigzag_acts_like_a_larger_scale(analytic) -> None:  # type: ignore[no-untyped-def]
    """To first order one zigzag round is one step at 2 gamma1 - gamma2 (GA-Eval): with the
    `target` zag at gamma1 = 2 the equivalent scale is close to 4."""
    testbed, sweep, _ = analytic
    zig = run_arm(
        testbed, "zig", "zigzag target", "method", Zigzag(guidance=2.0, inversion="target")
    )
    placed = place(testbed, sweep, [zig], replicates=100)["zig"]
    assert placed["equivalent_scale"]["value"] == pytest.approx(4.0, abs=0.3)
    assert zig.guided_calls_per_item == 3 * testbed.steps - 2


def test_degenerate_resamples_give_no_interval_instead_of_failing() -> None:
    """With two items per prompt, a quarter of a prompt's resamples repeat one item, where the
    energy distance has no estimate: placing a method must say "no interval", not raise."""
    testbed = analytic_testbed(items_per_prompt=2)
    testbed.sweep = [1.0, 2.0, 3.0, 4.0]
    sweep = sweep_arms(testbed)
    probe = run_arm(testbed, "probe", "standard 2.5", "method", Standard(guidance=2.5))
    placed = place(testbed, sweep, [probe], replicates=40)["probe"]
    assert placed["delta_at_equal_alignment"]["ci95"] is None
    assert placed["alignment"]["ci95"] is not None  # alignment is defined on every resample
