"""The ``zsampling`` command line (typer + rich). Heavy imports happen inside commands."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
MESSAGE_LIMIT = 4000  # characters of one error message; the rest is cut (see --traceback)

# Terminal controls (escape sequences, carriage returns) and bidirectional overrides ("Trojan
# Source") in a prompt, a path or a plugin's text must show as text, not act on the terminal.
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_HIDDEN = {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}


def printable(text: object, keep_newlines: bool = False) -> str:
    """``text`` with control, private-use, unassigned and bidi-override characters escaped
    (``\\x1b``, ``\\u202e``), so it prints as what it is."""
    import unicodedata

    out = []
    for ch in str(text):
        if (ch == "\n" and keep_newlines) or (
            unicodedata.category(ch) not in _HIDDEN and ch not in _BIDI
        ):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def plain(text: object) -> Any:
    """A Rich renderable that shows ``text`` as is: no markup, controls escaped."""
    from rich.text import Text

    return Text(printable(text))


class ErrorBoundary(TyperGroup):
    """Every command runs inside one error boundary (see `report`): no input, folder or plugin
    can make zsampling print a traceback unless ``--traceback`` (before or after the command)
    asks for it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """``--traceback`` is the group's option, but users type it after the command too
        (``zsampling run cfg.toml --traceback``): move it in front (never past a ``--``)."""
        end = args.index("--") if "--" in args else len(args)
        if "--traceback" in args[:end]:
            args = ["--traceback", *(a for a in args[:end] if a != "--traceback"), *args[end:]]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors: typer's own
            raise
        except KeyboardInterrupt:
            fail(
                "interrupted; every output already written is complete and kept: run the same "
                "command again to continue",
                EXIT_INTERRUPTED,
            )
        except BaseException as exc:  # SystemExit from a plugin's code included
            report(exc, ctx.params.get("show_traceback", False), ctx.invoked_subcommand)


def report(exc: BaseException, show_traceback: bool, command: str | None) -> NoReturn:
    """One paragraph on stderr and the exit code: 2 for bad input (any `ZSamplingError` that is
    not a `RunFailure`), 1 for a failed run or an unexpected error; the traceback only on
    request."""
    import traceback

    from zsampling.core.errors import RunFailure, ZSamplingError

    if show_traceback:
        errors.print(
            printable("".join(traceback.format_exception(exc)), keep_newlines=True),
            markup=False,
            highlight=False,
        )
    if isinstance(exc, ZSamplingError):
        message = str(exc)
        code = EXIT_FAILURE if isinstance(exc, RunFailure) else EXIT_USAGE
        if exc.__cause__ is not None and not show_traceback:
            message += " (run with --traceback to see where)"
    else:
        from zsampling.core.errors import one_line

        message = (
            f"zsampling {command or ''} failed unexpectedly: {one_line(exc)}. This is a bug in "
            "zsampling or a library it uses"
            + ("" if show_traceback else "; run again with --traceback to see where")
        )
        code = EXIT_FAILURE
    fail(message, code)
    raise AssertionError("unreachable")  # fail() always exits


app = typer.Typer(
    name="zsampling",
    help="Composable reflective diffusion samplers: Z-Sampling (zigzag), Restart, W2SD, as "
    "plugins over diffusers, k-diffusion and analytic models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=ErrorBoundary,
)
console = Console()
errors = Console(stderr=True)


@app.callback()
def main_options(
    show_traceback: Annotated[
        bool,
        typer.Option(
            "--traceback",
            envvar="ZSAMPLING_TRACEBACK",
            help="On an error, also print the Python traceback (for plugin authors).",
        ),
    ] = False,
) -> None:
    """Composable reflective diffusion samplers: Z-Sampling (zigzag), Restart, W2SD."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print an error as one paragraph (no traceback) and exit (2: bad input, 1: run failed)."""
    from rich.markup import escape

    text = printable(message, keep_newlines=True)
    if len(text) > MESSAGE_LIMIT:
        text = text[:MESSAGE_LIMIT] + f"... ({len(text) - MESSAGE_LIMIT} more characters)"
    errors.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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

    from zsampling.runs import stopping
    from zsampling.runs.preload import load_run_config
    from zsampling.runs.run import RunItem, execute, plan_items, progress_counter

    cfg = load_run_config(config, _registry(), set_ or [])
    items = plan_items(cfg)
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=quiet,
        transient=False,
    ) as bar:

        def factory(item: RunItem, steps: int) -> Any:
            prompt = printable(item.prompt[:30])
            task = bar.add_task(f"{item.index:04d} {prompt} seed {item.seed}", total=steps)
            return progress_counter(lambda done: bar.update(task, completed=done))

        with stopping.stop_on_signals():
            before = _written_count(items)
            try:
                results = execute(cfg, overwrite=overwrite, progress=factory, items=items)
            except KeyboardInterrupt as stop:
                bar.stop()
                _stopped(stop, items, before)
    _summary(results, Path(cfg.run.output))


def _written_count(items: list[Any]) -> int:
    """How many of ``items`` have an output (for the stop line; unreadable entries count not)."""
    from contextlib import suppress

    from zsampling.runs.run import existing_output

    found = 0
    for item in items:
        with suppress(Exception):  # a planted link or folder: the run itself names those
            found += existing_output(item) is not None
    return found


def _stopped(stop: KeyboardInterrupt, items: list[Any], before: int) -> NoReturn:
    """The stop line, printed whatever --quiet says: how far the run got, how to go on."""
    from zsampling.runs.stopping import Stopped

    done = _written_count(items)
    name, code = (
        (stop.name, stop.exit_code) if isinstance(stop, Stopped) else ("SIGINT", EXIT_INTERRUPTED)
    )
    fail(
        f"stopped by {name}: {done - before} item(s) written by this run, {done} of {len(items)} "
        "done; every output written is complete and in the manifest. Run the same command again "
        "to resume: it keeps what is written and makes the rest",
        code,
    )


def _summary(results: list[Any], output: Path) -> None:
    made = [r for r in results if not r.skipped]
    kept = len(results) - len(made)
    names = sorted({k for r in made for k in r.metrics})
    table = Table(title=plain(f"{len(made)} generated, {kept} kept (already present) in {output}"))
    for col in ("#", "prompt", "seed", "file", *names, "model rows", "seconds"):
        table.add_column(plain(col))
    for r in results:
        metrics = [f"{r.metrics[n]:.4f}" if n in r.metrics else "-" for n in names]
        rows = "-" if r.skipped else str(r.counter.rows)
        secs = "kept" if r.skipped else f"{r.seconds:.2f}"
        name = r.path.name if r.path else "-"
        cells = [str(r.item.index), r.item.prompt, str(r.item.seed), name, *metrics, rows, secs]
        table.add_row(*(plain(c) for c in cells))
    console.print(table)


@app.command()
def compare(
    config: Annotated[Path, typer.Argument(help="A .toml or .yaml run config (the base).")],
    x: Annotated[
        str | None,
        typer.Option(
            "--x", help="Columns: a setting and its values, e.g. sampler.use=standard,zigzag"
        ),
    ] = None,
    y: Annotated[
        str | None, typer.Option("--y", help="Rows, e.g. sampler.guidance=3,5.5,7")
    ] = None,
    z: Annotated[
        str | None, typer.Option("--z", help="One grid per value, e.g. schedule.steps=10,20")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for the cells, the grids and index.html.")
    ] = Path("out/compare"),
    set_: SetOption = None,
    leaderboard: Annotated[
        Path,
        typer.Option(help="zsampling leaderboard's output, for the verdicts on embedded models."),
    ] = Path("out/leaderboard"),
    overwrite: Annotated[bool, typer.Option(help="Replace outputs that already exist.")] = False,
) -> None:
    """Sweep up to three settings (x, y, z) over CONFIG's prompts and seeds: every cell an
    ordinary run, a labelled grid per prompt, and OUT/index.html. Cells already made are kept."""
    from zsampling.compare.scores import default_scorers
    from zsampling.compare.sweep import parse_axes, run_compare

    axes = parse_axes({"x": x, "y": y, "z": z})
    _folder_option(out)

    def progress(cell: Any, k: int, total: int) -> None:
        errors.print(plain(f"cell {k + 1}/{total}: {cell.label}"))

    done = run_compare(
        config,
        set_ or [],
        axes,
        out,
        _registry(),
        overwrite=overwrite,
        scorers=default_scorers(leaderboard),
        progress=progress,
    )
    made = sum(r.made for r in done.results)
    kept = sum(len(r.items) for r in done.results) - made
    grids = (
        f"{len(done.grids)} grid(s) in {out / 'grids'}" if done.grids else "no grids (not images)"
    )
    console.print(
        plain(
            f"{len(done.results)} cells ({made} outputs made, {kept} kept), {grids}; "
            f"open {done.page} ({done.seconds:.1f} s)"
        ),
        soft_wrap=True,
    )


@app.command()
def reproduce(
    output: Annotated[Path, typer.Argument(help="A PNG or .safetensors written by zsampling.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the re-run (default: OUTPUT's folder/reproduced)."),
    ] = None,
) -> None:
    """Re-run one output from the settings embedded in it and check it is bit-for-bit identical."""
    from zsampling.runs.checks import check_output_folder
    from zsampling.runs.config import validate_config
    from zsampling.runs.outputs import read_output
    from zsampling.runs.run import RunItem, execute

    meta = _embedded(output)
    target = out or output.parent / "reproduced"
    stem = target / output.name.removesuffix(output.suffix)
    check_output_folder(target, [stem.name], "--out")
    data = dict(meta.config)
    # Files from before run.batch_size existed were sampled one item at a time.
    data["run"] = {"batch_size": 1, **data["run"], "output": str(target)}
    cfg = validate_config(data, _registry(), f"settings embedded in {output.name}")
    [result] = execute(cfg, items=[RunItem(meta.index, meta.prompt, meta.seed, stem)])
    assert result.path is not None
    a, b = read_output(output), read_output(result.path)
    if a.shape == b.shape and bool((a == b).all()):
        console.print(
            plain(f"identical: {result.path} reproduces {output} bit for bit"), soft_wrap=True
        )
        return
    diff = (a.double() - b.double()).abs().max().item() if a.shape == b.shape else "shape"
    fail(f"{result.path} differs from {output} (max abs difference {diff})", EXIT_FAILURE)


def _embedded(output: Path) -> Any:
    """The zsampling settings embedded in OUTPUT, checked (a tampered file: exit 2, named)."""
    from pydantic import BaseModel, Field, ValidationError

    from zsampling.runs.config import Seed
    from zsampling.runs.config_text import plain_data_issues
    from zsampling.runs.outputs import read_metadata

    class Embedded(BaseModel):
        config: dict[str, Any]
        prompt: str
        seed: Seed
        index: int = Field(ge=0)

    name = f"OUTPUT = {str(output)!r} is invalid"
    if not output.is_file():
        fail(f"{name}: an existing file written by zsampling")
    try:
        meta = read_metadata(output)
    except Exception as exc:
        from zsampling.core.errors import one_line

        fail(f"{name}: not a readable PNG or safetensors file ({one_line(exc)})")
    if not {"config", "prompt", "seed", "index"} <= set(meta):
        fail(f"{name}: it carries no zsampling settings")
    try:
        embedded = Embedded.model_validate(meta)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        fail(f"{name}: its embedded settings are damaged ({where}: {first['msg']})")
    problems = plain_data_issues(embedded.config, "config")
    if problems or not isinstance(embedded.config.get("run"), dict):
        what = str(problems[0]) if problems else "config.run: not a table"
        fail(f"{name}: its embedded settings are damaged ({what})")
    return embedded


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="A .toml or .yaml run config.")],
    set_: SetOption = None,
) -> None:
    """Validate CONFIG (and overrides) without loading any model; print the resolved config."""
    cfg = _load(config, set_ or [])
    console.print_json(json.dumps(cfg.as_dict()), ensure_ascii=True)  # no raw controls either


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
                    {"kind": c.kind, "name": c.name, "settings": _schema(c)} for c in p.components
                ],
            }
            for p in registry.plugins
        ]
        console.print_json(json.dumps(data), ensure_ascii=True)  # \u escapes: no raw controls
        return
    for p in registry.plugins:
        status = f"FAILED: {p.error}" if p.error else "ok"
        line = plain(f"{p.name} {p.version}  ({p.source})  ")
        line.stylize("bold", 0, len(printable(p.name)))
        line.append(printable(status), style="red" if p.error else "green")
        console.print(line, highlight=False)
        table = Table(show_header=True, box=None, padding=(0, 2))
        for col in ("kind", "name", "settings", "description"):
            table.add_column(col)
        for c in p.components:
            table.add_row(*(plain(v) for v in (c.kind, c.name, _settings_line(c), c.summary)))
        if p.components:
            console.print(table)


def _schema(component: Any) -> dict[str, Any]:
    """A component's settings schema; a plugin whose schema fails gets its error instead."""
    try:
        return dict(component.settings_schema())
    except Exception as exc:
        from zsampling.core.errors import one_line

        return {"error": f"its settings schema failed: {one_line(exc)}"}


def _settings_line(component: Any) -> str:
    """``name=default`` for each setting (or the error of a schema that failed)."""
    schema = _schema(component)
    if "error" in schema:
        return f"<{schema['error']}>"
    required = schema.get("required", [])
    return (
        ", ".join(
            f"{k}={v.get('default', '<required>')!r}" if "default" in v or k in required else k
            for k, v in schema.get("properties", {}).items()
        )
        or "-"
    )


@app.command()
def schema() -> None:
    """Print the JSON schema of run configs (installed plugins' settings included)."""
    from zsampling.runs.config import config_schema

    sys.stdout.write(json.dumps(config_schema(_registry()), indent=2) + "\n")


@app.command()
def demo(
    model: Annotated[
        str, typer.Option(help="pairs (the hard prompts), digits, analytic or shapes.")
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
    if guidance is not None:
        _finite("--guidance", guidance)
    _folder_option(out)
    wide = Console(width=max(console.width, 120))
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
    _folder_option(out)
    cfg = _load(config, set_ or [])
    from zsampling.runs.blame import Blame

    blame = Blame(_registry())  # a plugin that fails is named, as in a run
    with blame.stage("evaluating", blame.of("sampler", cfg.sampler)):
        results = evaluate(
            cfg,
            out,
            scales=sweep,
            items_per_prompt=items,
            replicates=bootstrap,
            progress=lambda text: errors.print(plain(text)),
        )
    console.print(plain(testbed_table(results)), soft_wrap=True)
    method = results["arms"][0]
    console.print(plain(f"{method['label']}: {verdict(results, method['frontier'])}"))
    if not results["ranks"]:
        errors.print(
            plain(
                f"not ranking: {gate_line(results)} The ranking metric "
                f"({results['ranking_metric']}) fails the gate on this testbed, so no method is "
                "called better or worse than CFG on it."
            )
        )
    written = ", ".join(str(out / f) for f in ("results.json", "table.md", "frontier.png"))
    console.print(plain(f"wrote {written}"))


@app.command()
def leaderboard(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/leaderboard"),
    testbeds: Annotated[
        str, typer.Option(help="Comma-separated testbeds: analytic, digits, pairs, shapes.")
    ] = "analytic,digits,pairs,shapes",
    bootstrap: Annotated[int, typer.Option(min=50, help="Bootstrap replicates.")] = 300,
) -> None:
    """Every registered sampler and guider on every testbed, placed on the CFG frontier."""
    from zsampling.evaluation.leaderboard import run_leaderboard
    from zsampling.evaluation.testbeds import TESTBEDS

    names = [t.strip() for t in testbeds.split(",") if t.strip()]
    unknown = [n for n in names if n not in TESTBEDS]
    if unknown or not names:
        fail(f"--testbeds = {testbeds!r} is invalid: names from {', '.join(TESTBEDS)}")
    _folder_option(out)
    summary = run_leaderboard(
        out,
        names,
        _registry(),
        replicates=bootstrap,
        progress=lambda text: errors.print(plain(text)),
    )
    console.print(plain(summary), soft_wrap=True)
    console.print(plain(f"wrote {out / 'leaderboard.md'} and a folder per testbed"))


def _training_folder(out: Path, overwrite: bool) -> None:
    """A training command's ``--out``: a folder path, empty unless ``--overwrite``."""
    _folder_option(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        fail(
            f"--out = {str(out)!r} is invalid: the folder exists and is not empty "
            "(pass --overwrite to replace it)"
        )


@app.command("train-shapes")
def train_shapes(
    out: Annotated[Path, typer.Option(help="Folder to write the pipeline to.")] = Path(
        "out/shapes-model"
    ),
    seed: Annotated[int, typer.Option(min=0, max=2**31 - 1, help="Training seed.")] = 0,
    unet_steps: Annotated[int, typer.Option(min=1, help="UNet training steps.")] = 3000,
    vae_steps: Annotated[int, typer.Option(min=1, help="VAE training steps.")] = 600,
    seconds: Annotated[
        float, typer.Option(min=1, help="CPU-time safety limit of the UNet phase (seconds).")
    ] = 3600.0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
) -> None:
    """Train the shapes text-to-image pipeline (a tiny StableDiffusionPipeline; docs/shapes.md)."""
    from zsampling.shapes.train import Recipe, train

    _finite("--seconds", seconds)
    _training_folder(out, overwrite)
    recipe = Recipe(seed=seed, unet_steps=unet_steps, vae_steps=vae_steps, seconds=seconds)
    record = train(
        out,
        recipe,
        log=lambda phase, step, loss: console.print(f"{phase} step {step}: loss {loss:.4f}"),
    )
    cut = " (cut by --seconds: not reproducible)" if record["cut_by_time_limit"] else ""
    console.print(
        f"{record['unet_steps_done']} UNet steps in {record['cpu_seconds']} CPU s{cut}; "
        f"UNet loss {record['unet_loss_first_100']:.4f} (first 100) -> "
        f"{record['unet_loss_last_100']:.4f} (last 100); saved to {printable(out)}",
        markup=False,
    )


@app.command("train-digits")
def train_digits(
    out: Annotated[Path, typer.Option(help="Folder to write the model to.")] = Path(
        "out/digits-model"
    ),
    seconds: Annotated[float, typer.Option(min=1, help="CPU time budget (seconds).")] = 480.0,
    max_steps: Annotated[int, typer.Option(min=1, help="Step budget.")] = 100_000,
    seed: Annotated[int, typer.Option(min=0, max=2**63 - 1, help="Training seed.")] = 0,
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

    _finite("--seconds", seconds)
    _training_folder(out, overwrite)
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
        f"{sum(tail) / len(tail):.4f} (last 50); saved to {printable(out)}",
        markup=False,
    )


@app.command("train-judge")
def train_judge(
    out: Annotated[Path, typer.Option(help="Folder to write the judge to.")] = Path("out/judge"),
    seed: Annotated[int, typer.Option(min=0, max=2**63 - 1, help="Training seed.")] = 0,
) -> None:
    """Train the independent judge (a CNN on real digits only) and report its quality."""
    from zsampling.digits.judge import train_judge as fit

    _folder_option(out)
    judge = fit(out, seed=seed)
    console.print(
        f"judge: held-out accuracy {judge.accuracy:.4f}, expected calibration error "
        f"{judge.ece:.4f} (temperature {judge.temperature:.3f}); saved to {out}"
    )


def _finite(option: str, value: float) -> None:
    if not math.isfinite(value):
        fail(f"{option} = {value!r} is invalid: a finite number")


def _folder_option(folder: Path) -> None:
    """``--out`` must be a folder (or a place one can be made) that can be written."""
    from zsampling.runs.checks import check_output_folder

    check_output_folder(folder, [], "--out")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
