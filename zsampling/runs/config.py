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
from typing import Any, Literal

import tomllib
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zsampling.core.errors import InvalidArgument, ZSamplingError
from zsampling.plugins.registry import Kind, Registry

SECTIONS: dict[str, str] = {
    "model": "the model adapter (with its [[model.patches]])",
    "models": "further models by name, e.g. [models.weak] for W2SD",
    "schedule": "the levels (default: uniform)",
    "solver": "the step (default: ddim)",
    "guider": "classifier-free guidance (default: cfg)",
    "sampler": "the reflective sampler",
    "observers": "per-step observers, [[observers]]",
    "metrics": "per-item metrics, [[metrics]]",
    "run": "prompts, seeds and output folder",
}
DEFAULTS: dict[str, str] = {"schedule": "uniform", "solver": "ddim", "guider": "cfg"}


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(ZSamplingError):
    """All problems found in one config, each naming its path; raised before any model loads."""

    def __init__(self, issues: list[ConfigIssue], source: str = "config") -> None:
        self.issues = issues
        self.source = source
        lines = "\n".join(f"  - {i}" for i in issues)
        super().__init__(f"{source} has {len(issues)} problem(s):\n{lines}")


class RunSettings(BaseModel):
    """What to generate and where: every prompt with every seed (or prompt i with seed i)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompts: list[str] = Field(min_length=1, description="Prompts (class names for analytic).")
    negative_prompt: str = Field("", description="Negative prompt for the unconditional branch.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="Seeds.")
    pairing: Literal["product", "zip"] = Field(
        "product", description="product: every prompt x every seed; zip: prompt i with seed i."
    )
    output: str = Field("out", description="Output folder.")


@dataclass
class ModelSpec:
    adapter: Any
    patches: list[Any] = field(default_factory=list)


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

    def as_dict(self) -> dict[str, Any]:
        """The fully resolved config (defaults filled in): what outputs embed to be reproducible."""

        def comp(c: Any) -> dict[str, Any]:
            return {"use": c.name, **c.model_dump(mode="json")}

        def model(m: ModelSpec) -> dict[str, Any]:
            return {**comp(m.adapter), "patches": [comp(p) for p in m.patches]}

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
        }


def read_config(path: str | Path) -> dict[str, Any]:
    """Parse a TOML or YAML file into plain data (YAML with the safe loader: no code runs)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError([ConfigIssue(str(p), "no such file")], str(p))
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif p.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError([ConfigIssue(str(p), "expected a .toml, .yaml or .yml file")], str(p))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(str(p), f"not valid TOML: {exc}")], str(p)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(str(p), f"not valid YAML: {exc}")], str(p)) from None
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
    except tomllib.TOMLDecodeError:
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
        loc = ".".join(str(p) for p in e["loc"])
        path = f"{prefix}.{loc}" if loc else prefix
        if e["type"] == "extra_forbidden":
            valid = ", ".join(k for k in cls.model_fields) or "(none)"
            issues.append(ConfigIssue(path, f"unknown setting; valid settings: {valid}"))
            continue
        msg = e["msg"].removeprefix("Value error, ")
        shown = "" if e["type"] == "missing" else f" (got {e['input']!r})"
        issues.append(ConfigIssue(path, f"{msg}{shown}"))
    return issues


def _plugin_raised(found: Any, during: str, err: Exception) -> str:
    """``sampler 'x' (plugin 'p') raised ValueError: ... (in check_steps)``, on one line."""
    who = f"{found.kind} {found.name!r} (plugin {found.plugin!r})" if found else "component"
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return f"{who} raised {text} (in {during})"


class _Validator:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.issues: list[ConfigIssue] = []

    def component(self, kind: Kind, path: str, section: Any, default: str | None = None) -> Any:
        if section is None and default is not None:
            section = {"use": default}
        if not isinstance(section, dict):
            self.issues.append(
                ConfigIssue(path, f'expected a table with use = "<{kind}>", got {section!r}')
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
                ConfigIssue(f"{path}.use", f"unknown {kind} {name!r}; registered {kind}s: {names}")
            )
            return None
        cls = found.cls
        try:
            return cls.model_validate(settings)
        except ValidationError as err:
            self.issues.extend(_pydantic_issues(path, err, cls))
            return None
        except Exception as err:  # a plugin's validator failing in a way pydantic does not wrap
            self.issues.append(ConfigIssue(path, _plugin_raised(found, "settings validation", err)))
            return None

    def components(self, kind: Kind, path: str, section: Any) -> list[Any]:
        if section is None:
            return []
        if not isinstance(section, list):
            self.issues.append(
                ConfigIssue(path, f"expected a list of tables ([[{path}]]), got {section!r}")
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


def validate_config(data: dict[str, Any], registry: Registry, source: str = "config") -> RunConfig:
    """Turn parsed config data into a `RunConfig`, or raise `ConfigError` listing every problem."""
    v = _Validator(registry)
    for key in data:
        if key not in SECTIONS:
            v.issues.append(
                ConfigIssue(key, "unknown section; valid sections: " + ", ".join(SECTIONS))
            )
    for required in ("model", "sampler", "run"):
        if required not in data:
            v.issues.append(ConfigIssue(required, f"missing section ({SECTIONS[required]})"))
    model = v.model("model", data["model"]) if "model" in data else None
    models: dict[str, ModelSpec] = {}
    extra = data.get("models", {})
    if not isinstance(extra, dict):
        v.issues.append(ConfigIssue("models", f"expected a table of named models, got {extra!r}"))
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
    run = None
    if "run" in data:
        if not isinstance(data["run"], dict):
            v.issues.append(ConfigIssue("run", f"expected a table, got {data['run']!r}"))
        else:
            try:
                run = RunSettings.model_validate(data["run"])
            except ValidationError as err:
                v.issues.extend(_pydantic_issues("run", err, RunSettings))
    if run is not None and run.pairing == "zip" and len(run.prompts) != len(run.seeds):
        v.issues.append(
            ConfigIssue(
                "run.seeds",
                f"pairing = 'zip' needs one seed per prompt "
                f"({len(run.prompts)}), got {len(run.seeds)}",
            )
        )
    if sampler is not None and parts["schedule"] is not None:
        check = getattr(sampler, "check_steps", None)
        if check is not None:
            try:
                check(parts["schedule"].steps)
            except InvalidArgument as err:
                v.issues.append(ConfigIssue(err.field, f"{err.value!r} is invalid: {err.valid}"))
            except Exception as err:  # a plugin's check_steps raising a plain exception
                found = registry.lookup("sampler", sampler.name)
                v.issues.append(ConfigIssue("sampler", _plugin_raised(found, "check_steps", err)))
    weak = getattr(sampler, "weak_model", None)
    if isinstance(weak, str) and weak not in models and "models" not in {i.path for i in v.issues}:
        v.issues.append(
            ConfigIssue(
                "sampler.weak_model",
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
    )


def load_config(
    path: str | Path, registry: Registry, overrides: Sequence[str] = ()
) -> RunConfig:
    """Read, override and validate a config file."""
    data = apply_overrides(read_config(path), list(overrides))
    return validate_config(data, registry, str(path))


def config_schema(registry: Registry) -> dict[str, Any]:
    """JSON schema of a config file with every registered component (installed plugins too)."""
    defs: dict[str, Any] = {}

    def one_of(kind: Kind, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        options = []
        for name, comp in sorted(registry.components[kind].items()):
            key = f"{kind}.{name}"
            schema = comp.cls.model_json_schema(ref_template=f"#/$defs/{key}.{{model}}")
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
            "run": run,
        },
        "$defs": defs,
    }
