"""The node pack as ComfyUI loads and runs it: every node, the example plugin, the docs' workflow.

Runs in the ComfyUI venv (.ci/run-comfyui); skips elsewhere, saying why.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from typing import Any

import pytest
import torch
from comfy_tiny import (
    COMFYUI,
    ROOT,
    cfg_guider,
    conditioning,
    import_comfyui,
    load_pack,
    model_sigmas,
    run,
    tiny_patcher,
)

import_comfyui()

import comfy.samplers  # noqa: E402
import nodes  # noqa: E402
from comfy_extras.nodes_align_your_steps import AlignYourStepsScheduler  # noqa: E402

from zsampling.plugins.manager import default_registry  # noqa: E402
from zsampling.testing.compare import relative_max as rel  # noqa: E402

load_pack()
# ComfyUI's built-in custom-sampler nodes come in the same way (init_builtin_extra_nodes)
asyncio.run(
    nodes.load_custom_node(
        str(COMFYUI / "comfy_extras" / "nodes_custom_sampler.py"), module_parent="comfy_extras"
    )
)
PACK_NODES = [
    "ZSamplingZigzag",
    "ZSamplingRestart",
    "ZSamplingW2SD",
    "ZSamplingSampler",
    "ZSamplingUniformSigmas",
    "ZSamplingSigmas",
    "ZSamplingGuider",
]
EXAMPLE = ROOT / "examples" / "zsampling-self-recurrence"


@pytest.fixture(scope="module")
def patcher() -> Any:
    return tiny_patcher()


def inputs_of(name: str) -> dict[str, tuple[Any, ...]]:
    spec = nodes.NODE_CLASS_MAPPINGS[name].INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


def default(spec: tuple[Any, ...]) -> Any:
    """The value the UI puts in a fresh widget."""
    kind, options = spec[0], spec[1] if len(spec) > 1 else {}
    return options.get("default", kind[0] if isinstance(kind, list) else None)


def call(name: str, **given: Any) -> tuple[Any, ...]:
    """Run a node the way ComfyUI's executor does: widget defaults for what is not given."""
    cls = nodes.NODE_CLASS_MAPPINGS[name]
    required = cls.INPUT_TYPES()["required"]
    values = {k: default(v) for k, v in required.items() if not isinstance(v[0], str) or v[0] in (
        "INT", "FLOAT", "STRING", "BOOLEAN")}  # fmt: skip
    values.update(given)
    out: tuple[Any, ...] = getattr(cls(), cls.FUNCTION)(**values)
    return out


def test_the_pack_loads_as_comfyui_loads_custom_nodes() -> None:
    for name in PACK_NODES:
        cls = nodes.NODE_CLASS_MAPPINGS[name]
        assert cls.RELATIVE_PYTHON_MODULE == "custom_nodes.zsampling_nodes"
        assert nodes.NODE_DISPLAY_NAME_MAPPINGS[name]
        assert cls.CATEGORY == "sampling/custom_sampling/zsampling"
        assert len(cls.DESCRIPTION) > 40 and "\n" not in cls.DESCRIPTION
        for field, spec in inputs_of(name).items():
            kind, options = spec[0], spec[1] if len(spec) > 1 else {}
            if isinstance(kind, list):
                assert options.get("default", kind[0]) in kind, (name, field)
            elif kind in ("INT", "FLOAT"):
                assert options["min"] <= options["default"] <= options["max"], (name, field)
    zigzag = inputs_of("ZSamplingZigzag")
    assert list(zigzag) == [
        "guidance",
        "inversion_guidance",
        "zigzag_steps",
        "rounds",
        "inversion",
        "solver",
        "sampler",  # optional: a ComfyUI sampler making the denoise moves
    ]
    assert zigzag["inversion"][0] == ["official", "target", "source"]
    assert zigzag["solver"][0] == default_registry().names("solver")
    offered = inputs_of("ZSamplingSampler")["sampler"][0]
    assert offered == [n for n in default_registry().names("sampler") if n != "asymmetry-zigzag"]
    assert inputs_of("ZSamplingSigmas")["schedule"][0] == default_registry().names("schedule")


def test_a_sampler_that_needs_its_own_prompts_is_refused_by_name() -> None:
    """asymmetry-zigzag's zag prompt cannot come through ComfyUI's conditioning inputs: the
    generic node does not offer it, and asking for it anyway is a clear error, not a failure
    in the middle of sampling."""
    from zsampling.core.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"sampler = 'asymmetry-zigzag' is invalid: .*own"):
        call("ZSamplingSampler", sampler="asymmetry-zigzag", settings='{"zag_prompt": "x"}')


SAMPLER_NODES = [
    ("ZSamplingZigzag", None),
    ("ZSamplingRestart", None),
    ("ZSamplingW2SD", None),
    *[("ZSamplingSampler", s) for s in ("standard", "zigzag", "restart", "w2sd")],
]


@pytest.mark.parametrize(("node", "sampler"), SAMPLER_NODES)
def test_every_sampler_node_runs_with_its_defaults(
    patcher: Any, node: str, sampler: str | None
) -> None:
    given: dict[str, Any] = {} if sampler is None else {"sampler": sampler}
    if node == "ZSamplingW2SD" or sampler == "w2sd":
        given["weak_model"] = tiny_patcher(seed=9)
    (ksampler,) = call(node, **given)
    sigmas = model_sigmas(patcher, 6)
    out = run(cfg_guider(patcher, 5.0), ksampler, sigmas, batch=2)
    euler = run(cfg_guider(patcher, 5.0), comfy.samplers.sampler_object("euler"), sigmas, batch=2)
    assert out.shape == (2, 4, 8, 8) and bool(torch.isfinite(out).all())
    if sampler != "standard":
        assert rel(out, euler) > 1e-5  # each one really does something else than Euler


@pytest.mark.parametrize("solver", default_registry().names("solver"))
def test_zigzag_runs_with_every_solver(patcher: Any, solver: str) -> None:
    sigmas = model_sigmas(patcher, 6)
    (euler,) = call("ZSamplingZigzag", solver="euler")
    (other,) = call("ZSamplingZigzag", solver=solver)
    a = run(cfg_guider(patcher, 5.0), euler, sigmas)
    b = run(cfg_guider(patcher, 5.0), other, sigmas)
    assert bool(torch.isfinite(b).all())
    if solver == "ddim":  # the same step formula
        assert rel(b, a) <= 1e-6
    elif solver != "euler":
        assert rel(b, a) > 1e-5


@pytest.fixture(scope="module")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The example third-party plugin pip-installed into a folder on sys.path, as a user's
    ``pip install`` into ComfyUI's Python makes it importable."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(EXAMPLE)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    sys.path.insert(0, str(site))
    default_registry.cache_clear()
    yield site
    sys.path.remove(str(site))
    default_registry.cache_clear()


def test_the_example_plugin_appears_in_the_generic_node_and_runs(
    patcher: Any, example_plugin: Any
) -> None:
    spec = inputs_of("ZSamplingSampler")
    assert "self-recurrence" in spec["sampler"][0]
    assert "self-recurrence: guidance = 5.5" in spec["settings"][1]["tooltip"]
    m = patcher.clone()
    calls: list[int] = []

    def count(apply_model: Any, args: dict[str, Any]) -> torch.Tensor:
        calls.append(args["input"].shape[0])
        out: torch.Tensor = apply_model(args["input"], args["timestep"], **args["c"])
        return out

    m.set_model_unet_function_wrapper(count)
    settings = '{"repeats": 2, "recurrent_steps": 3}'
    (sampler,) = call("ZSamplingSampler", sampler="self-recurrence", settings=settings)
    sigmas = model_sigmas(patcher, 6)
    a = run(cfg_guider(m, 5.0), sampler, sigmas, seed=1)
    assert len(calls) == 6 + 3 * 2 and set(calls) == {2}  # guidance 5: both branches
    b = run(cfg_guider(patcher, 5.0), sampler, sigmas, seed=1)
    euler = run(cfg_guider(patcher, 5.0), comfy.samplers.sampler_object("euler"), sigmas, seed=1)
    assert torch.equal(a, b) and bool(torch.isfinite(a).all()) and rel(a, euler) > 1e-4


# -- SIGMAS nodes ----------------------------------------------------------------------------


def test_uniform_sigmas_are_diffusers_ddim_timesteps_on_comfyuis_grid(patcher: Any) -> None:
    (sigmas,) = call("ZSamplingUniformSigmas", model=patcher, steps=10)
    grid = patcher.get_model_object("model_sampling").sigmas
    leading = torch.arange(9, -1, -1) * 100 + 1  # diffusers' DDIM, steps_offset 1
    assert torch.equal(sigmas[:-1], grid[leading])
    assert float(sigmas[-1]) == float(grid[0])  # DDIM's last level (set_alpha_to_one = False)
    (zero,) = call("ZSamplingUniformSigmas", model=patcher, steps=10, final="zero")
    assert float(zero[-1]) == 0.0


def test_generic_sigmas_match_comfyuis_schedulers(patcher: Any) -> None:
    (karras,) = call("ZSamplingSigmas", model=patcher, schedule="karras", settings='{"steps": 8}')
    assert rel(karras, model_sigmas(patcher, 8, "karras")) <= 1e-6
    for steps in (10, 17):
        (ays,) = call(
            "ZSamplingSigmas", model=patcher, schedule="ays", settings=f'{{"steps": {steps}}}'
        )
        ref = AlignYourStepsScheduler.execute("SD1", steps, 1.0).result[0]
        assert rel(ays, ref) <= 1e-6


# -- the docs' example workflow --------------------------------------------------------------


def docs_workflow() -> dict[str, Any]:
    page = (ROOT / "docs" / "comfyui.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```json\n(.*?)```", page, flags=re.S)
    workflow: dict[str, Any] = json.loads(block)
    return workflow


# Nodes that need real weights or write files: tiny stand-ins run in their place.
STAND_INS = {"CheckpointLoaderSimple", "CLIPTextEncode", "VAEDecode", "SaveImage"}


def test_the_docs_workflow_is_valid_and_runs(patcher: Any) -> None:
    workflow = docs_workflow()
    kinds = {n["class_type"] for n in workflow.values()}
    assert {"SamplerCustomAdvanced", "ZSamplingZigzag", "CFGGuider"} <= kinds
    outputs: dict[str, tuple[Any, ...]] = {}
    for key, node in workflow.items():  # API format: every input names a widget or a link
        cls = nodes.NODE_CLASS_MAPPINGS[node["class_type"]]
        spec = cls.INPUT_TYPES()
        declared = {**spec["required"], **spec.get("optional", {})}
        assert set(spec["required"]) <= set(node["inputs"]) <= set(declared), key
        for name, value in node["inputs"].items():
            kind = declared[name][0]
            if isinstance(value, list):  # a link: the source's output type must fit
                source = workflow[value[0]]["class_type"]
                assert nodes.NODE_CLASS_MAPPINGS[source].RETURN_TYPES[value[1]] == kind, name
            elif isinstance(kind, list) and node["class_type"] not in STAND_INS:
                assert value in kind, (key, name, value)

    def value(v: Any) -> Any:
        return outputs[v[0]][v[1]] if isinstance(v, list) else v

    stand_ins = {
        "CheckpointLoaderSimple": lambda inputs: (patcher, None, None),
        "CLIPTextEncode": lambda inputs: (conditioning(len(inputs["text"])),),
        "VAEDecode": lambda inputs: (None,),
        "SaveImage": lambda inputs: (),
    }
    for key in sorted(workflow, key=int):  # the JSON lists nodes in dependency order
        node = workflow[key]
        kind, inputs = node["class_type"], {k: value(v) for k, v in node["inputs"].items()}
        if kind == "EmptyLatentImage":  # 64x64 instead of 512x512: the tiny UNet on a CPU
            inputs.update(width=64, height=64)
        if kind in stand_ins:
            outputs[key] = stand_ins[kind](inputs)
        else:
            cls = nodes.NODE_CLASS_MAPPINGS[kind]
            outputs[key] = getattr(cls(), cls.FUNCTION)(**inputs)
    latent = outputs["9"][0]["samples"]
    assert latent.shape == (1, 4, 8, 8) and bool(torch.isfinite(latent).all())
