"""GPU figures: zsampling against diffusers at realistic sizes, written into docs/benchmarks.md.

On a machine with a CUDA GPU (nothing is downloaded; about 4 minutes on an H200 as run for
docs/benchmarks.md, 140 GiB of GPU memory were available and the FLUX-shaped transformer is
built in float32 before the cast, about 48 GB)::

    python benchmarks/gpu_figures.py --steps 15 --flux-steps 10 --write docs/benchmarks.md

builds an SDXL-shaped pipeline with random weights (SDXL base's UNet config, 2.6 B parameters;
SDXL-sized text encoders over a byte-level tokenizer; a small VAE with SDXL's scale factor) in
float16 and measures, at 1024 px:

- **standard**: ``generate(pipe, ..., sampler=Standard(...))`` against ``pipe(...)`` (the
  pipeline's own Euler scheduler, the same latents in), target <= 1.00;
- **zigzag**: Z-Sampling (``official`` zags, gamma2 = 0) against the released loop
  (`zsampling.testing.released_loop`), target <= 0.85 (the rows ratio);
- **overhead**: ``generate()`` with the UNet and text encoders answering from a cache, per step,
  against one real UNet call at batch 2, target < 1%;
- **memory**: peak CUDA memory of a run (``max_memory_allocated`` above what was allocated
  before), zsampling against ``pipe()`` and against the released loop;
- **FLUX**: ``generate()`` against ``pipe()`` with a FLUX.1-dev-shaped transformer (12 B
  parameters, guidance embedded) in bfloat16, time and peak memory, target <= 1.00.

Every time is the median of >= 7 interleaved rounds (`bench_util.Interleaved`, synchronised
with the device), reported with the spread of the per-round ratios. ``--write`` replaces the
text between ``<!-- gpu-figures:start -->`` and ``<!-- gpu-figures:end -->`` with the figures, the
device named; it is rewritten after every comparison, so a run cut short keeps what it
measured. ``--size small --device cpu --dtype float32`` runs everything on the tiny SDXL
pipeline in a few seconds: that is how the test suite keeps this script working without a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import platform
import re
import statistics
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_util import MIN_ROUNDS, Interleaved, networks_stubbed

from zsampling.testing.compare import relative_norm

START, END = "<!-- gpu-figures:start -->", "<!-- gpu-figures:end -->"
PROMPTS = ["a photo of a red cube on a wooden table", "a cat sitting on a mat, studio light"]
SEEDS = [3, 4]
GUIDANCE = 5.0

#: SDXL base 1.0's UNet config (diffusers' unet/config.json), 2.6 B parameters.
SDXL_UNET = dict(
    sample_size=128,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280),
    layers_per_block=2,
    attention_head_dim=(5, 10, 20),
    transformer_layers_per_block=(1, 2, 10),
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)


@dataclass
class Figure:
    """One comparison: the headline ratio with its spread, the arm times, and notes."""

    name: str
    measured: str
    target: str
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    rounds: int = 0
    details: dict[str, str] = field(default_factory=dict)
    failed: str | None = None


# -- pipelines ---------------------------------------------------------------------------------


def sdxl_pipeline(size: str, device: str, dtype: torch.dtype) -> Any:
    """An SDXL-shaped pipeline with random weights: full size, or the tiny test pipeline."""
    from zsampling.testing.tiny import tiny_sdxl_pipeline

    if size == "small":
        return tiny_sdxl_pipeline().to(device=device, dtype=dtype)
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from zsampling.testing.tiny import tiny_sdxl_pipeline, tiny_tokenizer

    small = tiny_sdxl_pipeline()  # for its scheduler config and tokenizers
    tokenizer = tiny_tokenizer()

    def text(hidden: int, layers: int, heads: int, projection: int | None) -> Any:
        config = CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=4 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            max_position_embeddings=77,
            bos_token_id=small.text_encoder.config.bos_token_id,
            eos_token_id=small.text_encoder.config.eos_token_id,
            pad_token_id=small.text_encoder.config.pad_token_id,
        )
        if projection is None:
            return CLIPTextModel(config)
        config.projection_dim = projection
        return CLIPTextModelWithProjection(config)

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(**SDXL_UNET)
        text_encoder = text(768, 12, 12, None)  # CLIP ViT-L's text tower
        text_encoder_2 = text(1280, 32, 20, 1280)  # OpenCLIP bigG's
        # Four blocks give SDXL's VAE scale factor 8; the decoder is not timed (latent output).
        vae = AutoencoderKL(
            block_out_channels=(32, 32, 32, 32),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            norm_num_groups=32,
            scaling_factor=0.13025,
            force_upcast=True,
        )
    pipe = StableDiffusionXLPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=tokenizer,
        tokenizer_2=tiny_tokenizer(),
        unet=unet.eval(),
        scheduler=small.scheduler,
    )
    return pipe.to(device=device, dtype=dtype)


#: FLUX.1-dev's transformer config (diffusers' transformer/config.json), 12 B parameters.
FLUX_TRANSFORMER = dict(
    patch_size=1,
    in_channels=64,
    num_layers=19,
    num_single_layers=38,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=4096,
    pooled_projection_dim=768,
    guidance_embeds=True,
    axes_dims_rope=(16, 56, 56),
)


def flux_pipeline(size: str, device: str, dtype: torch.dtype) -> Any:
    """A FLUX.1-dev-shaped pipeline with random weights: the full transformer (text encoders of
    FLUX's widths but few layers; a small VAE with FLUX's 16 channels and scale factor 8), or
    the tiny test pipeline."""
    from zsampling.testing.tiny_flow import FLUX_DEV_SCHEDULER, tiny_flux_pipeline, tiny_t5

    if size == "small":
        return tiny_flux_pipeline().to(device=device, dtype=dtype)
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from zsampling.testing.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    ids = tiny_sdxl_ids(tokenizer)
    torch.manual_seed(0)
    with torch.device(device):
        transformer = FluxTransformer2DModel(**FLUX_TRANSFORMER)
        clip = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=2,
                num_attention_heads=12,
                max_position_embeddings=77,
                **ids,
            )
        )
        vae = AutoencoderKL(
            block_out_channels=(32, 32, 32, 32),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=16,
            norm_num_groups=32,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.1159,
            scaling_factor=0.3611,
        )
    tokenizer_2, t5 = tiny_t5(4096, 1)  # one layer, FLUX's T5 width
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_DEV_SCHEDULER),
        vae=vae.eval(),
        text_encoder=clip.eval(),
        tokenizer=tokenizer,
        text_encoder_2=t5.to(device).eval(),
        tokenizer_2=tokenizer_2,
        transformer=transformer.eval(),
    )
    return pipe.to(device=device, dtype=dtype)


def tiny_sdxl_ids(tokenizer: Any) -> dict[str, int]:
    """The special token ids of the byte-level tokenizer (for CLIP text configs)."""
    from zsampling.testing.tiny import BOS, EOS

    bos, eos = tokenizer.convert_tokens_to_ids(BOS), tokenizer.convert_tokens_to_ids(EOS)
    return {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": eos}


# -- measurements ------------------------------------------------------------------------------


def synchronize(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def compared(
    name: str,
    measured: str,
    target: str,
    arms: dict[str, Callable[[], Any]],
    device: str,
    rounds: int,
) -> Figure:
    """Two arms (numerator first) timed in interleaved rounds: the ratio with its spread, the
    arm times, and how far apart their final latents end."""
    runs = Interleaved(arms, synchronize(device))
    runs.warm_up()
    for _ in range(rounds):
        runs.round()
    num, den = arms
    ratio = runs.ratio(num, den)
    fig = Figure(name, measured, target, ratio["ratio"], ratio["ratio_low"], ratio["ratio_high"])
    fig.rounds = int(ratio["rounds"])
    for arm, times in runs.times.items():
        fig.details[f"{arm} (median)"] = f"{1000 * statistics.median(times):.1f} ms"
    apart = relative_norm(runs.outputs[num], runs.outputs[den])
    fig.details["latents, relative difference"] = f"{apart:.2e}"
    return fig


@dataclass
class SdxlRuns:
    """The four SDXL runs the time and memory comparisons are made of, from the same noise."""

    pipe: Any
    args: argparse.Namespace
    latents: torch.Tensor
    zigzag_rows: int = 0
    released_rows: list[int] = field(default_factory=list)

    def standard(self) -> Any:
        from zsampling import Standard
        from zsampling.integrations.diffusers import generate

        px = self.args.px
        return generate(
            self.pipe,
            PROMPTS,
            sampler=Standard(guidance=GUIDANCE),
            steps=self.args.steps,
            seed=SEEDS,
            height=px,
            width=px,
            output_type="latent",
        )

    def pipeline(self) -> Any:
        px = self.args.px
        return self.pipe(
            PROMPTS,
            latents=self.latents.clone(),
            guidance_scale=GUIDANCE,
            num_inference_steps=self.args.steps,
            height=px,
            width=px,
            output_type="latent",
        ).images

    def zigzag(self) -> Any:
        from zsampling import Uniform, Zigzag, sample
        from zsampling.integrations.diffusers import pipeline_model

        model = pipeline_model(self.pipe, height=self.args.px, width=self.args.px)
        zig = Zigzag(guidance=GUIDANCE, inversion="official", inversion_guidance=0.0)
        noise = self.latents.cpu()
        result = sample(
            model, zig, prompts=PROMPTS, noise=noise, schedule=Uniform(steps=self.args.steps)
        )
        self.zigzag_rows = result.counter.rows
        return result.latents

    def released(self) -> Any:
        from zsampling.testing.released_loop import released_zigzag

        self.released_rows.clear()
        steps = self.args.steps
        return released_zigzag(
            self.pipe, PROMPTS, self.latents, steps, GUIDANCE, 0.0, self.released_rows
        )


def standard_figure(runs: SdxlRuns) -> Figure:
    return compared(
        "standard",
        f"generate() / pipe(), standard sampling, {runs.args.steps} Euler steps",
        "<= 1.00",
        {"zsampling": runs.standard, "diffusers": runs.pipeline},
        runs.args.device,
        runs.args.rounds,
    )


def zigzag_figure(runs: SdxlRuns) -> Figure:
    fig = compared(
        "zigzag",
        f"Z-Sampling (official zags, gamma2 = 0) / the released loop, T = {runs.args.steps}",
        "<= 0.85",
        {"zsampling": runs.zigzag, "released": runs.released},
        runs.args.device,
        runs.args.rounds,
    )
    rows = f"{runs.zigzag_rows} / {sum(runs.released_rows)}"
    fig.details = {"UNet rows, zsampling / released": rows, **fig.details}
    return fig


def overhead_figure(pipe: Any, args: argparse.Namespace) -> Figure:
    from zsampling import Standard
    from zsampling.integrations.diffusers import generate, pipeline_model

    model = pipeline_model(pipe, height=args.px, width=args.px)
    cond, uncond = model.encode(PROMPTS[:1])
    both = {k: torch.cat([uncond[k], cond[k]]) for k in cond}
    added = {k: both[k] for k in ("text_embeds", "time_ids") if k in both}
    x = torch.randn(2, *model.latent_shape(), device=args.device, dtype=model.dtype)
    t = torch.full((2,), 500.0, device=args.device)
    memo: dict[str, Any] = {}

    def unet() -> Any:
        return pipe.unet(
            x,
            t,
            encoder_hidden_states=both["encoder_hidden_states"],
            added_cond_kwargs=added or None,
            return_dict=False,
        )[0]

    def all_in() -> Any:
        with networks_stubbed(pipe, memo):
            return generate(
                pipe,
                PROMPTS[0],
                sampler=Standard(guidance=GUIDANCE),
                steps=args.steps,
                seed=SEEDS[0],
                height=args.px,
                width=args.px,
                output_type="latent",
            )

    runs = Interleaved({"all_in": all_in, "unet": unet}, synchronize(args.device))
    runs.warm_up()  # the networks' first calls fill memo: from here on only glue is timed
    for _ in range(args.rounds):
        runs.round()
    ratio = runs.ratio("all_in", "unet", scale=1.0 / args.steps)
    fig = Figure(
        "overhead",
        "generate() per step, the networks answering from a cache / one UNet call at batch 2 "
        f"(1 prompt + CFG, {args.steps} steps)",
        "< 1%",
        100 * ratio["ratio"],
        100 * ratio["ratio_low"],
        100 * ratio["ratio_high"],
        int(ratio["rounds"]),
    )
    fig.details["UNet call (median)"] = f"{1000 * statistics.median(runs.times['unet']):.2f} ms"
    step = 1e6 * statistics.median(runs.times["all_in"]) / args.steps
    fig.details["generate() per step, networks cached"] = f"{step:.0f} us"
    return fig


def peak_memory(device: str, run: Callable[[], Any]) -> int:
    """Bytes a run allocates above what was allocated before it (CUDA: the allocator's peak;
    CPU: the resident set's high-water mark, after handing freed heap back; Linux only)."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    with contextlib.suppress(OSError, AttributeError):  # glibc: hand freed heap back
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    status = Path("/proc/self/status")
    base = _status_kb(status, "VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)
    run()
    return 1024 * (_status_kb(status, "VmHWM") - base)


def _status_kb(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def memory_figures(runs: SdxlRuns) -> list[Figure]:
    arms: dict[str, Callable[[], Any]] = {
        "zsampling standard": runs.standard,
        "pipe()": runs.pipeline,
        "zsampling zigzag": runs.zigzag,
        "released loop": runs.released,
    }
    for run in arms.values():
        run()  # warm-up: lazy initialisation and allocator caches
    peaks = {name: peak_memory(runs.args.device, run) for name, run in arms.items()}
    what = "peak memory allocated by one run"
    figures = []
    for name, (num, den) in {
        "memory, standard": ("zsampling standard", "pipe()"),
        "memory, zigzag": ("zsampling zigzag", "released loop"),
    }.items():
        fig = Figure(name, f"{what}, {num} / {den}", "(reported)", peaks[num] / peaks[den])
        fig.details = {k: f"{peaks[k] / 2**20:.0f} MiB" for k in (num, den)}
        figures.append(fig)
    return figures


def flux_figures(args: argparse.Namespace) -> list[Figure]:
    """FLUX.1-dev (guidance embedded, no CFG): ``generate()`` against ``pipe()``: time, memory."""
    from zsampling import Standard
    from zsampling.integrations.diffusers import generate

    dtype = getattr(torch, args.flux_dtype)
    pipe = flux_pipeline(args.size, args.device, dtype)
    pipe.set_progress_bar_config(disable=True)
    embedded = 3.5  # both sides encode prompts to T5's default 512 tokens

    def ours() -> Any:
        return generate(
            pipe,
            PROMPTS,
            sampler=Standard(guidance=embedded),
            steps=args.flux_steps,
            seed=SEEDS,
            height=args.px,
            width=args.px,
            output_type="latent",
        )

    def theirs() -> Any:
        return pipe(
            PROMPTS,
            generator=[torch.Generator().manual_seed(s) for s in SEEDS],
            guidance_scale=embedded,
            num_inference_steps=args.flux_steps,
            height=args.px,
            width=args.px,
            output_type="latent",
        ).images

    speed = compared(
        "FLUX",
        f"FLUX.1-dev-shaped transformer, {args.flux_dtype}: generate() / pipe(), "
        f"{args.flux_steps} steps, embedded guidance {embedded:g}",
        "<= 1.00",
        {"zsampling": ours, "diffusers": theirs},
        args.device,
        args.rounds,
    )
    peaks = {
        name: peak_memory(args.device, run)
        for name, run in (("generate()", ours), ("pipe()", theirs))
    }
    memory = Figure(
        "memory, FLUX",
        "peak memory allocated by one run, generate() / pipe()",
        "(reported)",
        peaks["generate()"] / peaks["pipe()"],
    )
    memory.details = {k: f"{v / 2**20:.0f} MiB" for k, v in peaks.items()}
    return [speed, memory]


# -- report ------------------------------------------------------------------------------------


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def render(figures: list[Figure], args: argparse.Namespace, command: str) -> str:
    import diffusers

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shape = "SDXL-shaped UNet" if args.size == "full" else "tiny SDXL pipeline"
    lines = [
        f"Measured on **{device_name(args.device)}**, {when}: torch {torch.__version__}, "
        f"diffusers {diffusers.__version__}, Python {platform.python_version()}. "
        f"{shape} with random weights, {args.px} px, {args.dtype}, {len(PROMPTS)} prompts, "
        f"guidance {GUIDANCE:g}, {args.rounds} interleaved rounds per comparison. Command: "
        f"`{command}`.",
        "",
        "| comparison | measured | ratio (median) | spread of rounds | target | details |",
        "|---|---|---|---|---|---|",
    ]
    for fig in figures:
        if fig.failed is not None:
            lines.append(
                f"| {fig.name} | {fig.measured} | failed | | {fig.target} | {fig.failed} |"
            )
            continue
        percent = fig.name == "overhead"
        unit = "%" if percent else ""
        value = "n/a" if fig.ratio is None else f"{fig.ratio:.3f}{unit}"
        spread = (
            f"{fig.low:.3f}-{fig.high:.3f}{unit} ({fig.rounds} rounds)"
            if fig.low is not None and fig.high is not None
            else "one run per arm"
        )
        details = "; ".join(f"{k}: {v}" for k, v in fig.details.items())
        lines.append(
            f"| {fig.name} | {fig.measured} | {value} | {spread} | {fig.target} | {details} |"
        )
    return "\n".join(lines) + "\n"


MARKED = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)


def _has_markers(path: Path) -> bool:
    return path.is_file() and MARKED.search(path.read_text(encoding="utf-8")) is not None


def write_between_markers(path: Path, text: str) -> None:
    """Replace what lies between the markers in ``path`` (checked before measuring)."""
    doc = path.read_text(encoding="utf-8")
    path.write_text(MARKED.sub(lambda _: f"{START}\n{text}{END}", doc, count=1), encoding="utf-8")


def sdxl_figures(args: argparse.Namespace, report: Report) -> list[Figure]:
    """Every SDXL comparison; one that fails is reported as failed, the others still run."""
    from zsampling.testing.tiny import latents_noise

    dtype = getattr(torch, args.dtype)
    pipe = sdxl_pipeline(args.size, args.device, dtype)
    pipe.set_progress_bar_config(disable=True)
    shape = (4, args.px // pipe.vae_scale_factor, args.px // pipe.vae_scale_factor)
    # The noise generate(seed=...) draws, in the pipeline's dtype as diffusers draws it.
    latents = latents_noise(SEEDS, shape, dtype).to(args.device)
    figures: list[Figure] = []
    runs = SdxlRuns(pipe, args, latents)
    jobs: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("standard", lambda: [standard_figure(runs)]),
        ("zigzag", lambda: [zigzag_figure(runs)]),
        ("overhead", lambda: [overhead_figure(pipe, args)]),
        ("memory", lambda: memory_figures(runs)),
    ]
    for name, job in jobs:
        figures += guarded(name, job)
        report(figures)
    return figures


def guarded(name: str, job: Callable[[], list[Figure]]) -> list[Figure]:
    """The job's figures, or one failed figure with the error (the traceback goes to stderr)."""
    print(f"measuring {name} ...", file=sys.stderr, flush=True)
    try:
        return job()
    except Exception as exc:  # one failed comparison must not lose the others' figures
        traceback.print_exc()
        return [Figure(name, name, "", failed=f"{type(exc).__name__}: {exc}"[:300])]


#: Called with the figures measured so far, after every comparison.
Report = Callable[[list[Figure]], None]


def measure(args: argparse.Namespace, report: Report) -> list[Figure]:
    figures = sdxl_figures(args, report)
    gc.collect()  # the SDXL pipeline's memory, before FLUX's transformer
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    figures = figures + guarded("FLUX", lambda: flux_figures(args))
    report(figures)
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--size", default="full", choices=["full", "small"])
    parser.add_argument("--steps", type=int, default=None, help="default: 20 (full), 3 (small)")
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument(
        "--flux-dtype", default="bfloat16", choices=["float16", "bfloat16", "float32"]
    )
    parser.add_argument(
        "--flux-steps", type=int, default=None, help="default: 12 (full), 2 (small)"
    )
    parser.add_argument("--write", type=Path, help="a Markdown file with the gpu-figures markers")
    args = parser.parse_args(argv)
    if args.rounds < MIN_ROUNDS:
        parser.error(f"--rounds must be at least {MIN_ROUNDS}")
    if args.write is not None and not _has_markers(args.write):
        parser.error(f"{args.write} has no {START} ... {END} section to fill")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here; --device cpu --size small checks the script")
    args.steps = args.steps or (20 if args.size == "full" else 3)
    args.flux_steps = args.flux_steps or (12 if args.size == "full" else 2)
    args.px = 1024 if args.size == "full" else 32
    torch.manual_seed(0)
    command = ("python benchmarks/gpu_figures.py " + " ".join(argv)).strip()

    def report(figures: list[Figure]) -> None:
        # Written after every comparison, so a run cut short (a lease ending, an
        # out-of-memory kill) keeps the figures it has; the last call holds them all.
        text = render(figures, args, command)
        print(text, flush=True)
        if args.write is not None:
            write_between_markers(args.write, text)

    measure(args, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
