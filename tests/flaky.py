"""A kind whose units fail on chosen seeds, by raising or by killing their process, for executor tests.

Importing it registers the kind, so a Ray worker that unpickles its settings has the kind too.
"""

from __future__ import annotations

import os

from pydantic import Field

from harness.kinds import registry
from harness.kinds.base import Kind, Metric
from harness.schema import Strict

METRICS = (Metric("seed", "", "none", "the unit's seed"),)


class Settings(Strict):
    raise_on: list[int] = Field(default_factory=list)
    die_on: list[int] = Field(default_factory=list)  # the process exits at once: a worker that dies


def run(settings: Settings, rec) -> dict[str, float]:
    if rec.seed in settings.die_on:
        os._exit(3)
    if rec.seed in settings.raise_on:
        raise RuntimeError(f"seed {rec.seed} fails on purpose")
    return {"seed": float(rec.seed)}


def tables(view) -> dict:
    return {}


def section(view) -> str:
    return ""


def spec(seeds: list[int], raise_on=(), die_on=(), name: str = "flaky") -> dict:
    return {"name": name, "title": "fails on some seeds", "kind": KIND.name, "seeds": seeds,
            "settings": {"raise_on": list(raise_on), "die_on": list(die_on)},
            "references": [{"metric": "seed", "source": "C1", "basis": "chosen before measuring", "at_least": 0}]}


KIND = Kind("flaky", Settings, METRICS, run, tables, section)
registry.KINDS.setdefault(KIND.name, KIND)
