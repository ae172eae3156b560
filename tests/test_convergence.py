"""On the analytic model the right answer is known: sampling must converge to it."""

from __future__ import annotations

import torch

from zsampling import CFG, DDIM, DPMSolverPP2M, Process, SamplingPath, Standard, Uniform, sample
from zsampling.adapters.analytic import AnalyticModel, GaussianMixture


def single_gaussian() -> AnalyticModel:
    mix = GaussianMixture(
        means=torch.tensor([[1.0, -0.5]], dtype=torch.float64),
        variances=torch.tensor([[0.3, 0.05]], dtype=torch.float64),
        weights=torch.ones(1, dtype=torch.float64),
        labels=torch.tensor([0]),
        class_names=("only",),
    )
    return AnalyticModel(mix)


def exact_flow(model: AnalyticModel, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """A Gaussian's probability-flow ODE is affine: map x from sigmas[0] to sigmas[-1] exactly."""
    vp = Process("vp")
    a0, s0 = vp.coefficients(sigmas[:1])
    a1, s1 = vp.coefficients(sigmas[-1:])
    mu, v = model.mixture.means[0], model.mixture.variances[0]
    z = (x - a0 * mu) / (a0**2 * v + s0**2).sqrt()
    return a1 * mu + (a1**2 * v + s1**2).sqrt() * z


def flow_error(model: AnalyticModel, steps: int, solver: DDIM | DPMSolverPP2M) -> float:
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sig = Uniform(steps=steps).sigmas(model)
    out = sample(
        model, Standard(guidance=1.0), prompts=["only"] * 200, noise=x, sigmas=sig, solver=solver
    ).latents
    return float((out - exact_flow(model, x, sig)).abs().max())


def test_ddim_is_first_order_and_2m_is_better() -> None:
    model = single_gaussian()
    ddim = {t: flow_error(model, t, DDIM()) for t in (25, 50, 100, 200)}
    dpm = {t: flow_error(model, t, DPMSolverPP2M()) for t in (50, 100, 200)}
    for t in (25, 50, 100):
        assert 1.6 < ddim[t] / ddim[2 * t] < 2.4, ddim  # error halves when steps double
    for t in (50, 100, 200):
        assert dpm[t] < 0.75 * ddim[t], (dpm, ddim)
    assert dpm[200] < 0.01


def sliced_w1(a: torch.Tensor, b: torch.Tensor) -> float:
    """Sliced 1-Wasserstein distance between two equal-size 2-D samples (64 fixed directions)."""
    theta = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    theta = theta / theta.norm(dim=1, keepdim=True)
    pa, pb = (a @ theta.T).sort(0).values, (b @ theta.T).sort(0).values
    return float((pa - pb).abs().mean())


def test_ddim_converges_to_the_exact_mixture(analytic: AnalyticModel) -> None:
    n, mix = 20000, analytic.mixture
    dist = {}
    for steps in (2, 8, 64):
        sig = Uniform(steps=steps).sigmas(analytic)
        start = mix.sample(n, torch.Generator().manual_seed(3), sigma=float(sig[0]))
        out = sample(
            analytic, Standard(guidance=0.0), prompts=["red"] * n, noise=start, sigmas=sig
        ).latents
        exact = mix.sample(n, torch.Generator().manual_seed(4), sigma=float(sig[-1]))
        dist[steps] = sliced_w1(out, exact)
    floor = sliced_w1(
        mix.sample(n, torch.Generator().manual_seed(5)),
        mix.sample(n, torch.Generator().manual_seed(6)),
    )
    # measured: 0.363, 0.117, 0.022 against a sampling floor of about 0.013
    assert dist[2] > 2 * dist[8] > 4 * dist[64] / 1.5
    assert dist[64] < 3 * floor


def round_trip_error(model: AnalyticModel, steps: int) -> float:
    sig = Uniform(steps=steps).sigmas(model)
    x0 = model.mixture.sample(200, torch.Generator().manual_seed(3), sigma=float(sig[-1]))
    path = SamplingPath(
        sig, model.process, {"main": CFG().bind(model, *model.encode(["red"] * 200))}, DDIM()
    )
    x = x0
    for i in reversed(range(steps)):
        x = path.invert(x, i, 0.0)
    for i in range(steps):
        x = path.denoise(x, i, 0.0)
    return float((x - x0).abs().max())


def test_inversion_round_trip_shrinks_with_step_size(analytic: AnalyticModel) -> None:
    errors = [round_trip_error(analytic, t) for t in (10, 50, 200)]
    assert errors[0] > 3 * errors[1] > 9 * errors[2], errors  # measured 0.74, 0.18, 0.046


def test_single_ddim_step_inverts_exactly_with_the_same_prediction(analytic: AnalyticModel) -> None:
    sig = Uniform(steps=10).sigmas(analytic)
    path = SamplingPath(
        sig, analytic.process, {"main": CFG().bind(analytic, *analytic.encode(["red"]))}, DDIM()
    )
    x = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
    pred = path.predict(x, 3, 2.0)
    down = path.ddim(x, pred, 4)
    at4 = [torch.tensor(c, dtype=torch.float64) for c in (path.point(4).alpha, path.point(4).s)]
    back = path.ddim(down, pred.reinterpret(down, *at4), 3)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-12)
