"""Former metric names, as stores written before a rename hold them: read as today's names here and nowhere else.

Renamed part by part (``tutorial.examples_per_sec`` -> ``tutorial.examples_per_s``): one name per quantity across
kinds, so one table serves them all.
"""

from __future__ import annotations

import itertools

FORMERLY = {"seconds_per_epoch": "epoch_s", "epoch_seconds": "epoch_s", "examples_per_sec": "examples_per_s"}


def current(name: str) -> str:
    """A metric's name today, from the one it was recorded under."""
    return ".".join(FORMERLY.get(part, part) for part in name.split("."))


def former(name: str) -> list[str]:
    """``name`` and the names a store written before a rename may hold it under."""
    olds: dict[str, list[str]] = {}
    for old, new in FORMERLY.items():
        olds.setdefault(new, []).append(old)
    return [".".join(choice) for choice in itertools.product(*([p, *olds.get(p, [])] for p in name.split(".")))]
