"""Fill the catalogue on the docs home page (docs/index.md) from the registry.

The page holds one region

    <!-- catalogue -->
    ...
    <!-- /catalogue -->

whose body this script writes: for every kind of component the registry knows (a kind added
later appears without editing the page), each built-in's name, its older names and the first
sentence of its docstring. docs/plugins.md lists the same components with their whole first
paragraph (docs/scripts/gen_plugin_lists.py). Run ``python docs/scripts/gen_catalogue.py``; a
test fails when the page is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from zsampling.plugins.manager import build_registry
from zsampling.plugins.registry import KINDS, Registered, Registry

PAGE = Path(__file__).resolve().parents[1] / "index.md"
REGION = re.compile(r"(?P<open><!-- catalogue -->\n).*?(?P<close><!-- /catalogue -->)", re.DOTALL)

# What a newcomer looks for first; a kind not named here follows, in the registry's order.
FIRST = ("sampler", "guider", "solver", "schedule", "adapter", "patch", "metric", "observer")
TITLES = {
    "adapter": ("Models", "adapters: which models a run can sample"),
    "schedule": ("Schedules", "the noise levels a run steps through: [Schedules](schedules.md)"),
    "solver": ("Solvers", "one step between two levels, both ways: [Solvers](solvers.md)"),
    "guider": ("Guiders", "what one guided prediction is: [Which method when](methods.md)"),
    "sampler": ("Samplers", "where the path goes, down and back up the levels"),
    "patch": ("Patches", "changes to a model's weights or predictions"),
    "observer": ("Observers", "what a run records as it goes"),
    "metric": ("Metrics", "how a run's outputs are scored: [Evaluation](evaluation.md)"),
    "verifier": ("Verifiers", "what a search ranks its candidates by: [Search](search.md)"),
    "search": ("Searches", "several starting noises spent on one item: [Search](search.md)"),
}
# A full stop ends the sentence unless it ends an abbreviation ("et al.", "e.g.", "i.e.").
SENTENCE_END = re.compile(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\.(?=\s|$)")


def first_sentence(summary: str) -> str:
    end = SENTENCE_END.search(summary)
    return summary if end is None else summary[: end.end()]


def line(component: Registered) -> str:
    also = f" (or {', '.join(f'`{a}`' for a in component.aliases)})" if component.aliases else ""
    return f"- `{component.name}`{also}: {first_sentence(component.summary)}"


def ordered_kinds() -> list[str]:
    return [k for k in FIRST if k in KINDS] + [k for k in KINDS if k not in FIRST]


def catalogue(registry: Registry) -> str:
    """Every built-in component, kind by kind, as Markdown."""
    counts, sections = [], []
    for kind in ordered_kinds():
        builtins = [
            c
            for c in registry.components[kind].values()  # type: ignore[index]
            if c.plugin == "zsampling"
        ]
        title, what = TITLES.get(kind, (f"{kind.replace('-', ' ').capitalize()}s", ""))
        counts.append(f"{title.lower()} ({len(builtins)})")
        lead = f"{len(builtins)} built-in; {what}." if what else f"{len(builtins)} built-in."
        lines = "\n".join(line(c) for c in builtins)
        sections.append(f"### {title}\n\n{lead}\n\n{lines}\n")
    head = f"Built in: {', '.join(counts)}.\n\n"
    return head + "\n".join(sections)


def render(page: str) -> str:
    """``page`` with its catalogue region filled in from the registry of built-ins."""
    if not REGION.search(page):
        raise ValueError(f"{PAGE.name} has no <!-- catalogue --> region")
    body = catalogue(build_registry(entry_points=False))
    return REGION.sub(lambda m: m["open"] + body + m["close"], page)


if __name__ == "__main__":
    PAGE.write_text(render(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(f"wrote {PAGE}\n")
