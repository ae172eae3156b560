"""How close zsampling's standard sampling is to ``FluxPipeline.__call__`` (docs/flux.md).

Run ``python docs/scripts/flux_parity.py``: the tiny offline FLUX.1-dev and schnell pipelines
(`zsampling.testing.tiny_flow`), saved and reloaded through the ``flux`` component, the same
noise; prints max |diff| / max |latent| per case (the tests assert <= 1e-5).
"""

from __future__ import annotations

import tempfile
from typing import Any

import torch

from zsampling import Standard, sample
from zsampling.adapters.flux import FluxAdapter, FluxModel, pack
from zsampling.guiders import TrueCFG
from zsampling.schedules import FlowMatch
from zsampling.testing.tiny_flow import write_tiny_flow_pipeline

PROMPTS = ["a red cube", "two cats"]


def relative(model: FluxModel, steps: int, ours: dict[str, Any], pipe: dict[str, Any]) -> float:
    x = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    ref = model.pipeline(
        PROMPTS,
        latents=pack(x),
        height=32,
        width=32,
        num_inference_steps=steps,
        output_type="latent",
        max_sequence_length=32,
        **pipe,
    ).images.double()
    run = sample(model, prompts=PROMPTS, noise=x, schedule=FlowMatch(steps=steps), **ours)
    return float((model.pack(run.latents).double() - ref).abs().max() / ref.abs().max())


def main() -> None:
    torch.set_num_threads(1)
    models = {}
    for family in ("flux", "flux-schnell"):
        folder = write_tiny_flow_pipeline(tempfile.mkdtemp(), family)
        loaded = FluxAdapter(path=str(folder), height=32, width=32, max_sequence_length=32).load()
        assert isinstance(loaded, FluxModel)
        models[family] = loaded
    negatives = ["blurry", "ugly"]
    cases = [
        ("dev, guidance 3.5, 28 steps", "flux", 28, {"sampler": Standard(guidance=3.5)}, {}),
        ("dev, guidance 1.0, 8 steps", "flux", 8, {"sampler": Standard(guidance=1.0)}, {}),
        (
            "dev, true CFG 4 at guidance 3.5, 8 steps",
            "flux",
            8,
            {
                "sampler": Standard(guidance=3.5),
                "guider": TrueCFG(true_cfg_scale=4.0),
                "negative_prompts": negatives,
            },
            {"negative_prompt": negatives, "true_cfg_scale": 4.0},
        ),
        ("schnell, 4 steps", "flux-schnell", 4, {"sampler": Standard(guidance=1.0)}, {}),
    ]
    print("| case | max abs diff / max abs latent |")
    print("| --- | --- |")
    for name, family, steps, ours, pipe in cases:
        if family == "flux":
            pipe = {"guidance_scale": ours["sampler"].guidance, **pipe}
        print(f"| {name} | {relative(models[family], steps, ours, pipe):.1e} |")


if __name__ == "__main__":
    main()
