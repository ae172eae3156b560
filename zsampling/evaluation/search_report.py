"""The search arms' table and the plain-words answer to "zigzag or search, for the same
evaluations?", from the leaderboard's results files (docs/evaluation.md's ``search`` block)."""

from __future__ import annotations

from typing import Any

from zsampling.evaluation.report import fmt, fmt_ci, row


def verdict(entry: dict[str, Any], rival: str) -> str:
    """Which side the judge's alignment difference (search minus rival) favours, in words: only
    an interval that excludes zero decides."""
    ci = entry.get("ci95")
    if ci is None:
        return "undecided (no interval)"
    if ci[0] > 0:
        return "search"
    if ci[1] < 0:
        return rival
    return "no difference at this size"


def search_table(results: list[dict[str, Any]]) -> str:
    """One row per search arm: its cost beside its rival's, the judge's difference from the rival
    with its interval, the verifier's gain beside the judge's, and the answer."""
    lines = [
        row(
            [
                "testbed",
                "search arm",
                "evals/item (rival's)",
                "judge logp minus rival's [95% CI]",
                "accuracy minus rival's [95% CI]",
                "verifier gain / judge gain over the item's own noise",
                "judge prefers the own noise where search moved",
                "for the same evaluations",
            ]
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    answered = 0
    for r in results:
        arms = {a["key"]: a for a in r["arms"]}
        for arm in (a for a in r["arms"] if a.get("search")):
            s = arm["search"]
            rival = arms.get(s["rival"], {"label": s["rival"], "guided_calls_per_item": None})
            cost = f"{fmt(arm['guided_calls_per_item'])} ({fmt(rival['guided_calls_per_item'])}"
            vs = s["vs_rival"]
            worse = s.get("judge_worse_when_changed")
            lines.append(
                row(
                    [
                        r["testbed"],
                        arm["label"].split(", at the cost of")[0],
                        f"{cost}, {rival['label']})",
                        fmt_ci(vs["logp"]),
                        fmt_ci(vs["accuracy"]),
                        f"{fmt(s['verifier_gain'])} / {fmt(s.get('judge_gain'))}",
                        "-" if worse is None else f"{100 * worse:.0f}%",
                        verdict(vs["logp"], rival["label"].split(",")[0]),
                    ]
                )
            )
            answered += 1
        lines += [
            f"| {r['testbed']} | {label} | | | | | | no search arm |" for label in _refusals(r)
        ]
    if not answered:
        return (
            "These results files hold no search arms yet: rerun `zsampling leaderboard` and "
            "`python docs/scripts/gen_evaluation_tables.py OUT` to fill this table."
        )
    return "\n".join(lines)


def _refusals(results: dict[str, Any]) -> list[str]:
    return [s["reason"] for s in results.get("skipped", []) if s["label"] == "search"]
