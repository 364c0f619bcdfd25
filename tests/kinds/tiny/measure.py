"""Its measurement: a synthetic speed-up timed in rounds (no clock) and one score per seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from harness.judging.rounds import recorded_rounds
from harness.kinds.base import Metric, timings_of
from harness.schema import Strict

METRICS = (
    Metric("speedup", "x", "higher", "the synthetic speed-up, per round", timed=True, headline=True),
    Metric("score", "fraction", "higher", "a per-seed score"),
    Metric("wait_s", "s", "lower", "a per-seed time"),
)


class Settings(Strict):
    center: float = Field(2.0, gt=0)
    score: float = Field(0.5, ge=0, le=1)


def run(settings: Settings, rec) -> dict:
    rng = np.random.default_rng(rec.seed)
    rounds = recorded_rounds(rec, lambda i: {"speedup": settings.center * float(np.exp(rng.normal(0, 0.01)))})
    rec.log_table("tiny", pd.DataFrame({"round": range(1, len(rounds.values) + 1),
                                        "speedup_x": [r["speedup"] for r in rounds.values]}))
    return {**rounds.measured(timings_of(METRICS)), "score": settings.score + rec.seed / 1000,
            "wait_s": 1.0 + rec.seed / 1000}
