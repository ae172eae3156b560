"""Config files: TOML (or YAML) naming components by ``use``, validated before any model loads.

Each component table names a registered component with ``use = "..."``; its other keys are that
component's settings, validated by its pydantic model. Every problem in a file is collected and
reported together, each with its path (``sampler.inversion_guidance``), the bad value and what is
valid. Config files are data: nothing in them is executed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zsampling.core.errors import InvalidArgument, one_line, shown
from zsampling.plugins.registry import Kind, Registered, Registry
from zsampling.runs.config_text import parse, plain_data_issues, read_text
from zsampling.runs.issues import ConfigError, ConfigIssue, short_key

__all__ = [
    "SECTIONS",
    "ConfigError",
    "ConfigIssue",
    "ModelSpec",
    "RunConfig",
    "RunSettings",
    "apply_overrides",
    "config_schema",
    "load_config",
    "model_specs",
    "read_config",
    "read_overridden",
    "validate_config",
]

SECTIONS: dict[str, str] = {
    "model": "the model adapter (with its [[model.patches]])",
    "models": "further models by name, e.g. [models.weak] for W2SD",
    "schedule": "the levels (default: uniform)",
    "solver": "the step (default: ddim)",
    "guider": "classifier-free guidance (default: cfg)",
    "sampler": "the reflective sampler",
    "observers": "per-step observers, [[observers]]",
    "metrics": "per-item metrics, [[metrics]]",
    "search": "search over starting noises, with its [search.verifier] (default: none)",
    "run": "prompts, seeds and output folder",
}
DEFAULTS: dict[str, str] = {"schedule": "uniform", "solver": "ddim", "guider": "cfg"}
DEFAULT_VERIFIER = "implicit-classifier"


#: What a plugin's code may raise that validation reports as a problem of that plugin (SystemExit
#: too: a plugin calling sys.exit() must not end zsampling).
PLUGIN_ERRORS = (Exception, SystemExit)

#: What ``torch.Generator.manual_seed`` takes without wrapping around (negative seeds alias
#: large ones there, so two file names would hold the same sample).
Seed = Annotated[int, Field(ge=0, le=2**64 - 1)]

#: Items per batch by default: enough for small models to amortise the fixed cost of a network
#: call (benchmarks/test_run_batch.py), few enough that large models' activations stay moderate;
#: a batch that runs out of memory is made again in halves (`zsampling.runs.backoff`).
DEFAULT_BATCH_SIZE = 8
MAX_BATCH_SIZE = 1024


class RunSettings(BaseModel):
    """What to generate and where: every prompt with every seed (or prompt i with seed i)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompts: list[str] = Field(min_length=1, description="Prompts (class names for analytic).")
    negative_prompt: str = Field("", description="Negative prompt for the unconditional branch.")
    seeds: list[Seed] = Field(
        default_factory=lambda: [0], min_length=1, description="Seeds (0 to 2**64 - 1)."
    )
    pairing: Literal["product", "zip"] = Field(
        "product", description="product: every prompt x every seed; zip: prompt i with seed i."
    )
    output: str = Field("out", description="Output folder.")
    batch_size: int = Field(
        DEFAULT_BATCH_SIZE,
        ge=1,
        le=MAX_BATCH_SIZE,
        description="Items sampled together in one batch (each keeps its own noise, file and "
        "manifest line); a batch that runs out of memory is made again in halves, down to 1.",
    )


@dataclass
class ModelSpec:
    adapter: Any
    patches: list[Any] = field(default_factory=list)


@dataclass
class SearchSpec:
    """``[search]``: the strategy that proposes starting noises, and the verifier it optimises."""

    strategy: Any
    verifier: Any


@dataclass
class RunConfig:
    """A validated config: component instances, ready to run."""

    model: ModelSpec
    models: dict[str, ModelSpec]
    schedule: Any
    solver: Any
    guider: Any
    sampler: Any
    observers: list[Any]
    metrics: list[Any]
    run: RunSettings
    source: str = "config"  # the file it came from, for messages
    search: SearchSpec | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fully resolved config (defaults filled in): what outputs embed to be reproducible."""

        def comp(c: Any) -> dict[str, Any]:
            return {"use": c.name, **c.model_dump(mode="json")}

        def model(m: ModelSpec) -> dict[str, Any]:
            return {**comp(m.adapter), "patches": [comp(p) for p in m.patches]}

        searching = {}
        if self.search is not None:  # absent when unset: a plain run's method id is unchanged
            verifier = comp(self.search.verifier)
            searching = {"search": {**comp(self.search.strategy), "verifier": verifier}}
        return {
            "model": model(self.model),
            "models": {k: model(v) for k, v in self.models.items()},
            "schedule": comp(self.schedule),
            "solver": comp(self.solver),
            "guider": comp(self.guider),
            "sampler": comp(self.sampler),
            "observers": [comp(o) for o in self.observers],
            "metrics": [comp(m) for m in self.metrics],
            "run": self.run.model_dump(mode="json"),
            **searching,
        }


def read_config(path: str | Path) -> dict[str, Any]:
    """Parse a TOML or YAML file into plain data, safely (see `zsampling.runs.config_text`)."""
    p = Path(path)
    if p.suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError([ConfigIssue(str(p), "expected a .toml, .yaml or .yml file")], str(p))
    data = parse(read_text(p), p.suffix, str(p))
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(str(p), "the top level must be a table")], str(p))
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.0.c=value``: the value is read as a TOML value (``3``, ``true``, ``[1, 2]``,
    ``"x"``), and as a plain string when it is not one."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError([ConfigIssue("--set", f"{text!r} is not of the form key.path=value")])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):  # not a TOML value: text
        value = raw.strip()
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``key.path=value`` in a copy of ``data`` (list items by index)."""
    data = json.loads(json.dumps(data))
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError([ConfigIssue("--set", f"{text!r}: no list item {part}")])
                node = node[int(part)]
            else:
                node = node.setdefault(part, [] if nxt.isdigit() else {})
            if not isinstance(node, (dict, list)):
                where = ".".join(parts[: i + 1])
                raise ConfigError([ConfigIssue("--set", f"{text!r}: {where} is not a table")])
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError([ConfigIssue("--set", f"{text!r}: no list item {last}")])
            node[int(last)] = value
        else:
            node[last] = value
    return data


def _pydantic_issues(prefix: str, err: ValidationError, cls: type[BaseModel]) -> list[ConfigIssue]:
    issues = []
    for e in err.errors():
        loc = ".".join(short_key(str(p)) for p in e["loc"])
        path = f"{prefix}.{loc}" if loc else prefix
        if e["type"] == "extra_forbidden":
            valid = ", ".join(k for k in cls.model_fields) or "(none)"
            issues.append(ConfigIssue(path, f"unknown setting; valid settings: {valid}"))
            continue
        msg = e["msg"].removeprefix("Value error, ")
        got = "" if e["type"] == "missing" else f" (got {shown(e['input'])})"
        issues.append(ConfigIssue(path, f"{msg}{got}"))
    return issues


class _Validator:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.issues: list[ConfigIssue] = []

    def component(self, kind: Kind, path: str, section: Any, default: str | None = None) -> Any:
        if section is None and default is not None:
            section = {"use": default}
        if not isinstance(section, dict):
            self.issues.append(
                ConfigIssue(path, f'expected a table with use = "<{kind}>", got {shown(section)}')
            )
            return None
        settings = dict(section)
        name = settings.pop("use", default)
        names = ", ".join(self.registry.labels(kind))
        if name is None:
            self.issues.append(ConfigIssue(f"{path}.use", f"missing; registered {kind}s: {names}"))
            return None
        found = self.registry.lookup(kind, name) if isinstance(name, str) else None
        if found is None:
            self.issues.append(
                ConfigIssue(
                    f"{path}.use", f"unknown {kind} {shown(name)}; registered {kind}s: {names}"
                )
            )
            return None
        cls = found.cls
        try:
            return cls.model_validate(settings)
        except ValidationError as err:
            self.issues.extend(_pydantic_issues(path, err, cls))
        except PLUGIN_ERRORS as exc:  # a plugin's validator with a bug: name it, keep validating
            self.issues.append(ConfigIssue(path, plugin_raised(found, "settings validation", exc)))
        return None

    def run(self, section: Any) -> RunSettings | None:
        """The ``[run]`` table as `RunSettings` (None, with the issues noted, if it is not)."""
        if not isinstance(section, dict):
            self.issues.append(ConfigIssue("run", f"expected a table, got {shown(section)}"))
            return None
        try:
            run = RunSettings.model_validate(section)
        except ValidationError as err:
            self.issues.extend(_pydantic_issues("run", err, RunSettings))
            return None
        if run.pairing == "zip" and len(run.prompts) != len(run.seeds):
            self.issues.append(
                ConfigIssue(
                    "run.seeds",
                    f"pairing = 'zip' needs one seed per prompt "
                    f"({len(run.prompts)}), got {len(run.seeds)}",
                )
            )
        return run

    def components(self, kind: Kind, path: str, section: Any) -> list[Any]:
        if section is None:
            return []
        if not isinstance(section, list):
            self.issues.append(
                ConfigIssue(path, f"expected a list of tables ([[{path}]]), got {shown(section)}")
            )
            return []
        return [self.component(kind, f"{path}.{i}", s) for i, s in enumerate(section)]

    def model(self, path: str, section: Any) -> ModelSpec | None:
        patches = []
        if isinstance(section, dict) and "patches" in section:
            section = dict(section)
            patches = self.components("patch", f"{path}.patches", section.pop("patches"))
        adapter = self.component("adapter", path, section)
        return ModelSpec(adapter, patches) if adapter is not None else None

    def search(self, section: Any) -> SearchSpec | None:
        """``[search]`` with its ``[search.verifier]`` (default: the implicit classifier, which
        every model has)."""
        if section is None:
            return None
        verifier_section = None
        if isinstance(section, dict) and "verifier" in section:
            section = dict(section)
            verifier_section = section.pop("verifier")
        strategy = self.component("search", "search", section)
        verifier = self.component("verifier", "search.verifier", verifier_section, DEFAULT_VERIFIER)
        if strategy is None or verifier is None:
            return None
        return SearchSpec(strategy, verifier)


def validate_config(data: dict[str, Any], registry: Registry, source: str = "config") -> RunConfig:
    """Turn parsed config data into a `RunConfig`, or raise `ConfigError` listing every problem."""
    v = _Validator(registry)
    for key in data:
        if key not in SECTIONS:
            v.issues.append(
                ConfigIssue(
                    short_key(str(key)), "unknown section; valid sections: " + ", ".join(SECTIONS)
                )
            )
    for required in ("model", "sampler", "run"):
        if required not in data:
            v.issues.append(ConfigIssue(required, f"missing section ({SECTIONS[required]})"))
    model = v.model("model", data["model"]) if "model" in data else None
    models: dict[str, ModelSpec] = {}
    extra = data.get("models", {})
    if not isinstance(extra, dict):
        v.issues.append(
            ConfigIssue("models", f"expected a table of named models, got {shown(extra)}")
        )
        extra = {}
    for name, section in extra.items():
        if name == "main":
            v.issues.append(ConfigIssue("models.main", "reserved: the main model is [model]"))
        spec = v.model(f"models.{name}", section)
        if spec is not None:
            models[name] = spec
    parts = {
        kind: v.component(kind, kind, data.get(kind), DEFAULTS.get(kind))
        for kind in ("schedule", "solver", "guider")
    }
    sampler = v.component("sampler", "sampler", data["sampler"]) if "sampler" in data else None
    observers = v.components("observer", "observers", data.get("observers"))
    metrics = v.components("metric", "metrics", data.get("metrics"))
    run = v.run(data["run"]) if "run" in data else None
    search = v.search(data.get("search"))
    if sampler is not None and parts["schedule"] is not None:
        check = getattr(sampler, "check_steps", None)
        if check is not None:
            try:
                check(parts["schedule"].steps)
            except InvalidArgument as err:
                v.issues.append(
                    ConfigIssue(err.field, f"{shown(err.value)} is invalid: {err.valid}")
                )
            except PLUGIN_ERRORS as exc:  # a plugin's check_steps with a bug, or a ValueError
                found = registry.lookup("sampler", sampler.name)
                v.issues.append(ConfigIssue("sampler", plugin_raised(found, "check_steps", exc)))
    for kind, part in (("sampler", sampler), ("guider", parts["guider"])):
        weak = getattr(part, "weak_model", None)
        if (
            isinstance(weak, str)
            and weak not in models
            and "models" not in {i.path for i in v.issues}
        ):
            v.issues.append(
                ConfigIssue(
                    f"{kind}.weak_model",
                    f"{weak!r} names no model; define "
                    f"[models.{weak}] (defined: {', '.join(models) or 'none'})",
                )
            )
    if v.issues or model is None or sampler is None or run is None:
        raise ConfigError(v.issues, source)
    return RunConfig(
        model,
        models,
        parts["schedule"],
        parts["solver"],
        parts["guider"],
        sampler,
        [o for o in observers if o is not None],
        [m for m in metrics if m is not None],
        run,
        source,
        search,
    )


def plugin_raised(component: Registered | None, during: str, exc: BaseException) -> str:
    """``sampler 'x' (plugin 'p') raised ValueError: ... (in check_steps)``, on one line."""
    who = (
        f"{component.kind} {component.name!r} (plugin {component.plugin!r})"
        if component
        else "component"
    )
    if isinstance(exc, SystemExit):
        return f"{who} called sys.exit({exc.code!r}) (in {during})"
    return f"{who} raised {one_line(exc)} (in {during})"


def load_config(path: str | Path, registry: Registry, overrides: Sequence[str] = ()) -> RunConfig:
    """Read, override and validate a config file."""
    return validate_config(read_overridden(path, overrides), registry, str(path))


def read_overridden(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A config file's data with ``--set`` overrides applied, checked to be plain data."""
    data = apply_overrides(read_config(path), list(overrides))
    issues = plain_data_issues(data)
    if issues:  # an override can be a TOML date, or inf
        raise ConfigError(issues, f"{path} with --set")
    return data


def model_specs(data: dict[str, Any], registry: Registry) -> dict[str, ModelSpec]:
    """The model sections of ``data`` that are valid on their own, by config path (``model``,
    ``models.weak``): what checks of the model folders need when the rest of a config is not."""
    sections: dict[str, Any] = {"model": data.get("model")}
    extra = data.get("models")
    if isinstance(extra, dict):
        sections |= {f"models.{k}": v for k, v in extra.items()}
    specs = {}
    for path, section in sections.items():
        if isinstance(section, dict):
            spec = _Validator(registry).model(path, section)
            if spec is not None:
                specs[path] = spec
    return specs


def config_schema(registry: Registry) -> dict[str, Any]:
    """JSON schema of a config file with every registered component (installed plugins too)."""
    defs: dict[str, Any] = {}

    def one_of(kind: Kind, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        options = []
        for name, comp in sorted(registry.components[kind].items()):
            key = f"{kind}.{name}"
            try:
                schema = comp.cls.model_json_schema(ref_template=f"#/$defs/{key}.{{model}}")
            except Exception as exc:  # a plugin's settings that pydantic cannot describe
                schema = {"description": plugin_raised(comp, "its settings schema", exc)}
            for sub, body in schema.pop("$defs", {}).items():
                defs[f"{key}.{sub}"] = body
            use = {"enum": [name, *comp.aliases]} if comp.aliases else {"const": name}
            schema["properties"] = {
                "use": use,
                **schema.get("properties", {}),
                **(extra or {}),
            }
            schema["required"] = ["use", *schema.get("required", [])]
            schema["additionalProperties"] = False
            schema["description"] = f"[{comp.plugin}] " + (schema.get("description") or "")
            defs[key] = schema
            options.append({"$ref": f"#/$defs/{key}"})
        return {"oneOf": options}

    patches = {"type": "array", "items": one_of("patch")}
    model = one_of("adapter", {"patches": patches})
    run = RunSettings.model_json_schema(ref_template="#/$defs/run.{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "zsampling run config",
        "type": "object",
        "additionalProperties": False,
        "required": ["model", "sampler", "run"],
        "properties": {
            "model": model,
            "models": {"type": "object", "additionalProperties": model},
            "schedule": one_of("schedule"),
            "solver": one_of("solver"),
            "guider": one_of("guider"),
            "sampler": one_of("sampler"),
            "observers": {"type": "array", "items": one_of("observer")},
            "metrics": {"type": "array", "items": one_of("metric")},
            "search": one_of("search", {"verifier": one_of("verifier")}),
            "run": run,
        },
        "$defs": defs,
    }
