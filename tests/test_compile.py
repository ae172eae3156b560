"""``torch.compile``: a compiled UNet runs through zsampling's path and compiles only while the
first step runs (the shapes of a run's calls: both CFG branches, and the unconditional branch
alone in a zigzag's zag), never again afterwards, however many levels follow.

The fast tests count compilations with a backend that compiles nothing (dynamo traces, guards
and recompiles exactly as it would for inductor); the slow one compiles with inductor and checks
the latents against the eager UNet's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from zsampling import Standard, Uniform, Zigzag, sample
from zsampling.adapters.diffusers import DiffusersAdapter, DiffusersModel
from zsampling.core.events import StepEvent

PROMPTS = ["a red cube", "a cat on a mat"]
SEEDS = [3, 4]
STEPS = 6


class Counting:
    """A dynamo backend that runs the traced graph as it is and counts the graphs it was given."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: Any) -> Any:
        self.graphs += 1
        return gm.forward


@pytest.fixture
def compiled(tiny_sd: DiffusersModel) -> Iterator[tuple[DiffusersModel, Counting]]:
    torch._dynamo.reset()
    backend = Counting()
    pipe = tiny_sd.pipeline
    eager = pipe.unet
    pipe.unet = torch.compile(eager, backend=backend)
    try:
        yield DiffusersModel(pipe), backend
    finally:
        pipe.unet = eager
        torch._dynamo.reset()


def graphs_by_step(model: DiffusersModel, sampler: Any, backend: Counting) -> list[int]:
    """Graphs compiled so far after each event of the run, by the step the event belongs to
    (an event leaving level ``i`` downwards, or arriving at it upwards, is step ``i``)."""
    seen: dict[int, int] = {}

    def observe(event: StepEvent) -> None:
        step = event.src if event.kind == "denoise" else event.dst
        seen[step] = backend.graphs

    sample(
        model,
        sampler,
        prompts=PROMPTS,
        seeds=SEEDS,
        schedule=Uniform(steps=STEPS),
        observers=[observe],
    )
    return [seen[i] for i in range(STEPS)]


@pytest.mark.parametrize(
    "sampler",
    [
        Standard(guidance=5.0),
        Zigzag(guidance=5.0),  # zags at scale 0: the unconditional rows alone
        Zigzag(guidance=5.0, inversion="official", inversion_guidance=2.0),
    ],
    ids=["standard", "zigzag", "zigzag-official"],
)
def test_a_compiled_unet_compiles_during_the_first_step_only(
    compiled: tuple[DiffusersModel, Counting], sampler: Any
) -> None:
    model, backend = compiled
    counts = graphs_by_step(model, sampler, backend)
    assert counts[0] >= 1  # it did compile (the UNet really ran compiled) ...
    assert counts == [counts[0]] * STEPS  # ... and never after the first step
    # A second run with other prompts and seeds reuses every graph.
    before = backend.graphs
    sample(model, sampler, prompts=["x", "y"], seeds=[7, 8], schedule=Uniform(steps=STEPS))
    assert backend.graphs == before


def test_the_adapter_compiles_its_unet_on_request(tiny_sd_dir: Any) -> None:
    """``compile = true`` in a config: the loaded UNet is ``torch.compile``'s module."""
    model = DiffusersAdapter(path=str(tiny_sd_dir), compile=True).load()
    assert isinstance(model, DiffusersModel)
    assert isinstance(model.unet, torch._dynamo.eval_frame.OptimizedModule)
    assert not DiffusersAdapter(path=str(tiny_sd_dir)).compile


@pytest.mark.slow
def test_an_inductor_compiled_unet_gives_the_eager_latents(tiny_sd: DiffusersModel) -> None:
    """Slow (inductor compiles C++ for the tiny UNet: 6 minutes on 2 busy CPUs)."""
    torch._dynamo.reset()
    zig = Zigzag(guidance=5.0)
    eager = sample(tiny_sd, zig, prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=STEPS))
    pipe = tiny_sd.pipeline
    unet = pipe.unet
    pipe.unet = torch.compile(unet)
    try:
        with torch.compiler.set_stance("default"):
            first = sample(
                DiffusersModel(pipe), zig, prompts=PROMPTS, seeds=SEEDS, schedule=Uniform(steps=2)
            )
        # Every shape compiled: from here on a recompile is an error.
        with torch.compiler.set_stance("fail_on_recompile"):
            compiled = sample(
                DiffusersModel(pipe),
                zig,
                prompts=PROMPTS,
                seeds=SEEDS,
                schedule=Uniform(steps=STEPS),
            )
    finally:
        pipe.unet = unet
        torch._dynamo.reset()
    assert first.latents.shape == compiled.latents.shape
    assert float((compiled.latents - eager.latents).abs().max()) <= 1e-3
