"""The ``scheduler`` schedule: the levels a diffusers scheduler class would walk.

A diffusers scheduler is built from the model's own scheduler config (with optional overrides such
as ``use_karras_sigmas``), asked for ``set_timesteps(steps)``, and read: its ``sigmas`` when it
has them (Euler, DPM-Solver, ...), else its integer timesteps plus DDIM's final level. Nothing else
of the scheduler is used: zsampling's solvers do the stepping. This is what gives exact parity with
a pipeline whose scheduler is that class (tested for DDIM, Euler and DPM-Solver multistep).

Levels on the training grid are snapped to the model's float64 table, so the UNet gets exact
integer timesteps even though diffusers keeps its sigmas in float32.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from zsampling.core.component import Component
from zsampling.core.errors import InvalidArgument
from zsampling.core.levels import TimestepTable, sigma_from_alpha_cumprod
from zsampling.core.model import ModelAdapter
from zsampling.core.schedule import MAX_STEPS

#: Relative distance within which a float32 scheduler sigma is taken for a training-grid level.
SNAP_RTOL = 1e-5

#: `Scheduler._derived` results: (settings, config id) -> (config, alphas, levels, noise factor).
_DERIVED: dict[tuple[str, int], tuple[Any, Tensor, Tensor, float]] = {}


def scheduler_config(model: ModelAdapter, field: str, value: object) -> Any:
    """The model's diffusers scheduler config, or a clear error for models that have none."""
    config = getattr(model, "scheduler_config", None)
    if config is None or model.table is None:
        raise InvalidArgument(
            field, value, "a model with a diffusers scheduler config (the 'diffusers' adapter)"
        )
    return config


def scheduler_class(name: str, field: str = "schedule.scheduler") -> Any:
    """A diffusers scheduler class by name, or a clear error listing the usual ones."""
    import diffusers
    from diffusers.schedulers import KarrasDiffusionSchedulers

    cls = getattr(diffusers, name, None) if name.endswith("Scheduler") else None
    if not isinstance(cls, type) or not hasattr(cls, "set_timesteps"):
        usual = ", ".join(s.name for s in KarrasDiffusionSchedulers)
        raise InvalidArgument(field, name, f"a diffusers scheduler class name, e.g. {usual}")
    return cls


def snap_to_grid(levels: Tensor, timesteps: Tensor, table: TimestepTable) -> Tensor:
    """Replace each level whose timestep is an integer of the grid (and whose sigma agrees with
    the table's within `SNAP_RTOL`) by the table's float64 level."""
    out = levels.clone()
    grid = table.sigmas
    for i, t in enumerate(timesteps.tolist()):
        ti = round(t)
        if abs(t - ti) > 1e-4 or not 0 <= ti < len(grid):
            continue
        if abs(float(out[i]) - float(grid[ti])) <= SNAP_RTOL * float(grid[ti]):
            out[i] = grid[ti]
    return out


class Scheduler(Component):
    """Levels of a diffusers scheduler class built from the model's own scheduler config."""

    name: ClassVar[str] = "scheduler"

    steps: int = Field(50, ge=1, le=MAX_STEPS, description="Number of denoising steps T.")
    scheduler: str | None = Field(
        None,
        description="diffusers scheduler class, e.g. 'EulerDiscreteScheduler'; default: the "
        "model's own.",
    )
    options: dict[str, bool | int | float | str] = Field(
        default_factory=dict,
        description="Config overrides for the scheduler, e.g. {use_karras_sigmas: true, "
        "timestep_spacing: 'trailing'}.",
    )

    def build(self, model: ModelAdapter) -> Any:
        """A fresh scheduler, ``set_timesteps(steps)`` already called (its state is never shared
        with a pipeline)."""
        config = scheduler_config(model, "schedule.scheduler", self.scheduler)
        # a pipeline built in memory has no _class_name: then the class of its scheduler object
        name = self.scheduler or str(
            config.get("_class_name") or getattr(model, "scheduler_class_name", "")
        )
        cls = scheduler_class(name)
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(self.options) - accepted)
        if unknown:
            raise InvalidArgument(
                "schedule.options", unknown, f"options of {name}: {', '.join(sorted(accepted))}"
            )
        try:
            sched = cls.from_config(config, **self.options)
            sched.set_timesteps(self.steps)
        except (ValueError, TypeError) as err:
            raise InvalidArgument("schedule.options", dict(self.options), str(err)) from None
        # Only keys the class uses count: configs carry leftovers (SDXL's Euler has clip_sample).
        clipping = [
            k for k in ("clip_sample", "thresholding") if k in accepted and sched.config.get(k)
        ]
        if clipping:
            raise InvalidArgument(
                "schedule.options",
                dict(self.options),
                f"{name} here has {' and '.join(clipping)} on, which zsampling's solvers do not "
                f"do (the run would not match the scheduler): set {clipping[0]}: false",
            )
        if len(sched.timesteps) != self.steps:
            raise InvalidArgument(
                "schedule.scheduler",
                name,
                "a scheduler with one model evaluation per step (DDIM, Euler, DPM-Solver "
                f"multistep, ...); {name} makes {len(sched.timesteps)} for {self.steps} steps",
            )
        return sched

    def sigmas(self, model: ModelAdapter) -> Tensor:
        return self._derived(model)[0].clone()

    def noise_scale(self, model: ModelAdapter) -> float:
        """The scheduler's starting-noise factor, expressed in the model's native (VP) space.

        diffusers starts from ``init_noise_sigma * noise`` in the scheduler's space and feeds the
        UNet ``scale_model_input`` of it, which is the VP latent; so the factor in VP space is
        ``init_noise_sigma`` times what ``scale_model_input`` does to a one at the first step
        (1 for DDIM and DPM-Solver; ``s(sigma_max)`` for "linspace" Euler).
        """
        return self._derived(model)[1]

    def _derived(self, model: ModelAdapter) -> tuple[Tensor, float]:
        """The levels and the noise factor, from one scheduler built once per settings and
        model config (building one runs diffusers' config machinery: about a millisecond, which
        a short run on a small model would otherwise pay twice per call)."""
        config = scheduler_config(model, "schedule.scheduler", self.scheduler)
        table = model.table
        # Keyed by the config object (a pipeline's scheduler keeps one) and checked to be it
        # and the same alphas: the entry holds both, so their ids cannot be reused meanwhile.
        key = (self.model_dump_json(), id(config))
        hit = _DERIVED.get(key)
        if (
            hit is not None
            and hit[0] is config
            and table is not None
            and hit[1] is table.alphas_cumprod
        ):
            return hit[2], hit[3]
        sched = self.build(model)
        levels = self._levels(sched, model)
        probe = sched.scale_model_input(torch.ones(1, dtype=torch.float64), sched.timesteps[0])
        scale = float(sched.init_noise_sigma) * float(probe[0])
        if table is not None:
            if len(_DERIVED) >= 64:
                _DERIVED.clear()
            _DERIVED[key] = (config, table.alphas_cumprod, levels, scale)
        return levels, scale

    def _levels(self, sched: Any, model: ModelAdapter) -> Tensor:
        table = model.table
        assert table is not None  # checked by scheduler_config
        timesteps = sched.timesteps.to(torch.float64)
        sched_sigmas = getattr(sched, "sigmas", None)
        if sched_sigmas is not None and len(sched_sigmas) == self.steps + 1:
            levels = sched_sigmas.to(torch.float64)
            return torch.cat([snap_to_grid(levels[:-1], timesteps, table), levels[-1:]])
        # DDIM-like schedulers step from t to t - n_train // steps (below 0: final_alpha_cumprod).
        # That must be the next timestep, or the scheduler walks levels other than its own.
        t = timesteps.round().to(torch.long)
        prev = t - int(sched.config.num_train_timesteps) // self.steps
        if not torch.equal(prev[:-1], t[1:]):
            raise InvalidArgument(
                "schedule.options",
                dict(self.options),
                f"{type(sched).__name__} steps from each timestep t to t - {int(t[0] - prev[0])}, "
                f"which is not its next timestep with this spacing ({t.tolist()}): use "
                "timestep_spacing 'leading' or 'trailing'",
            )
        levels = table.sigma_at(torch.cat([t, prev[-1:]]))
        final = getattr(sched, "final_alpha_cumprod", None)
        if int(prev[-1]) < 0 and final is not None:
            levels[-1] = sigma_from_alpha_cumprod(torch.as_tensor(final))
        return levels
