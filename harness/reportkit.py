"""What a report section needs: the read-back view of a recorded spec run, markdown tables and saved figures.

The kinds' ``section(view)`` functions and ``report.py`` build on this; it imports neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness import tracking  # noqa: E402
from harness.stats import Interval, is_finite_number, min_rounds, rounds_interval  # noqa: E402


@dataclass
class RunView:
    """One recorded spec run, read back from MLflow, with lazy access to its curves and artifacts."""

    row: pd.Series
    figures: Path | None = None  # where section() saves its PNGs (None: tables only, no figures)
    suffix: str = ""  # told apart in figure names when a spec shows two runs (a CPU and a CUDA one)
    _read: dict[tuple[str, str, str], pd.DataFrame] = field(default_factory=dict, repr=False)  # unit reads

    @property
    def run_id(self) -> str:
        return self.row["run_id"]

    def tag(self, name: str, default: str = "") -> str:
        value = self.row.get(f"tags.{name}")
        return default if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)

    @property
    def name(self) -> str:
        return self.tag(tracking.SPEC_NAME)

    @property
    def kind(self) -> str:
        return self.tag("harness.kind")

    @property
    def devices(self) -> list[str]:
        return [d for d in self.tag("harness.devices_ran").split(",") if d]

    @cached_property
    def spec(self) -> dict[str, Any]:
        return tracking.load_json(self.run_id, "spec.json")

    @property
    def confidence(self) -> float:
        """The spec's confidence level, the one its verdicts use."""
        return self.spec.get("timing", {}).get("confidence", 0.95)

    def interval(self, values: list[float]) -> Interval:
        """The interval of a timing's rounds at the spec's confidence level, the one its verdicts use."""
        return rounds_interval(values, self.confidence)

    @cached_property
    def measured(self) -> dict[str, dict[str, dict[str, Any]]]:
        return tracking.load_json(self.run_id, "measured.json")

    @cached_property
    def verdicts(self) -> pd.DataFrame:
        df = pd.DataFrame(tracking.load_json(self.run_id, "verdicts.json"))
        if "gate" not in df:
            df["gate"] = True
        return df

    @cached_property
    def units(self) -> dict[tuple[str, str], str]:
        """The unit runs under this spec run, by (device, seed)."""
        runs = tracking.unit_runs(self.run_id)
        return {(r["tags.device"], str(r["tags.seed"])): r["run_id"] for _, r in runs.iterrows()}

    @cached_property
    def cited(self) -> dict[str, dict[str, Any]]:
        """The references entries the spec cites, as recorded with the run."""
        return tracking.load_json(self.run_id, "references.json")

    def unit(self, device: str, seed: int | str) -> str:
        return self.units[(device, str(seed))]

    def series(self, name: str, device: str, seed: int | str) -> pd.DataFrame:
        """A metric of one unit as (step, value) (read once, then a copy each time)."""
        return self._once("series", name, self.unit(device, seed), tracking.metric_history)

    def table(self, name: str, device: str, seed: int | str) -> pd.DataFrame:
        """A table one unit logged (read once, then a copy each time)."""
        return self._once("table", name, self.unit(device, seed), lambda run, n: tracking.load_table(run, f"{n}.json"))

    def _once(self, what: str, name: str, unit: str, read) -> pd.DataFrame:
        """The section and the report's CSVs read the same unit data: from the store once."""
        key = (what, name, unit)
        if key not in self._read:
            self._read[key] = read(unit, name)
        return self._read[key].copy()

    def figure_path(self, stem: str) -> tuple[Path, str]:
        """Where to save a PNG, and the relative link REPORT.md uses for it."""
        if self.figures is None:
            raise RuntimeError("this RunView was made for its tables: it has no folder for figures")
        name = f"{self.name}{self.suffix}-{stem}.png"
        return self.figures / name, f"figures/{name}"


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
    """An interval as four numeric columns: ``name`` (the estimate), ``name low``, ``name high``, ``name rounds``."""
    return {name: iv.estimate, f"{name} low": iv.low, f"{name} high": iv.high, f"{name} rounds": iv.rounds}


def interval_text(row: pd.Series, name: str, unit: str = "", confidence: float = 0.95) -> str:
    """The text of an interval kept as ``interval_columns``: ``3.72x (95% CI 3.31-4.12, 7 rounds)``."""
    if name not in row or not is_finite_number(row[name]):
        return "-"
    return Interval(row[name], row[f"{name} low"], row[f"{name} high"], int(row[f"{name} rounds"]),
                    confidence, needed=min_rounds(confidence)).text(unit)


def shown_intervals(df: pd.DataFrame, units: dict[str, str], confidence: float = 0.95) -> pd.DataFrame:
    """``df`` with each interval's four columns folded into one text column, for markdown."""
    out = df.copy()
    for name, unit in units.items():
        if name in out:
            out[name] = [interval_text(r, name, unit, confidence) for _, r in df.iterrows()]
            out = out.drop(columns=[f"{name} low", f"{name} high", f"{name} rounds"])
    return out


def save_figure(fig, view: RunView, stem: str, alt: str) -> str:
    """Save a matplotlib figure for the report and return its markdown image line."""
    path, link = view.figure_path(stem)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f"![{alt}]({link})"
