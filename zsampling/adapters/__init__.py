"""Model adapter components (``[model]``): any model family answered in one representation of
levels (the protocol: `zsampling.core.model.ModelAdapter`).

Each module holds one family: `analytic` (a Gaussian mixture with exact scores), `digits` (the
embedded model), `diffusers` (SD 1.x/2.x, SDXL), `flow` (SD3), `kdiffusion` (k-diffusion
denoisers); `folders` holds what the pipeline-folder adapters share.
"""

from zsampling.core.model import Conditioning, ModelAdapter

__all__ = ["Conditioning", "ModelAdapter"]
