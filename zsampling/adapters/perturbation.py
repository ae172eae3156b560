"""A diffusers network's perturbed version, through diffusers' own hooks (``diffusers.hooks``).

`perturbed_network` registers the hooks diffusers' PAG, SEG and SLG guiders register (diffusers'
``AttentionProcessorSkipHook``, ``SmoothedEnergyGuidanceHook`` and, for SLG on a UNet, its
``LayerSkipConfig`` applier) through diffusers' ``HookRegistry`` on the chosen blocks, and
removes them by name on leaving, also when the call in between fails: the network's parameters
are never touched, only its modules' forwards are wrapped.

**Which blocks, per family** (the defaults a user gets without knowing a layer config; diffusers
#12404):

- UNets (SD 1.x/2.x, SDXL, the digits models): the mid block's attention
  (``mid_block.attentions``, index 0). That is ``pag_applied_layers="mid"``, the default of
  diffusers' ``StableDiffusionPAGPipeline`` and ``StableDiffusionXLPAGPipeline``, and the layer
  the SEG paper perturbs on SDXL; it is also the one self-attention the digits UNets have.
- SD3 and FLUX transformers (``transformer_blocks``): block 1 for PAG and SEG
  (``StableDiffusion3PAGPipeline``'s default ``"blocks.1"``); blocks 7, 8, 9 for SLG (the layers
  diffusers documents for SD3.5's ``skip_guidance_layers``). A smaller transformer without those
  blocks gets its middle block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

import torch

from zsampling.core.errors import InvalidArgument, RunFailure
from zsampling.core.perturbation import Perturbation

UNET_STACK = "mid_block.attentions"
TRANSFORMER_STACK = "transformer_blocks"
_SLG_LAYERS = (7, 8, 9)


def perturbation_layers(stack: str, size: int, perturbation: Perturbation) -> tuple[int, ...]:
    """The block indices to perturb: the guider's, checked, or the family default above."""
    if perturbation.layers is not None:
        bad = [i for i in perturbation.layers if not 0 <= i < size]
        if bad or not perturbation.layers:
            raise InvalidArgument(
                f"guider.layers ({perturbation.guider})",
                list(perturbation.layers),
                f"a non-empty list of block indices below {size} (this model's {stack} has "
                f"{size} block(s)); leave it unset for the model family's default",
            )
        return perturbation.layers
    if stack == UNET_STACK:
        return (0,)
    if perturbation.kind == "skip-layers":
        chosen = tuple(i for i in _SLG_LAYERS if i < size)
        return chosen if len(chosen) == len(_SLG_LAYERS) else (size // 2,)
    return (1,) if size > 1 else (0,)


def _block_skip_hook() -> Any:
    from diffusers.hooks import ModelHook
    from diffusers.hooks._helpers import TransformerBlockRegistry

    class BlockSkipHook(ModelHook):
        """The block returns its inputs unchanged, in the order it returns its outputs."""

        def initialize_hook(self, module: Any) -> Any:
            self.metadata = TransformerBlockRegistry.get(type(module))
            return module

        def new_forward(self, module: Any, *args: Any, **kwargs: Any) -> Any:
            meta = self.metadata
            hidden = meta._get_parameter_from_args_kwargs("hidden_states", args, kwargs)
            if meta.return_encoder_hidden_states_index is None:
                return hidden
            encoder = meta._get_parameter_from_args_kwargs("encoder_hidden_states", args, kwargs)
            out = [None, None]
            out[meta.return_hidden_states_index] = hidden
            out[meta.return_encoder_hidden_states_index] = encoder
            return tuple(out)

    return BlockSkipHook()


def _skip_blocks(network: Any, stack: str, layers: list[int], name: str) -> None:
    from diffusers.hooks import HookRegistry

    blocks = _blocks(network, stack)
    for index in layers:
        HookRegistry.check_if_exists_or_initialize(blocks[index]).register_hook(
            _block_skip_hook(), name
        )


def _self_attentions(network: Any, stack: str, layers: list[int]) -> Iterator[Any]:
    """Every self-attention module in the chosen blocks (diffusers' test: its attention classes,
    not cross-attention; FLUX's ``FluxAttention`` has no ``is_cross_attention`` and is self)."""
    from diffusers.hooks._common import _ATTENTION_CLASSES

    blocks = _blocks(network, stack)
    for index in layers:
        for module in blocks[index].modules():
            if isinstance(module, _ATTENTION_CLASSES) and not getattr(
                module, "is_cross_attention", False
            ):
                yield module


def _unused(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("PAG's hook runs the attention with identity scores, never this")


def _identity_attention(network: Any, stack: str, layers: list[int], name: str) -> None:
    """PAG: diffusers' ``AttentionProcessorSkipHook`` in its attention-scores mode on each
    self-attention (its ``_apply_layer_skip_hook`` would first look the attention processor up
    in a registry that lacks SD3's ``JointAttnProcessor2_0``, for a function this mode never
    uses, and read an ``is_cross_attention`` FLUX's attention lacks)."""
    from diffusers.hooks import HookRegistry
    from diffusers.hooks.layer_skip import AttentionProcessorSkipHook

    for module in _self_attentions(network, stack, layers):
        hook = AttentionProcessorSkipHook(_unused, skip_attention_scores=True)
        HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)


def _smoothed_queries(
    network: Any, stack: str, layers: list[int], name: str, blur_sigma: float
) -> None:
    """SEG: diffusers' ``SmoothedEnergyGuidanceHook`` on each self-attention's query
    projection (registered here for FLUX's sake, as in `_identity_attention`)."""
    from diffusers.hooks import HookRegistry
    from diffusers.hooks.smoothed_energy_guidance_utils import SmoothedEnergyGuidanceHook

    for module in _self_attentions(network, stack, layers):
        query = getattr(module, "to_q", None)
        if isinstance(query, torch.nn.Linear):
            hook = SmoothedEnergyGuidanceHook(blur_sigma)
            HookRegistry.check_if_exists_or_initialize(query).register_hook(hook, name)


def _blocks(network: Any, stack: str) -> Any:
    blocks = network
    for part in stack.split("."):
        blocks = getattr(blocks, part, None)
    return blocks


@contextmanager
def perturbed_network(
    network: Any, stack: str, perturbation: Perturbation, family: str
) -> Iterator[None]:
    """Inside the context, ``network`` is perturbed as ``perturbation`` asks (see the module)."""
    try:
        from diffusers.hooks import HookRegistry, LayerSkipConfig
        from diffusers.hooks.layer_skip import _apply_layer_skip_hook
        from diffusers.hooks.smoothed_energy_guidance_utils import SmoothedEnergyGuidanceHook
    except ImportError as err:
        raise RunFailure(
            f"the {perturbation.guider} guider needs diffusers' guidance hooks "
            f"(diffusers.hooks, diffusers 0.35 or later): {err}"
        ) from None
    del SmoothedEnergyGuidanceHook  # imported to check the release has it

    blocks = _blocks(network, stack)
    if blocks is None:
        raise InvalidArgument(
            "guider.use",
            perturbation.guider,
            f"a guider this {family} model can run: it has no {stack} to perturb",
        )
    layers = list(perturbation_layers(stack, len(blocks), perturbation))
    name = f"zsampling-{perturbation.kind}"
    try:
        if perturbation.kind == "smoothed-energy":
            _smoothed_queries(network, stack, layers, name, perturbation.blur_sigma)
        elif perturbation.kind == "attention-scores":
            _identity_attention(network, stack, layers, name)
        elif stack != UNET_STACK:
            _skip_blocks(network, stack, layers, name)
        else:  # SLG on a UNet: its self-attention skipped (the output is the input)
            skip = LayerSkipConfig(layers, fqn=stack, skip_attention=True, skip_ff=False)
            _apply_layer_skip_hook(network, skip, name=name)
        yield
    finally:
        HookRegistry.check_if_exists_or_initialize(network).remove_hook(name, recurse=True)


class PipelineNetwork:
    """What the diffusers-pipeline adapters share around their network (a mixin): the
    scheduler config their schedules build on, and the network perturbed through
    `perturbed_network` (`zsampling.core.perturbation.Perturbable`). Subclasses set ``stack`` and
    ``family`` and give `network`."""

    pipeline: Any
    stack: ClassVar[str]
    family: Any

    @property
    def network(self) -> Any:
        """The pipeline's denoising network (its UNet or transformer)."""
        raise NotImplementedError

    @property
    def scheduler_config(self) -> Any:
        """The pipeline scheduler's config, which the ``scheduler`` and ``flow-match`` schedules
        build on."""
        return self.pipeline.scheduler.config

    def perturbed(self, perturbation: Perturbation) -> AbstractContextManager[None]:
        """The network with diffusers' PAG/SEG/SLG hooks on the family's blocks."""
        return perturbed_network(self.network, self.stack, perturbation, self.family)
