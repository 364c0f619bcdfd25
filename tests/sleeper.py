"""A kind that only sleeps, for tests that need a run in flight in another process.

``python -m tests.sleeper run SPEC`` is the harness command line with this kind registered.
"""

from __future__ import annotations

import sys
import time

from pydantic import Field

from harness.kinds.base import Kind, Metric
from harness.schema import Strict

METRICS = (Metric("slept", "s", "none", "seconds slept"),)


class Settings(Strict):
    seconds: float = Field(60.0, ge=0, le=3600)


def run(settings: Settings, rec) -> dict[str, float]:
    start = time.time()
    while time.time() - start < settings.seconds:
        time.sleep(0.05)
    return {"slept": time.time() - start}


def tables(view) -> dict:
    return {}


def section(view) -> str:
    return ""


KIND = Kind("sleep", Settings, METRICS, run, tables, section)


def spec(seconds: float, name: str = "sleepy") -> dict:
    return {"name": name, "title": "sleeps", "kind": KIND.name, "seeds": [0], "settings": {"seconds": seconds},
            "references": [{"metric": "slept", "source": "C1", "basis": "chosen before measuring", "at_least": 0}]}


if __name__ == "__main__":
    from harness.cli import main
    from harness.kinds import registry

    registry.KINDS[KIND.name] = KIND
    sys.exit(main(sys.argv[1:]))
