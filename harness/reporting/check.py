"""``harness check``: is the line my notebook printed the book's result? Each number the line carries, set against
the seeds of the spec's newest run in the store, as the reproduction's own printed draws are.

Each value is a draw of the run (the books set no seed): its predictive p-value against the seeds, Holm's step-down
over the values checked together at the spec's family error, the detectable shift of the check (what it could
catch at that many seeds), and the book's own printed values of the same quantity beside it. A throughput is shown
beside this machine's, for information: machines differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.judging import family, significance
from harness.judging.stats import prediction_interval
from harness.kinds import registry
from harness.reading.lines import Printed
from harness.reading.view import RunView

CONSISTENT, NOT_CONSISTENT, INFO, NOT_COMPARED, TOO_FEW = (
    "consistent", "not consistent", "information", "not compared", "too few seeds")
COLUMNS = ["printed", "quantity", "value", "seeds", "seeds_mean", "low", "high", "p_value", "adjusted_p", "verdict",
           "detectable_shift", "book"]


@dataclass(frozen=True)
class Answer:
    """The table, and what it says as a whole: consistent, not consistent, or too few seeds to say."""

    table: pd.DataFrame
    verdict: str
    device: str
    run: str
    error: float


def _book(view: RunView, metric: str) -> str:
    """The book's own printed values of ``metric`` (``test_acc``, ``test_acc_per_epoch[3]``): the spec's draws."""
    name, _, index = metric.partition("[")
    out = []
    for ref in view.spec["references"]:
        draw = ref.get("draw")
        if ref["metric"] != name or draw is None:
            continue
        value = draw[int(index.rstrip("]"))] if index and isinstance(draw, list) else draw
        if not isinstance(value, list):
            out.append(f"{value:g} ({ref['source']})")
    return "; ".join(dict.fromkeys(out))


def check(view: RunView, printed: list[Printed], device: str | None = None) -> Answer:
    """Every printed number against the seeds of ``view`` on ``device`` (its first by default)."""
    device = device or (view.devices[0] if view.devices else "cpu")
    kind = registry.get(view.kind)
    error = float(view.spec.get("family_error", family.ERROR))
    rows, located = [], []
    for p in printed:
        found = kind.locate(view, device, p.label, p.at, p.format)
        located.append(found)
        where = p.label + (f" at {p.at}" if p.at is not None else "")
        row = {"printed": where, "quantity": found.metric if found else "-", "value": p.value,
               "seeds": len(found.values) if found else 0, "book": _book(view, found.metric) if found else ""}
        if found is None or found.why:
            row["verdict"] = NOT_COMPARED + (f": {found.why}" if found else f": {view.name} measures no such thing")
        else:
            x = np.asarray(found.values, dtype=float)
            iv = prediction_interval(list(x), view.confidence)
            row |= {"seeds_mean": float(x.mean()) if x.size else math.nan, "low": iv.low, "high": iv.high,
                    "p_value": float(significance.draw_p(x, [p.value])) if x.size > 1 else math.nan,
                    "verdict": INFO if found.info else TOO_FEW if x.size < 2 else ""}
        rows.append(row)
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    judged = df["verdict"].eq("")
    m = int(judged.sum())
    if m:
        df.loc[judged, "adjusted_p"] = family.holm(df.loc[judged, "p_value"].to_numpy())
        df.loc[judged, "verdict"] = [NOT_CONSISTENT if a <= error else CONSISTENT for a in df.loc[judged, "adjusted_p"]]
        for i in df.index[judged]:
            x = np.asarray(located[i].values, dtype=float)
            df.at[i, "detectable_shift"] = significance.draw_shift(x.size, float(x.std(ddof=1)), error / m)
    verdicts = set(df["verdict"])
    overall = (NOT_CONSISTENT if NOT_CONSISTENT in verdicts else CONSISTENT if CONSISTENT in verdicts
               else TOO_FEW if TOO_FEW in verdicts else NOT_COMPARED)
    return Answer(df, overall, device, view.run_id, error)

