"""``zsampling compare``, driven as a user drives it: one command, cells that are ordinary runs,
labelled grids whose images are the cells' outputs, and a page checked in a real browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from zsampling.cli import app
from zsampling.compare.axes import parse_axis, plan_cells, split_values
from zsampling.compare.cells import CellItem, CellResult
from zsampling.compare.grid import GridSpec, layout, tile_size
from zsampling.plugins.manager import default_registry
from zsampling.runs.outputs import MANIFEST, read_manifest, read_metadata

ROOT = Path(__file__).resolve().parents[1]


PAIRS = """
[model]
use = "digit-pairs"

[schedule]
use = "uniform"
steps = 15

[sampler]
use = "zigzag"
guidance = 1.5
inversion_guidance = 0.0

[run]
prompts = ["0 3", "6 9"]
seeds = [1, 2]
output = "{out}"
"""

AXES = ["--x", "sampler.use=standard,zigzag", "--y", "sampler.guidance=1.5,3"]
BOARD = ["--leaderboard", str(ROOT / "docs" / "results")]


def flat(text: str) -> str:
    return " ".join(text.split())


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return flat(result.output)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One compare of sampler x guidance on the digit-pairs model: (config, out, its output)."""
    tmp = tmp_path_factory.mktemp("compare")
    config = tmp / "pairs.toml"
    config.write_text(PAIRS.format(out=tmp / "single"), encoding="utf-8")
    out = tmp / "cmp"
    said = invoke("compare", str(config), *AXES, "--out", str(out), *BOARD)
    return config, out, said


def cell_folders(out: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted((out / "cells").iterdir())}


def test_every_cell_is_an_ordinary_run(pairs: tuple[Path, Path, str]) -> None:
    """Four cells, each a folder with its manifest; a cell's image is bit for bit what the
    single ``zsampling run`` with the cell's settings writes, and ``reproduce`` re-makes it."""
    config, out, said = pairs
    assert "4 cells (16 outputs made, 0 kept)" in said
    folders = cell_folders(out)
    assert len(folders) == 4
    for folder in folders.values():
        records = read_manifest(folder / MANIFEST)
        assert sorted((r["prompt"], r["seed"]) for r in records.values()) == [
            ("0 3", 1),
            ("0 3", 2),
            ("6 9", 1),
            ("6 9", 2),
        ]
    standard = config.with_name("standard.toml")
    text = config.read_text(encoding="utf-8").replace("inversion_guidance = 0.0\n", "")
    standard.write_text(text.replace('"zigzag"', '"standard"'), encoding="utf-8")
    invoke("run", str(standard), "-q", "--set", "sampler.guidance=3")
    single = sorted((config.parent / "single").glob("*.png"))
    assert len(single) == 4
    (cell,) = [f for n, f in folders.items() if "standard" in n and "guidance-3" in n]
    for path in single:
        assert (cell / path.name).read_bytes() == path.read_bytes()
    # the base config's inversion_guidance belongs to zigzag: standard cells do not carry it
    assert read_metadata(path)["config"]["sampler"] == {"use": "standard", "guidance": 3.0}
    said = invoke("reproduce", str(cell / path.name), "--out", str(config.parent / "again"))
    assert "identical" in said


def test_the_grids_show_the_cells_outputs_labelled(pairs: tuple[Path, Path, str]) -> None:
    """One grid per prompt; each image in it is the cell's output enlarged with whole pixels
    (no blur) at the place of its column (sampler) and row (guidance); the labels are drawn."""
    grids = sorted((pairs[1] / "grids").glob("*.png"))
    assert [g.name for g in grids] == ["00-0-3.png", "01-6-9.png"]
    config, out, _ = pairs
    axes = [parse_axis("x", AXES[1]), parse_axis("y", AXES[3])]
    results = []
    for cell in plan_cells(config, [], axes, default_registry(), out):  # the same folders again
        records = read_manifest(cell.folder / MANIFEST)
        items = [
            CellItem(r["prompt"], r["seed"], cell.folder / n, r, True) for n, r in records.items()
        ]
        results.append(CellResult(cell, items))
    spec = GridSpec("6 9", [1, 2], axes, results)
    at = layout(spec)
    with Image.open(grids[1]) as img:
        grid = np.asarray(img.convert("RGB"))
    assert grid.shape[:2] == (at.size[1], at.size[0])
    assert at.tile == tile_size(16, 8) == (96, 48)
    for result in results:
        c, r = result.cell.position
        for s, seed in enumerate([1, 2]):
            with Image.open(result.item("6 9", seed).path) as img:
                small = np.asarray(img.convert("RGB"))
            expected = small.repeat(6, axis=0).repeat(6, axis=1)
            x, y = at.origin(c, r, s)
            assert np.array_equal(grid[y : y + 48, x : x + 96], expected)
    for x, y in [(at.origin(c, 0)[0], 2 * 17 + 8) for c in range(2)] + [
        (4, at.origin(0, 1)[1] + 16)
    ]:
        assert (grid[y : y + 17, x : x + 30] < 128).any(), "a label is missing"


def test_an_interrupted_compare_resumes(pairs: tuple[Path, Path, str]) -> None:
    """The same command again keeps every output (files untouched); after a cell lost an
    output, only that one is made."""
    config, out, _ = pairs
    outputs = sorted((out / "cells").glob("*/*.png"))
    before = {p: p.stat().st_mtime_ns for p in outputs}
    said = invoke("compare", str(config), *AXES, "--out", str(out), *BOARD)
    assert "4 cells (0 outputs made, 16 kept)" in said
    assert {p: p.stat().st_mtime_ns for p in outputs} == before
    lost = outputs[5]
    data = lost.read_bytes()
    lost.unlink()
    said = invoke("compare", str(config), *AXES, "--out", str(out), *BOARD)
    assert "4 cells (1 outputs made, 15 kept)" in said
    assert lost.read_bytes() == data


PAGE = """
const table = document.getElementById("cells");
const heads = [...table.tHead.rows[0].cells].map((th) => th.textContent);
const images = [...document.images];
return {
  heads: heads,
  rows: [...table.tBodies[0].rows].map((tr) => [...tr.cells].map((td) => td.textContent)),
  images: images.length,
  loaded: images.filter((img) => img.complete && img.naturalWidth > 0).length,
  links: [...document.querySelectorAll("a")].map((a) => a.getAttribute("href")),
};
"""


def test_the_page_in_a_browser(pairs: tuple[Path, Path, str]) -> None:
    """Headless Chromium, offline: the page renders, every image loads, the table lists every
    cell with its values, costs, judge accuracy and verdict, and sorts when a head is clicked."""
    from selenium.webdriver.common.by import By
    from test_docs import headless_chromium

    _, out, _ = pairs
    page = out / "index.html"
    browser = headless_chromium()
    try:
        browser.get(page.as_uri())
        seen = browser.execute_script(PAGE)
        column = seen["heads"].index("guided calls / image")
        browser.find_elements(By.TAG_NAME, "th")[column].click()
        browser.find_elements(By.TAG_NAME, "th")[column].click()  # descending
        resorted = browser.execute_script(PAGE)["rows"]
    finally:
        browser.quit()
    assert seen["images"] == 2 and seen["loaded"] == 2
    assert len(seen["rows"]) == 4
    heads = seen["heads"]
    for head in ("sampler.use", "sampler.guidance", "model rows / image", "judge accuracy"):
        assert head in heads
    cells = {(row[1], row[2]): row for row in seen["rows"]}
    assert set(cells) == {
        ("standard", "1.5"),
        ("zigzag", "1.5"),
        ("standard", "3"),
        ("zigzag", "3"),
    }
    guided = {k: float(row[column]) for k, row in cells.items()}
    assert guided[("standard", "1.5")] == 15 and guided[("zigzag", "3")] == 3 * 15 - 2
    verdicts = {k: row[heads.index("leaderboard verdict")] for k, row in cells.items()}
    assert verdicts[("standard", "3")].startswith("a point of the CFG sweep")
    assert "arm 'zigzag (source), g=1.5'" in verdicts[("zigzag", "1.5")]
    accuracy = [float(row[heads.index("judge accuracy")]) for row in seen["rows"]]
    assert all(a in (0.0, 0.25, 0.5, 0.75, 1.0) for a in accuracy)
    assert [float(r[column]) for r in resorted] == sorted(guided.values(), reverse=True)
    for href in seen["links"]:
        assert (out / href).is_file(), href


def test_judge_accuracy_is_the_judge_on_the_outputs(pairs: tuple[Path, Path, str]) -> None:
    """The page's accuracy is the digit-accuracy metric on the cell's images (pixels mapped
    back to [-1, 1]): the same numbers a run with ``[[metrics]] use = "digit-accuracy"`` gives,
    up to the images' 8-bit rounding."""
    import torch

    from zsampling.adapters.digits import DigitPairsAdapter
    from zsampling.compare.scores import as_latents
    from zsampling.metrics.digits import DigitAccuracy

    _, out, _ = pairs
    html = (out / "index.html").read_text(encoding="utf-8")
    model = DigitPairsAdapter().load()
    for folder in cell_folders(out).values():
        records = read_manifest(folder / MANIFEST)
        latents = torch.stack([as_latents(folder / name) for name in records])
        prompts = [r["prompt"] for r in records.values()]
        accuracy = float(DigitAccuracy().score(model, latents, prompts).mean())
        row = re.search(rf'href="cells/{folder.name}/.*?</tr>', html)
        assert row is not None
        assert f'data-value="{accuracy!r}"' in row.group(0)


def test_invalid_cells_are_reported_together_before_anything_runs(tmp_path: Path) -> None:
    config = tmp_path / "pairs.toml"
    config.write_text(PAIRS.format(out=tmp_path / "single"), encoding="utf-8")
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(config),
            "--x",
            "sampler.use=standard,zigzag",
            "--y",
            "sampler.inversion_guidance=0,1",
            "--z",
            "schedule.steps=4,0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    text = flat(result.output)
    assert "swept over 8 cell(s) has 8 problem(s)" in text
    cell = "[sampler.use=standard, sampler.inversion_guidance=1, schedule.steps=4]"
    assert f"{cell} sampler.inversion_guidance: unknown setting" in text
    assert (
        "[sampler.use=zigzag, sampler.inversion_guidance=0, schedule.steps=0] schedule.steps"
        in text
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--y", "sampler.guidance=1,2"],
            "--y = 'sampler.guidance=1,2' is invalid: an axis after --x",
        ),
        (["--x", "sampler.guidance"], "is invalid: key.path=value1,value2,..."),
        (["--x", "sampler.guidance=1,1"], "distinct values"),
        (["--x", "run.seeds=1,2"], "a setting outside [run]"),
        (["--x", "sampler.guidance=1,2", "--y", "sampler.guidance=3,4"], "one axis per setting"),
    ],
)
def test_bad_axes_are_named(tmp_path: Path, args: list[str], message: str) -> None:
    config = tmp_path / "pairs.toml"
    config.write_text(PAIRS.format(out=tmp_path / "single"), encoding="utf-8")
    result = CliRunner().invoke(app, ["compare", str(config), *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message in flat(result.output)


def test_axis_values_keep_commas_inside_lists_and_quotes() -> None:
    assert split_values('[1, 2],[3,4], "a, b"') == ["[1, 2]", "[3,4]", '"a, b"']
    assert parse_axis("x", "schedule.steps=10, 20").values == ("10", "20")


def test_without_leaderboard_results_the_page_says_where_it_looked(tmp_path: Path) -> None:
    config = tmp_path / "pairs.toml"
    config.write_text(
        PAIRS.format(out=tmp_path / "single").replace('["0 3", "6 9"]', '["0 3"]'),
        encoding="utf-8",
    )
    missing = tmp_path / "nothing"
    args = [
        "--x",
        "schedule.steps=2,3",
        "--out",
        str(tmp_path / "o"),
        "--leaderboard",
        str(missing),
    ]
    invoke("compare", str(config), *args)
    html = (tmp_path / "o" / "index.html").read_text(encoding="utf-8")
    assert f"no leaderboard results in {missing}" in html
    assert json.dumps("schedule.steps")[1:-1] in html


TINY = """
[model]
use = "{use}"
path = "{path}"
{extra}

[schedule]
use = "{schedule}"
steps = 3

[sampler]
use = "standard"
guidance = 2.0

[run]
prompts = ["a red cube"]
seeds = [7]
output = "{out}"
"""

FLUX = "height = 32\nwidth = 32\nmax_sequence_length = 32"


@pytest.mark.parametrize("family", ["sd", "flux"])
def test_each_cell_on_a_pipeline_folder_is_the_single_run(
    family: str, tmp_path: Path, tiny_sd_dir: Path, single_thread: None
) -> None:
    """On a tiny SD folder and a tiny FLUX folder: every cell's image is byte for byte the
    image ``zsampling run`` writes with the cell's values given as ``--set``."""
    if family == "sd":
        settings = {"use": "diffusers", "path": tiny_sd_dir, "extra": "", "schedule": "uniform"}
    else:
        from zsampling.testing.tiny_flow import write_tiny_flow_pipeline

        folder = write_tiny_flow_pipeline(tmp_path / "flux", "flux")
        settings = {"use": "flux", "path": folder, "extra": FLUX, "schedule": "flow-match"}
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(out=tmp_path / "single", **settings), encoding="utf-8")
    out = tmp_path / "cmp"
    axes = ["--x", "sampler.use=standard,zigzag", "--y", "sampler.guidance=2,4"]
    said = invoke("compare", str(config), *axes, "--out", str(out))
    assert "4 cells (4 outputs made, 0 kept), 1 grid(s)" in said
    for use in ("standard", "zigzag"):
        for guidance in ("2", "4"):
            single = tmp_path / f"single-{use}-{guidance}"
            sets = [f"sampler.use={use}", f"sampler.guidance={guidance}", f"run.output={single}"]
            invoke("run", str(config), "-q", *(a for s in sets for a in ("--set", s)))
            (made,) = single.glob("*.png")
            (cell,) = out.glob(f"cells/sampler-use-{use}-sampler-guidance-{guidance}-*/*.png")
            assert cell.name == made.name
            assert cell.read_bytes() == made.read_bytes()


def test_a_third_axis_gives_a_grid_per_value(tmp_path: Path) -> None:
    """x, y and z: a grid per prompt and z value, each with the z value in its title; the
    table lists all eight cells."""
    config = tmp_path / "pairs.toml"
    text = PAIRS.format(out=tmp_path / "single").replace('["0 3", "6 9"]', '["0 3"]')
    config.write_text(text.replace("seeds = [1, 2]", "seeds = [5]"), encoding="utf-8")
    out = tmp_path / "o"
    axes = [*AXES, "--z", "schedule.steps=2,3"]
    said = invoke("compare", str(config), *axes, "--out", str(out), *BOARD)
    assert "8 cells (8 outputs made, 0 kept), 2 grid(s)" in said
    assert sorted(p.name for p in (out / "grids").glob("*.png")) == [
        "00-0-3-z0.png",
        "00-0-3-z1.png",
    ]
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "prompt: 0 3   schedule.steps = 3" in html
    assert html.count('<tr><td class="num" data-value="') == 8


def test_tiles_are_shown_at_a_readable_size() -> None:
    """Large outputs are shrunk to 256 pixels on their long side, small ones enlarged by a whole
    factor to at least 96."""
    assert tile_size(1024, 768) == (256, 192)
    assert tile_size(512, 512) == (256, 256)
    assert tile_size(200, 100) == (200, 100)
    assert tile_size(8, 8) == (96, 96)
    assert tile_size(32, 32) == (96, 96)
    assert tile_size(40, 20) == (120, 60)


def test_cells_with_one_model_load_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Consecutive cells on the same [model] share the loaded model (each cell's run still
    checks it against its own settings); the images are those of separate runs (the parity
    tests above hold this for every cell)."""
    import zsampling.compare.cells as cells

    loads = []
    original = cells.load_model

    def counting(spec, blame):  # type: ignore[no-untyped-def]
        loads.append(spec.adapter.name)
        return original(spec, blame)

    monkeypatch.setattr(cells, "load_model", counting)
    config = tmp_path / "pairs.toml"
    text = PAIRS.format(out=tmp_path / "single").replace('["0 3", "6 9"]', '["0 3"]')
    config.write_text(text, encoding="utf-8")
    said = invoke(
        "compare", str(config), "--x", "schedule.steps=2,3,4", "--out", str(tmp_path / "o")
    )
    assert "3 cells (6 outputs made, 0 kept)" in said
    assert loads == ["digit-pairs"]
