"""Tables as markdown: numbers formatted for the eye, intervals folded into one text column."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from harness.judging.stats import Interval, is_finite_number, min_rounds


def md_table(df: pd.DataFrame, fmt: dict[str, Callable[[Any], str]] | None = None,
             headers: dict[str, str] | None = None) -> str:
    """A table as markdown: ``fmt`` turns a column's numbers into text, ``headers`` renames columns for the eye.

    The numbers themselves, under their own column names (units included), are what the report's CSVs hold.
    """
    if df.empty:
        return "_(empty)_"
    shown = df.copy()
    for column, f in (fmt or {}).items():
        if column in shown:
            shown[column] = [f(v) for v in shown[column]]
    return shown.rename(columns=headers or {}).to_markdown(index=False)


def of_seed(table: pd.DataFrame, seed: int | str) -> pd.DataFrame:
    """The rows of one seed of a table that holds every seed's (a ``seed`` column), without that column."""
    return table[table["seed"] == int(seed)].drop(columns=["seed"])


def seconds(v: Any) -> str:
    """``3.2 ms``: seconds in the unit that suits them, 3 significant digits; ``-`` where nothing was measured."""
    if not is_finite_number(v):
        return "-"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v / 1e-9:.3g} ns"


def percent(digits: int = 0) -> Callable[[Any], str]:
    """A formatter of fractions as percentages (``-`` where nothing was measured)."""
    return lambda v: f"{v:.{digits}%}" if is_finite_number(v) else "-"


def sig(digits: int = 3, thousands: bool = False) -> Callable[[Any], str]:
    """A formatter to ``digits`` significant digits, or to whole numbers with separators (``thousands``)."""
    return lambda v: ("-" if not is_finite_number(v) else f"{v:,.0f}" if thousands else f"{v:.{digits}g}")


def interval_columns(name: str, iv: Interval) -> dict[str, float]:
    """An interval as four numeric columns: ``name`` (the estimate), ``name_low``, ``name_high``, ``name_rounds``."""
    return {name: iv.estimate, f"{name}_low": iv.low, f"{name}_high": iv.high, f"{name}_rounds": iv.rounds}


def interval_text(row: pd.Series, name: str, unit: str = "", confidence: float = 0.95) -> str:
    """The text of an interval kept as ``interval_columns``: ``3.72x (95% CI 3.31-4.12, 7 rounds)``."""
    if name not in row or not is_finite_number(row[name]):
        return "-"
    return Interval(row[name], row[f"{name}_low"], row[f"{name}_high"], int(row[f"{name}_rounds"]),
                    confidence, needed=min_rounds(confidence)).text(unit)


def shown_intervals(df: pd.DataFrame, units: dict[str, str], confidence: float = 0.95) -> pd.DataFrame:
    """``df`` with each interval's four columns folded into one text column, for markdown."""
    out = df.copy()
    for name, unit in units.items():
        if name in out:
            out[name] = [interval_text(r, name, unit, confidence) for _, r in df.iterrows()]
            out = out.drop(columns=[f"{name}_low", f"{name}_high", f"{name}_rounds"])
    return out


BUSY_SHARE = 0.1


def busy_note(shares: list[float]) -> str:
    """A warning for the report when other processes took a noticeable share of the CPU during the timings."""
    finite = [x for x in shares if isinstance(x, (int, float)) and math.isfinite(x)]
    if not finite or max(finite) <= BUSY_SHARE:
        return ""
    return (f"**Warning: the machine was shared.** Other processes took up to {max(finite):.0%} of all CPU time "
            f"while these timings ran (column `others`; above {BUSY_SHARE:.0%} is flagged). On a machine with few "
            "cores, torch's threads then wait for each other and times can grow many-fold: these numbers are "
            "not what the device can do. Re-run on a quiet machine.")
