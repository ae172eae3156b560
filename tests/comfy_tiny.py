"""ComfyUI for the tests: the vendored source imported in-process, and a tiny SD1.5-type model.

ComfyUI is not on PyPI; its source is at ``../shared/vendor/ComfyUI`` (or ``$COMFYUI_PATH``) and
its requirements live in their own venv (``.ci/run-comfyui``). Where either is missing the tests
skip, saying which; with ``ZSAMPLING_REQUIRE_COMFYUI=1`` (CI) they fail instead.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import Tensor

from zsampling.core.levels import Process, t_from_sigma
from zsampling.core.prediction import Prediction

ROOT = Path(__file__).resolve().parents[1]
COMFYUI = Path(os.environ.get("COMFYUI_PATH", ROOT.parent / "shared" / "vendor" / "ComfyUI"))
PACK = ROOT / "comfyui" / "zsampling_nodes"
# What ComfyUI's requirements.txt adds to torch, as import names (the venv recipe's list).
REQUIRED = (
    "torchsde", "einops", "transformers", "tokenizers", "safetensors", "yaml", "PIL", "scipy",
    "tqdm", "psutil", "av", "pydantic", "pydantic_settings",
)  # fmt: skip

UNET = dict(
    image_size=32,
    in_channels=4,
    out_channels=4,
    model_channels=32,
    num_res_blocks=1,
    channel_mult=[1, 2],
    transformer_depth=[0, 1],
    transformer_depth_output=[0, 0, 1, 1],
    transformer_depth_middle=1,
    context_dim=32,
    num_head_channels=16,
    num_heads=-1,
    use_spatial_transformer=True,
    use_linear_in_transformer=False,
    adm_in_channels=None,
    use_temporal_attention=False,
    use_temporal_resblock=False,
    legacy=False,
)


def _unavailable(reason: str) -> None:
    if os.environ.get("ZSAMPLING_REQUIRE_COMFYUI"):
        pytest.fail(f"ZSAMPLING_REQUIRE_COMFYUI is set but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_comfyui() -> None:
    """Import ComfyUI's sampling modules (once), or skip/fail saying what is missing."""
    if "comfy.samplers" in sys.modules:
        return
    if not (COMFYUI / "comfy" / "samplers.py").is_file():
        _unavailable(
            f"ComfyUI's source is not at {COMFYUI} (the vendored snapshot in ../shared/vendor, "
            "or set COMFYUI_PATH)"
        )
    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        _unavailable(
            f"this Python lacks ComfyUI's requirements {missing}: run the ComfyUI tests in "
            "their own venv (bash .ci/run-comfyui)"
        )
    # Nothing may be written into the (shared, read-only) source: bytecode goes elsewhere, and
    # ComfyUI's base directory (where it creates input/, output/, ...) is a temporary one.
    if sys.pycache_prefix is None:
        sys.pycache_prefix = str(Path(tempfile.gettempdir()) / "zsampling-comfyui-pycache")
    base = tempfile.mkdtemp(prefix="zsampling-comfyui-")
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    sys.path.insert(0, str(COMFYUI))
    argv, sys.argv = sys.argv, ["comfyui", "--cpu", "--base-directory", base]
    try:
        import comfy.options

        comfy.options.enable_args_parsing()
        import comfy.model_patcher
        import comfy.sample
        import comfy.samplers
        import comfy.supported_models
        import nodes  # noqa: F401
    finally:
        sys.argv = argv


def load_pack() -> ModuleType:
    """The node pack, loaded by ComfyUI's own custom-node loader (as ComfyUI starts it)."""
    import nodes

    if "ZSamplingZigzag" not in nodes.NODE_CLASS_MAPPINGS:
        ok = asyncio.run(nodes.load_custom_node(str(PACK), module_parent="custom_nodes"))
        assert ok, "ComfyUI's load_custom_node refused the pack (see its log)"
    return nodes


def load_custom_sampling() -> ModuleType:
    """`load_pack`, plus ComfyUI's built-in custom-sampler nodes (SamplerCustomAdvanced,
    KSamplerSelect, RandomNoise, BasicScheduler, CFGGuider), loaded as ComfyUI loads them."""
    nodes = load_pack()
    if "SamplerCustomAdvanced" not in nodes.NODE_CLASS_MAPPINGS:
        path = COMFYUI / "comfy_extras" / "nodes_custom_sampler.py"
        ok = asyncio.run(nodes.load_custom_node(str(path), module_parent="comfy_extras"))
        assert ok, "ComfyUI's load_custom_node refused nodes_custom_sampler.py"
    return nodes


def tiny_patcher(seed: int = 0, scale: float = 0.05) -> Any:
    """A ModelPatcher around an SD1.5-type UNet with seeded random weights (ComfyUI's ops leave
    them uninitialised)."""
    import comfy.model_patcher
    import comfy.supported_models

    model = comfy.supported_models.SD15(dict(UNET)).get_model({})
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def conditioning(seed: int, batch: int = 1, tokens: int = 7) -> list[list[Any]]:
    """A CONDITIONING value: one cross-attention tensor (context_dim 32, scaled up so that
    guidance visibly matters to the random network), no extras."""
    g = torch.Generator().manual_seed(seed)
    return [[5.0 * torch.randn(batch, tokens, 32, generator=g), {}]]


def cfg_guider(patcher: Any, cfg: float, positive: Any = None, negative: Any = None) -> Any:
    """ComfyUI's CFGGuider (the node's object) over ``patcher``."""
    import comfy.samplers

    guider = comfy.samplers.CFGGuider(patcher)
    guider.set_conds(positive or conditioning(1), negative or conditioning(2))
    guider.set_cfg(cfg)
    return guider


def run(
    guider: Any,
    sampler: Any,
    sigmas: torch.Tensor,
    seed: int = 0,
    batch: int = 1,
    latent: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``guider.sample`` as SamplerCustomAdvanced calls it: on an empty 8x8 latent, or on
    ``latent`` with an inpainting ``mask`` (1 = resample)."""
    import comfy.sample

    latent = torch.zeros(batch, 4, 8, 8) if latent is None else latent
    noise = comfy.sample.prepare_noise(latent, seed)
    out: torch.Tensor = guider.sample(
        noise, latent, sampler, sigmas, denoise_mask=mask, disable_pbar=True, seed=seed
    )
    return out


def model_sigmas(patcher: Any, steps: int, scheduler: str = "karras") -> torch.Tensor:
    import comfy.samplers

    ms = patcher.get_model_object("model_sampling")
    return comfy.samplers.calculate_sigmas(ms, scheduler, steps)


class FlowUNet:
    """A flow-patched tiny UNet as a zsampling model, written from ComfyUI's CONST definitions
    (``x_t = (1 - t) x0 + t eps``), for the core side of the flow parity."""

    process = Process("flow")
    table = None
    dtype = torch.float32
    device = torch.device("cpu")

    def __init__(self, patcher: Any) -> None:
        self.unet = patcher.model.diffusion_model
        self.ms = patcher.get_model_object("model_sampling")

    def latent_shape(self) -> tuple[int, ...]:
        return (4, 8, 8)

    @torch.no_grad()
    def predict(self, x: Tensor, level: Tensor, cond: dict[str, Tensor]) -> Prediction:
        t = t_from_sigma(level).to(torch.float32)
        out = self.unet(self.ms.calculate_input(t, x), self.ms.timestep(t), context=cond["c"])
        x0 = self.ms.calculate_denoised(t, out, x)
        t64 = t.double().view(-1, 1, 1, 1)
        return Prediction(x0, ((x.double() - (1 - t64) * x0.double()) / t64).float())


def core_zigzag(patcher: Any, sigmas: Tensor, sampler: Any, positive: Any, negative: Any,
                seed: int = 0, solver: Any = None, guider: Any = None) -> Tensor:  # fmt: skip
    """zsampling's own ``sample()`` (its CFG guider, path and Euler, unless ``guider`` or
    ``solver`` says otherwise) on ``patcher``'s UNet, from the starting latent ComfyUI's ``run``
    uses; returned as ComfyUI returns latents."""
    import comfy.sample

    from zsampling import sample
    from zsampling.adapters.kdiffusion import KDiffusionModel
    from zsampling.core.solvers import Euler
    from zsampling.integrations.comfyui.levels import process_of, to_levels

    ms = patcher.get_model_object("model_sampling")
    process = process_of(ms)
    if process.name == "flow":
        net: Any = FlowUNet(patcher)
        scale = 1.0  # ComfyUI starts a flow run from the noise itself
    else:
        base = patcher.model

        def denoiser(x: Tensor, sigma: Tensor, c: Tensor) -> Tensor:
            out: Tensor = base.apply_model(x, sigma, c_crossattn=c)
            return out

        net = KDiffusionModel(denoiser, (4, 8, 8))
        # ComfyUI starts a full-denoise EPS run from noise * sqrt(1 + sigma_max^2)
        scale = math.sqrt(1 + float(sigmas[0]) ** 2)
    noise = comfy.sample.prepare_noise(torch.zeros(1, 4, 8, 8), seed)
    latents = sample(
        net,
        sampler,
        conditioning=({"c": positive[0][0]}, {"c": negative[0][0]}),
        noise=noise,
        sigmas=to_levels(sigmas, process),
        noise_scale=scale,
        solver=solver or Euler(),
        guider=guider,
    ).latents
    out: Tensor = patcher.model.process_latent_out(latents)
    return out
