"""Write the tiny stand-ins this example runs on (random weights, no download, ~10 s on a CPU).

    python examples/sdxl-dpo-ays-zigzag/make_tiny_models.py [OUT_DIR]

writes ``OUT_DIR/tiny-sdxl`` (a StableDiffusionXLPipeline folder, standing in for
stabilityai/stable-diffusion-xl-base-1.0) and ``OUT_DIR/tiny-dpo-unet`` (a UNet folder with other
weights, standing in for mhdang/dpo-sdxl-text2image-v1's ``unet``). OUT_DIR defaults to
``models/`` next to this script. Both are saved as safetensors.
"""

from __future__ import annotations

import sys
from pathlib import Path

from zsampling.testing.tiny import write_tiny_pipeline, write_tiny_unet


def main(out: Path) -> None:
    pipeline = write_tiny_pipeline(out / "tiny-sdxl", "sdxl", seed=0)
    unet = write_tiny_unet(out / "tiny-dpo-unet", "sdxl", seed=1)
    print(f"pipeline: {pipeline}\nunet:     {unet}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "models")
