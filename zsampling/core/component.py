"""`Component`: the base every registered component shares.

A component class *is* its settings: a frozen pydantic model whose fields a config table
validates into (unknown keys refused), with the registry ``name`` a config's ``use = "..."``
names. ``aliases`` are older names that still resolve (a renamed component keeps working in old
configs). Numbers must be finite: ``inf`` or ``nan`` in a setting is refused where it is given
(``sampler.guidance: Input should be a finite number``), not found as NaN latents later.
Plugins may subclass it or write the same three lines themselves: the registry checks the shape
(`zsampling.core.kinds`), not the ancestry.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Component(BaseModel):
    """Frozen settings with a registry name; subclasses add their fields and their kind's method."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
