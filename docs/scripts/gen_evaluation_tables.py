"""Put the leaderboard's results into docs/evaluation.md (tables and plots), never by hand.

``python docs/scripts/gen_evaluation_tables.py OUT`` copies ``OUT/<testbed>/results.json`` and
``frontier.png`` (what ``zsampling leaderboard --out OUT`` wrote) to ``docs/results/`` and then
rewrites every generated block of docs/evaluation.md from the JSON files;
``python docs/scripts/gen_evaluation_tables.py`` only rewrites the blocks. A test fails when the
page and the results files disagree.

A generated block sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``, where
NAME is a testbed (its frontier table), ``leaderboard`` (every method on every testbed),
``facts`` (the testbeds' models and judge), ``search`` (search against zigzag at equal
evaluations, with the answer in words), ``shapes-categories`` (per-category accuracy on the
shapes testbed) or ``shapes-findings`` (what the shapes results say, in words computed from them).

The page leads with what the run found (a reader comes for that), then how it is measured, then
the run's provenance beside the tables it produced: ``render`` refuses a page whose sections
``SECTIONS`` are missing or out of that order. A section added between them is fine.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from zsampling.evaluation.report import category_table, fmt, leaderboard_table, testbed_table
from zsampling.evaluation.search_report import search_table

DOCS = Path(__file__).resolve().parents[1]
RESULTS = DOCS / "results"
PAGE = DOCS / "evaluation.md"
TESTBEDS = ("analytic", "digits", "pairs", "shapes")
SECTIONS = (
    "## What the results say",
    "## The protocol",
    "## The run behind the tables",
    "## The testbeds",
    "## Every method on every testbed",
    "## Per testbed",
)


def load() -> dict[str, dict[str, Any]]:
    return {n: json.loads((RESULTS / f"{n}.json").read_text(encoding="utf-8")) for n in TESTBEDS}


def facts(results: dict[str, dict[str, Any]]) -> str:
    """The testbeds in one table: items, judge quality, held-out real data's alignment."""
    lines = [
        "| testbed | prompts x items | T | guidance | judge held-out accuracy | judge ECE | "
        "held-out real data: accuracy / logp | run time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        judge = r["judge"]
        acc = "exact posterior" if judge.get("exact") else fmt(judge["held_out_accuracy"], 4)
        if judge.get("rule_based"):
            acc = f"{acc} (rule-based, {judge['held_out_renders']} renders)"
        ece = fmt(judge["ece"], 3) if "ece" in judge else "-"
        ref = r["reference"]["alignment"]
        lines.append(
            f"| {name} | {len(r['prompts'])} x {r['items_per_prompt']} | {r['steps']} | "
            f"{fmt(r['guidance'])} | {acc} | {ece} | {fmt(ref['accuracy'], 4)} / "
            f"{fmt(ref['logp'])} | {r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def blocks(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    out = {name: testbed_table(r) for name, r in results.items()}
    out["leaderboard"] = leaderboard_table(list(results.values()))
    out["facts"] = facts(results)
    out["search"] = search_table(list(results.values()))
    if "shapes" in results:
        out["shapes-categories"] = category_table(results["shapes"])
        out["shapes-findings"] = shapes_findings(results["shapes"])
    return out


def check_sections(page: str) -> None:
    """Findings first, then the protocol, then provenance beside the tables (``SECTIONS``)."""
    at = [page.find(f"\n{heading}\n") for heading in SECTIONS]
    if -1 in at or at != sorted(at):
        found = [h for _, h in sorted((a, h) for a, h in zip(at, SECTIONS, strict=True) if a >= 0)]
        raise SystemExit(
            f"docs/evaluation.md must have the sections {list(SECTIONS)} in this order; "
            f"it has {found}"
        )


def shapes_findings(r: dict[str, Any]) -> str:
    """The shapes testbed's results in plain words, every number read from them."""
    by_scale = {a["guidance"]: a for a in r["sweep"]}
    standard = by_scale[r["guidance"]]["alignment"]
    best_cfg = max(r["sweep"], key=lambda a: a["alignment"]["accuracy"])
    ranked = sorted(r["arms"], key=lambda a: -a["alignment"]["accuracy"])
    verdicts = {a["label"]: _verdict(r, a) for a in r["arms"]}
    better = [k for k, v in verdicts.items() if v == "better than CFG"]
    worse = [k for k, v in verdicts.items() if v == "worse than CFG"]
    at_top = [k for k, v in verdicts.items() if v.startswith("as aligned as the most aligned")]
    logp = [a["alignment"]["logp"] for a in r["sweep"]]
    energy = [a["fidelity"]["energy"] for a in r["sweep"]]
    top = ", ".join(f"{a['label']} ({fmt(a['alignment']['accuracy'])})" for a in ranked[:3])
    return "\n".join([
        f"- Standard sampling at the testbed's guidance ({fmt(r['guidance'])}) draws "
        f"{fmt(standard['accuracy'])} of the testbed's prompts exactly right (object "
        f"{fmt(standard['object'])}, colour {fmt(standard['colour'])}, attribution "
        f"{fmt(standard['attribution'])}, position {fmt(standard['position'])}, count "
        f"{fmt(standard['count'])}); held-out renders: "
        f"{fmt(r['reference']['alignment']['accuracy'])}. The most accurate CFG scale of the "
        f"sweep is {fmt(best_cfg['guidance'])} ({fmt(best_cfg['alignment']['accuracy'])}).",
        f"- The CFG curve is nearly flat in alignment (mean logp {fmt(min(logp))} to "
        f"{fmt(max(logp))} over the sweep) while its energy rises ({fmt(energy[0])} at CFG "
        f"{fmt(r['sweep'][0]['guidance'])}, {fmt(energy[-1])} at CFG "
        f"{fmt(r['sweep'][-1]['guidance'])}). So {len(at_top)} of {len(r['arms'])} method arms "
        "are only compared with the most aligned CFG arm, and \"closer to real data\" there "
        "mostly says that arm is far from real data, not that a method gains at equal alignment.",
        f"- Better than CFG at equal alignment (intervals clear of the interpolation error): "
        f"{', '.join(better) or 'none'}; worse: {', '.join(worse) or 'none'}. The most accurate "
        f"methods: {top}; the most accurate CFG scale: "
        f"{fmt(best_cfg['alignment']['accuracy'])}.",
        f"- Sanity gate on `{r['ranking_metric']}`: "
        f"{'passes' if r['ranks'] else 'fails (no method is ranked)'}; "
        f"{len(r['arms'])} method arms ran, {len(r.get('skipped', []))} skipped; "
        f"{r['seconds']:.0f} s in all.",
    ])


def _verdict(results: dict[str, Any], arm: dict[str, Any]) -> str:
    from zsampling.evaluation.report import verdict

    return verdict(results, arm["frontier"])


def render(page: str, generated: dict[str, str]) -> str:
    """``page`` with every generated block replaced by its current content."""
    check_sections(page)
    for name, body in generated.items():
        pattern = re.compile(
            rf"(<!-- results:{name} -->\n).*?(\n<!-- /results:{name} -->)", flags=re.S
        )
        if not pattern.search(page):
            raise SystemExit(f"docs/evaluation.md has no block <!-- results:{name} -->")
        page = pattern.sub(lambda m, b=body: m.group(1) + b + m.group(2), page)
    return page


def import_run(out: Path) -> None:
    RESULTS.mkdir(exist_ok=True)
    for name in TESTBEDS:
        shutil.copyfile(out / name / "results.json", RESULTS / f"{name}.json")
        shutil.copyfile(out / name / "frontier.png", RESULTS / f"{name}.png")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        import_run(Path(sys.argv[1]))
    PAGE.write_text(render(PAGE.read_text(encoding="utf-8"), blocks(load())), encoding="utf-8")
    sys.stdout.write(f"wrote {PAGE}\n")
