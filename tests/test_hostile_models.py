"""Hostile model folders: a damaged or malicious diffusers, LoRA, UNet or digits folder is refused
with the setting named (exit code 2), never loaded through custom code, never a traceback.

Every case copies a tiny saved pipeline (or the packaged digits model) and damages one thing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import Sandbox

from zsampling.adapters.digits import PACKAGED

SD_TOML = """
[model]
use = "diffusers"
path = "{model}"
[schedule]
use = "uniform"
steps = 2
[sampler]
use = "standard"
guidance = 2.0
[run]
prompts = ["a cat"]
seeds = [0]
output = "{out}"
"""

DIGITS_TOML = SD_TOML.replace('"diffusers"', '"digits"').replace('"a cat"', '"7"')


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    result = change(data)
    path.write_text(json.dumps(data if result is None else result))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def weights(folder: Path) -> Path:
    return next(folder.glob("*.safetensors"))


Damage = Callable[[Path, Path], None]

# (id, damage(model folder, sandbox root), extra --set, fragments)
SD_CASES: list[tuple[str, Damage, list[str], tuple[str, ...]]] = [
    (
        "index-not-json",
        lambda m, r: (m / "model_index.json").write_text("{not json"),
        [],
        ("model.path", "readable model_index.json"),
    ),
    (
        "index-not-utf8",
        lambda m, r: (m / "model_index.json").write_bytes(b"\xff\xfe{}"),
        [],
        ("model.path", "readable model_index.json"),
    ),
    (
        "index-a-list",
        lambda m, r: (m / "model_index.json").write_text("[1, 2]"),
        [],
        ("model.path", "found None"),
    ),
    (
        "index-missing",
        lambda m, r: (m / "model_index.json").unlink(),
        [],
        ("model.path", "model_index.json is missing"),
    ),
    (
        "custom-pipeline-class",
        lambda m, r: edit_json(
            m / "model_index.json", lambda d: d.update(_class_name=["evil", "EvilPipeline"])
        ),
        [],
        ("model.path", "EvilPipeline"),
    ),
    (
        "custom-component-code",
        lambda m, r: (
            (m / "evil_unet.py").write_text(f"open({str(r / 'PWNED')!r}, 'w').write('x')\n"),
            edit_json(m / "model_index.json", lambda d: d.update(unet=["evil_unet", "UNet"])),
        ),
        [],
        ("model.path", "would run custom code", "evil_unet"),
    ),
    (
        "unet-config-not-json",
        lambda m, r: (m / "unet" / "config.json").write_text("{"),
        [],
        ("model.path", "loading failed"),
    ),
    (
        "pipeline-unet-truncated",
        lambda m, r: truncate(weights(m / "unet")),
        [],
        ("model.path", "loading failed"),
    ),
    (
        "unet-weights-missing",
        lambda m, r: weights(m / "unet").unlink(),
        [],
        ("model.path", "safetensors weights"),
    ),
    (
        "unet-weights-pickle-only",
        lambda m, r: weights(m / "unet").rename(m / "unet" / "diffusion_pytorch_model.bin"),
        [],
        ("model.path", "pickle .bin weights are refused"),
    ),
    (
        "vae-weights-garbage",
        lambda m, r: weights(m / "vae").write_bytes(b"\x00" * 4096),
        [],
        ("model.path", "loading failed"),
    ),
    (
        "text-encoder-missing",
        lambda m, r: shutil.rmtree(m / "text_encoder"),
        [],
        ("model.path", "loading failed"),
    ),
    (
        "unet-config-wrong-shape",
        lambda m, r: edit_json(
            m / "unet" / "config.json", lambda d: d.update(block_out_channels=[8, 16])
        ),
        [],
        ("model.path", "loading failed"),
    ),
    (
        "scheduler-config-garbage",
        lambda m, r: (m / "scheduler" / "scheduler_config.json").write_text("[]"),
        [],
        ("model.path",),
    ),
    ("device-cuda-9", lambda m, r: None, ["model.device=cuda:9"], ("model.device",)),
    ("device-bogus", lambda m, r: None, ["model.device=quantum"], ("model.device",)),
    (
        "variant-missing",
        lambda m, r: None,
        ["model.variant=fp16"],
        ("model.path", "variant 'fp16'"),
    ),
    (
        "lora-missing",
        lambda m, r: None,
        ['model.patches=[{use = "lora", path = "/nonexistent/lora.safetensors"}]'],
        ("patches.lora.path", "an existing local file or folder"),
    ),
    (
        "lora-pickle",
        lambda m, r: (r / "lora.bin").write_bytes(b"pickle"),
        ['model.patches=[{use = "lora", path = "LORA/lora.bin"}]'],
        ("patches.lora.weight_name", "pickle is refused"),
    ),
    (
        "lora-truncated",
        lambda m, r: (r / "lora.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{"),
        ['model.patches=[{use = "lora", path = "LORA/lora.safetensors"}]'],
        ("patches.lora.path", "loading failed"),
    ),
    (
        "lora-is-a-unet",
        lambda m, r: shutil.copy(weights(m / "unet"), r / "lora.safetensors"),
        ['model.patches=[{use = "lora", path = "LORA/lora.safetensors"}]'],
        ("patches.lora.path",),
    ),
    (
        "unet-weights-no-config",
        lambda m, r: (r / "dpo").mkdir(),
        ['model.patches=[{use = "unet-weights", path = "LORA/dpo"}]'],
        ("patches.unet-weights.path", "config.json"),
    ),
    (
        "unet-weights-truncated",
        lambda m, r: (
            shutil.copytree(m / "unet", r / "dpo"),
            truncate(weights(r / "dpo")),
        ),
        ['model.patches=[{use = "unet-weights", path = "LORA/dpo"}]'],
        ("patches.unet-weights.path", "loading failed"),
    ),
    (
        "unet-weights-config-not-json",
        lambda m, r: (
            shutil.copytree(m / "unet", r / "dpo"),
            (r / "dpo" / "config.json").write_text("nope"),
        ),
        ['model.patches=[{use = "unet-weights", path = "LORA/dpo"}]'],
        ("patches.unet-weights.path", "loading failed"),
    ),
]


@pytest.mark.usefixtures("single_thread")
@pytest.mark.parametrize(
    ("damage", "extra", "fragments"),
    [c[1:] for c in SD_CASES],
    ids=[c[0] for c in SD_CASES],
)
def test_hostile_diffusers_folder(
    tiny_sd_dir: Path,
    tmp_path: Path,
    damage: Damage,
    extra: list[str],
    fragments: tuple[str, ...],
) -> None:
    import torch

    if any("cuda" in e for e in extra) and torch.cuda.device_count() > 9:
        pytest.skip("this machine has that many GPUs")
    model = tmp_path / "model"
    shutil.copytree(tiny_sd_dir, model)
    damage(model, tmp_path)
    box = Sandbox(tmp_path)
    config = box.config(SD_TOML.replace("{model}", str(model)))
    args = ["run", str(config), "-q"]
    for e in extra:
        args += ["--set", e.replace("LORA", str(tmp_path))]
    box.refused(args, 2, *fragments)
    assert not (tmp_path / "PWNED").exists(), "custom code from the model folder ran"


DIGITS_CASES: list[tuple[str, Damage, tuple[str, ...]]] = [
    ("no-unet", lambda m, r: shutil.rmtree(m / "unet"), ("model.path", "unet/")),
    ("truncated", lambda m, r: truncate(weights(m / "unet")), ("model.path", "loading failed")),
    (
        "config-garbage",
        lambda m, r: (m / "unet" / "config.json").write_text('{"in_channels": "one"}'),
        ("model.path", "loading failed"),
    ),
    (
        "not-class-conditional",
        lambda m, r: edit_json(
            m / "unet" / "config.json", lambda d: d.update(num_class_embeds=None)
        ),
        ("model.path",),
    ),
    (
        "sample-size-not-a-pair",
        lambda m, r: edit_json(
            m / "unet" / "config.json", lambda d: d.update(sample_size=[8, 8, 8])
        ),
        ("model.path", "sample_size = [8, 8, 8]", "a pair [height, width]"),
    ),
    (
        "scheduler-not-json",
        lambda m, r: next((m / "scheduler").glob("*.json")).write_text("{{"),
        ("model.path", "loading failed"),
    ),
]


@pytest.mark.parametrize(
    ("damage", "fragments"), [c[1:] for c in DIGITS_CASES], ids=[c[0] for c in DIGITS_CASES]
)
def test_hostile_digits_folder(tmp_path: Path, damage: Damage, fragments: tuple[str, ...]) -> None:
    model = tmp_path / "digits"
    shutil.copytree(PACKAGED, model)
    damage(model, tmp_path)
    box = Sandbox(tmp_path)
    config = box.config(DIGITS_TOML.replace("{model}", str(model)))
    box.refused(["run", str(config), "-q"], 2, *fragments)


@pytest.mark.parametrize("steps", ["0", "20000"])
def test_config_errors_come_with_the_folder_before_loading(tmp_path: Path, steps: str) -> None:
    """A broken folder and an out-of-range schedule.steps: both reported in one message, the
    config's own problem first, the folder's from its layout (nothing loaded: no "loading
    failed"); fixed, the same command runs."""
    model = tmp_path / "digits"
    shutil.copytree(PACKAGED, model)
    shutil.rmtree(model / "scheduler")
    (model / "unet" / "config.json").write_text("{")  # loading would fail on this first
    box = Sandbox(tmp_path)
    config = box.config(DIGITS_TOML.replace("{model}", str(model)))
    args = ["run", str(config), "-q", "--set", f"schedule.steps={steps}"]
    flat = box.refused(args, 2, "2 problem(s)", "schedule.steps", "model.path", "no scheduler/")
    assert flat.index("schedule.steps") < flat.index("model.path"), flat
    assert "loading failed" not in flat
    shutil.rmtree(model)
    shutil.copytree(PACKAGED, model)
    fixed = box.invoke(["run", str(config), "-q"])
    assert fixed.exit_code == 0, fixed.output
    assert len(list(box.out.glob("*.png"))) == 1
