"""The example workflows (examples/comfyui/*.json) run through ComfyUI's own prompt execution.

Each JSON is validated by ComfyUI's ``execution.validate_prompt`` and run by its
``execution.PromptExecutor``, as the server runs a queued prompt, at 64 px on the tiny
SD1.5-type UNet. Only what needs real weights is substituted: the checkpoint loader (a stand-in
registered under its name, reading a placeholder file from a temporary ``checkpoints`` folder
registered with ``folder_paths``) hands out the tiny model, a CLIP whose conditioning is seeded
from the prompt's text, and a VAE that upsamples the latent and records it. ComfyUI's own
CLIPTextEncode, VAEDecode and SaveImage nodes run as they are.

Runs in the ComfyUI venv (.ci/run-comfyui); skips elsewhere, saying why.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
import torch
from comfy_tiny import (
    ROOT,
    conditioning,
    import_comfyui,
    load_custom_sampling,
    model_sigmas,
    run,
    tiny_patcher,
)

import_comfyui()

import comfy.samplers  # noqa: E402
import execution  # noqa: E402
import folder_paths  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from zsampling.testing.compare import relative_max as rel  # noqa: E402

nodes = load_custom_sampling()
# torchsde's notes on float32 ends of ComfyUI's Brownian tree (ComfyUI's own runs print them too)
pytestmark = pytest.mark.filterwarnings("ignore:Should have t:UserWarning")
WORKFLOWS = sorted((ROOT / "examples" / "comfyui").glob("*.json"))
PX = 64


class TinyClip:
    """What CLIPTextEncode calls: ``tokenize`` then ``encode_from_tokens_scheduled``."""

    def tokenize(self, text: str) -> str:
        return text

    def encode_from_tokens_scheduled(self, text: str) -> list[list[Any]]:
        return conditioning(zlib.crc32(text.encode()))


class TinyVAE:
    """What VAEDecode calls: ``decode(latent) -> images`` (B, H, W, 3) in [0, 1]."""

    def __init__(self) -> None:
        self.latents: list[torch.Tensor] = []

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        self.latents.append(latent.clone())
        rgb = torch.sigmoid(latent[:, :3] / 50)
        return rgb.repeat_interleave(8, -1).repeat_interleave(8, -2).movedim(1, -1)


class Server:
    """The part of ComfyUI's PromptServer that PromptExecutor talks to."""

    client_id = None
    last_node_id = None

    def send_sync(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    made: dict[str, Any] = {"patcher": tiny_patcher(), "vae": TinyVAE()}

    class TinyCheckpointLoader(nodes.CheckpointLoaderSimple):  # type: ignore[misc]
        def load_checkpoint(self, ckpt_name: str) -> tuple[Any, ...]:
            assert folder_paths.get_full_path("checkpoints", ckpt_name) is not None
            return made["patcher"], TinyClip(), made["vae"]

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    for workflow in WORKFLOWS:
        for node in json.loads(workflow.read_text()).values():
            if node["class_type"] == "CheckpointLoaderSimple":
                (checkpoints / node["inputs"]["ckpt_name"]).write_bytes(b"")
    folder_paths.add_model_folder_path("checkpoints", str(checkpoints))
    monkeypatch.setitem(nodes.NODE_CLASS_MAPPINGS, "CheckpointLoaderSimple", TinyCheckpointLoader)
    return made


def execute(prompt: dict[str, Any]) -> dict[str, Any]:
    """Validate and run ``prompt`` as ComfyUI's server does; its UI outputs by node."""
    valid, error, outputs, node_errors = asyncio.run(
        execution.validate_prompt("test", prompt, None)
    )
    assert valid, (error, node_errors)
    executor = execution.PromptExecutor(Server())
    executor.execute(prompt, "test", {}, outputs)
    failures = [m for m in executor.status_messages if m[0] == "execution_error"]
    assert executor.success and not failures, failures
    result: dict[str, Any] = executor.history_result["outputs"]
    return result


def at_64px(path: Path) -> dict[str, Any]:
    prompt: dict[str, Any] = json.loads(path.read_text())
    for node in prompt.values():
        if node["class_type"] == "EmptyLatentImage":
            node["inputs"].update(width=PX, height=PX)
    return prompt


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_the_example_workflow_runs_through_comfyuis_executor(
    path: Path, stand_ins: dict[str, Any]
) -> None:
    prompt = at_64px(path)
    kinds = {n["class_type"] for n in prompt.values()}
    assert "SamplerCustomAdvanced" in kinds and kinds & {"ZSamplingZigzag", "ZSamplingRestart"}
    outputs = execute(prompt)
    (saved,) = [image for node in outputs.values() for image in node.get("images", [])]
    file = Path(folder_paths.get_output_directory()) / saved["subfolder"] / saved["filename"]
    image = np.asarray(Image.open(file))
    assert image.shape == (PX, PX, 3) and image.std() > 0
    (latent,) = stand_ins["vae"].latents
    assert latent.shape == (1, 4, PX // 8, PX // 8) and bool(torch.isfinite(latent).all())
    # the graph means what the page says: the same nodes composed by hand give the same latent
    assert rel(latent, by_hand(prompt, stand_ins["patcher"])) <= 1e-6


def by_hand(prompt: dict[str, Any], patcher: Any) -> torch.Tensor:
    """The workflow's sampling composed from its nodes' classes in Python, without the graph."""
    node = {n["class_type"]: n["inputs"] for n in prompt.values()}
    route_name = "ZSamplingZigzag" if "ZSamplingZigzag" in node else "ZSamplingRestart"
    settings = {k: v for k, v in node[route_name].items() if not isinstance(v, list)}
    wrapped = comfy.samplers.sampler_object(node["KSamplerSelect"]["sampler_name"])
    route_node = nodes.NODE_CLASS_MAPPINGS[route_name]()
    route = route_node.get_sampler(sampler=wrapped, **settings)[0]
    texts = [n["inputs"]["text"] for n in prompt.values() if n["class_type"] == "CLIPTextEncode"]
    positive, negative = (TinyClip().encode_from_tokens_scheduled(t) for t in texts)
    if "ZSamplingGuider" in node:
        g = node["ZSamplingGuider"]
        guider = nodes.NODE_CLASS_MAPPINGS["ZSamplingGuider"]().get_guider(
            patcher, positive, negative, g["cfg"], g["guider"], g["settings"]
        )[0]
    else:
        guider = comfy.samplers.CFGGuider(patcher)
        guider.set_conds(positive, negative)
        guider.set_cfg(node["CFGGuider"]["cfg"])
    schedule = node["BasicScheduler"]
    sigmas = model_sigmas(patcher, schedule["steps"], schedule["scheduler"])
    seed = node["RandomNoise"]["noise_seed"]
    latent = torch.zeros(1, 4, PX // 8, PX // 8)
    return run(guider, route, sigmas, seed=seed, latent=latent)
