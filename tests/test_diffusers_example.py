"""examples/sdxl-dpo-ays-zigzag: its model maker and the Python block of its README run."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("single_thread")

EXAMPLE = Path(__file__).parents[1] / "examples" / "sdxl-dpo-ays-zigzag"


def test_example_stack_runs_on_the_tiny_models(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_tiny_models", EXAMPLE / "make_tiny_models.py"
    )
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    maker.main(tmp_path)
    assert (tmp_path / "tiny-sdxl" / "model_index.json").is_file()
    assert (tmp_path / "tiny-dpo-unet" / "diffusion_pytorch_model.safetensors").is_file()

    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    code = block.replace("examples/sdxl-dpo-ays-zigzag/models", str(tmp_path))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    result, images = namespace["result"], namespace["images"]
    assert result.counter.guided_calls == 3 * 10 - 2  # type: ignore[attr-defined]
    assert len(images) == 1  # type: ignore[arg-type]
    assert namespace["model"].pipeline.unet is not namespace["base"].pipeline.unet  # type: ignore[attr-defined]
