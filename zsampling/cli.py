"""The ``zsampling`` command line (typer + rich). Heavy imports happen inside commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="zsampling",
    help="Composable reflective diffusion samplers: Z-Sampling (zigzag), Restart, W2SD, as "
    "plugins over diffusers, k-diffusion and analytic models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

EXIT_USAGE = 2


EXIT_FAILURE = 1


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print an error as one paragraph (no traceback) and exit (2: bad input, 1: run failed)."""
    from rich.markup import escape

    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """Report zsampling's errors as one paragraph: exit 2 for bad input, 1 for a failed run."""
    from zsampling.core.errors import RunFailure, ZSamplingError

    try:
        yield
    except RunFailure as exc:
        fail(str(exc), EXIT_FAILURE)
    except ZSamplingError as exc:
        fail(str(exc))


def _registry() -> Any:
    from zsampling.plugins.manager import default_registry

    return default_registry()


def _load(config: Path, overrides: list[str]) -> Any:
    from zsampling.runs.config import load_config

    return load_config(config, _registry(), overrides)


SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a setting: --set sampler.guidance=7 (repeatable)."),
]


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="A .toml or .yaml run config.")],
    set_: SetOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that already exist.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Generate every (prompt, seed) of CONFIG; existing outputs are kept unless --overwrite."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from zsampling.runs.run import RunItem, execute, plan_items, progress_counter

    with reported():
        cfg = _load(config, set_ or [])
        items = plan_items(cfg)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=quiet,
            transient=False,
        ) as bar:

            def factory(item: RunItem, steps: int) -> Any:
                task = bar.add_task(
                    f"{item.index:04d} {item.prompt[:30]} seed {item.seed}", total=steps
                )
                return progress_counter(lambda done: bar.update(task, completed=done))

            results = execute(cfg, overwrite=overwrite, progress=factory, items=items)
    _summary(results, Path(cfg.run.output))


def _summary(results: list[Any], output: Path) -> None:
    made = [r for r in results if not r.skipped]
    kept = len(results) - len(made)
    names = sorted({k for r in made for k in r.metrics})
    table = Table(title=f"{len(made)} generated, {kept} kept (already present) in {output}")
    for col in ("#", "prompt", "seed", "file", *names, "model rows", "seconds"):
        table.add_column(col)
    for r in results:
        metrics = [f"{r.metrics[n]:.4f}" if n in r.metrics else "-" for n in names]
        rows = "-" if r.skipped else str(r.counter.rows)
        secs = "kept" if r.skipped else f"{r.seconds:.2f}"
        name = r.path.name if r.path else "-"
        table.add_row(
            str(r.item.index), r.item.prompt, str(r.item.seed), name, *metrics, rows, secs
        )
    console.print(table)


@app.command()
def reproduce(
    output: Annotated[Path, typer.Argument(help="A PNG or .safetensors written by zsampling.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the re-run (default: OUTPUT's folder/reproduced)."),
    ] = None,
) -> None:
    """Re-run one output from the settings embedded in it and check it is bit-for-bit identical."""
    from zsampling.runs.config import validate_config
    from zsampling.runs.outputs import read_metadata, read_output
    from zsampling.runs.run import RunItem, execute

    if not output.is_file():
        fail(f"OUTPUT = {str(output)!r} is invalid: an existing file written by zsampling")
    try:
        meta = read_metadata(output)
    except Exception as exc:
        fail(f"OUTPUT = {str(output)!r} is invalid: not a readable PNG/safetensors ({exc})")
        return
    if not {"config", "prompt", "seed", "index"} <= set(meta):
        fail(f"OUTPUT = {str(output)!r} is invalid: it carries no zsampling settings")
    target = out or output.parent / "reproduced"
    data = dict(meta["config"])
    data["run"] = {**data["run"], "output": str(target)}
    with reported():
        cfg = validate_config(data, _registry(), f"settings embedded in {output.name}")
        stem = target / output.name.removesuffix(output.suffix)
        item = RunItem(int(meta["index"]), str(meta["prompt"]), int(meta["seed"]), stem)
        [result] = execute(cfg, items=[item])
    assert result.path is not None
    a, b = read_output(output), read_output(result.path)
    if a.shape == b.shape and bool((a == b).all()):
        console.print(f"identical: {result.path} reproduces {output} bit for bit")
        return
    diff = (a.double() - b.double()).abs().max().item() if a.shape == b.shape else "shape"
    fail(f"{result.path} differs from {output} (max abs difference {diff})", EXIT_FAILURE)


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="A .toml or .yaml run config.")],
    set_: SetOption = None,
) -> None:
    """Validate CONFIG (and overrides) without loading any model; print the resolved config."""
    with reported():
        cfg = _load(config, set_ or [])
    console.print_json(json.dumps(cfg.as_dict()))


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every plugin: version, where it came from, its components and their settings."""
    registry = _registry()
    if as_json:
        data = [
            {
                "name": p.name,
                "version": p.version,
                "source": p.source,
                "error": p.error,
                "components": [
                    {"kind": c.kind, "name": c.name, "settings": c.settings_schema()}
                    for c in p.components
                ],
            }
            for p in registry.plugins
        ]
        console.print_json(json.dumps(data))
        return
    for p in registry.plugins:
        from rich.markup import escape

        status = f"[red]FAILED: {escape(p.error)}[/]" if p.error else "[green]ok[/]"
        console.print(
            f"[bold]{escape(p.name)}[/] {p.version}  ({escape(p.source)})  {status}",
            highlight=False,
        )
        table = Table(show_header=True, box=None, padding=(0, 2))
        for col in ("kind", "name", "settings", "description"):
            table.add_column(col)
        for c in p.components:
            fields = ", ".join(
                f"{k}={v.get('default', '<required>')!r}"
                if "default" in v or k in c.settings_schema().get("required", [])
                else k
                for k, v in c.settings_schema().get("properties", {}).items()
            )
            table.add_row(c.kind, escape(c.name), escape(fields or "-"), escape(c.summary))
        if p.components:
            console.print(table)


@app.command()
def schema() -> None:
    """Print the JSON schema of run configs (installed plugins' settings included)."""
    from zsampling.runs.config import config_schema

    sys.stdout.write(json.dumps(config_schema(_registry()), indent=2) + "\n")


@app.command()
def demo(
    model: Annotated[
        str, typer.Option(help="pairs (the hard prompts), digits or analytic.")
    ] = "pairs",
    out: Annotated[Path, typer.Option(help="Where comparison.png goes.")] = Path("out/demo"),
    items: Annotated[int, typer.Option(min=2, help="Items per prompt (each its own seed).")] = 12,
    steps: Annotated[int | None, typer.Option(min=2, help="Sampling steps T.")] = None,
    guidance: Annotated[
        float | None, typer.Option(min=0, help="gamma1; default: the testbed's.")
    ] = None,
) -> None:
    """Z-Sampling vs standard sampling on the hard prompts: alignment and set-level fidelity."""
    from zsampling.evaluation.demo import run_demo
    from zsampling.evaluation.testbeds import TESTBEDS

    if model not in TESTBEDS:
        fail(f"--model = {model!r} is invalid: one of {', '.join(TESTBEDS)}")
    wide = Console(width=max(console.width, 120))
    with reported():
        run_demo(
            out,
            testbed_name=model,
            items_per_prompt=items,
            steps=steps,
            guidance=guidance,
            console=wide,
        )


def _scales(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) < 2 or any(not v >= 0 or v == float("inf") for v in values):
        fail(f"--scales = {text!r} is invalid: two or more finite scales >= 0, e.g. 1,2,4")
    return values


@app.command("eval")
def eval_(
    config: Annotated[Path, typer.Argument(help="The method's run config (a testbed model).")],
    out: Annotated[Path, typer.Option(help="Folder for results.json, table.md, the plot.")] = Path(
        "out/eval"
    ),
    scales: Annotated[
        str | None,
        typer.Option(help="Comma-separated CFG scales of the sweep; default: the testbed's."),
    ] = None,
    items: Annotated[
        int | None, typer.Option(min=2, help="Items per prompt; default: the testbed's.")
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=50, help="Bootstrap replicates.")] = 300,
    set_: SetOption = None,
) -> None:
    """The method on standard CFG's alignment-fidelity frontier, with intervals and the gate."""
    from zsampling.evaluation.evaluate import evaluate
    from zsampling.evaluation.report import gate_line, testbed_table, verdict

    sweep = _scales(scales)
    with reported():
        results = evaluate(
            _load(config, set_ or []),
            out,
            scales=sweep,
            items_per_prompt=items,
            replicates=bootstrap,
            progress=lambda text: errors.print(text, highlight=False),
        )
    console.print(testbed_table(results), highlight=False, soft_wrap=True)
    method = results["arms"][0]
    console.print(f"{method['label']}: {verdict(results, method['frontier'])}", highlight=False)
    if not results["ranks"]:
        errors.print(
            f"not ranking: {gate_line(results)} The ranking metric "
            f"({results['ranking_metric']}) fails the gate on this testbed, so no method is "
            "called better or worse than CFG on it.",
            highlight=False,
        )
    console.print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'frontier.png'}")


@app.command()
def leaderboard(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/leaderboard"),
    testbeds: Annotated[
        str, typer.Option(help="Comma-separated testbeds: analytic, digits, pairs.")
    ] = "analytic,digits,pairs",
    bootstrap: Annotated[int, typer.Option(min=50, help="Bootstrap replicates.")] = 300,
) -> None:
    """Every registered sampler and guider on every testbed, placed on the CFG frontier."""
    from zsampling.evaluation.leaderboard import run_leaderboard
    from zsampling.evaluation.testbeds import TESTBEDS

    names = [t.strip() for t in testbeds.split(",") if t.strip()]
    unknown = [n for n in names if n not in TESTBEDS]
    if unknown or not names:
        fail(f"--testbeds = {testbeds!r} is invalid: names from {', '.join(TESTBEDS)}")
    with reported():
        summary = run_leaderboard(
            out,
            names,
            _registry(),
            replicates=bootstrap,
            progress=lambda text: errors.print(text, highlight=False),
        )
    console.print(summary, highlight=False, soft_wrap=True)
    console.print(f"wrote {out / 'leaderboard.md'} and a folder per testbed")


@app.command("train-digits")
def train_digits(
    out: Annotated[Path, typer.Option(help="Folder to write the model to.")] = Path(
        "out/digits-model"
    ),
    seconds: Annotated[float, typer.Option(min=1, help="CPU time budget (seconds).")] = 480.0,
    max_steps: Annotated[int, typer.Option(min=1, help="Step budget.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    pairs: Annotated[
        bool, typer.Option(help="Two digits side by side (the digit-pairs model).")
    ] = False,
    twins: Annotated[
        float, typer.Option(min=0, max=1, help="With --pairs: share of same-digit pairs.")
    ] = 0.85,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
) -> None:
    """Train a class-conditional digits diffusion model on scikit-learn's digits."""
    from zsampling.digits.train import train

    if out.exists() and any(out.iterdir()) and not overwrite:
        fail(
            f"--out = {str(out)!r} is invalid: the folder exists and is not empty "
            "(pass --overwrite to replace it)"
        )
    losses = train(
        out,
        slots=2 if pairs else 1,
        twins=twins if pairs else 0.0,
        seconds=seconds,
        max_steps=max_steps,
        seed=seed,
        log=lambda step, loss: console.print(f"step {step}: loss {loss:.4f}"),
    )
    head, tail = losses[: min(50, len(losses))], losses[-min(50, len(losses)) :]
    console.print(
        f"{len(losses)} steps; mean loss {sum(head) / len(head):.4f} (first 50) -> "
        f"{sum(tail) / len(tail):.4f} (last 50); saved to {out}"
    )


@app.command("train-judge")
def train_judge(
    out: Annotated[Path, typer.Option(help="Folder to write the judge to.")] = Path("out/judge"),
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
) -> None:
    """Train the independent judge (a CNN on real digits only) and report its quality."""
    from zsampling.digits.judge import train_judge as fit

    judge = fit(out, seed=seed)
    console.print(
        f"judge: held-out accuracy {judge.accuracy:.4f}, expected calibration error "
        f"{judge.ece:.4f} (temperature {judge.temperature:.3f}); saved to {out}"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
