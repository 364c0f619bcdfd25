"""What a report section needs: the read-back view of a recorded spec run, markdown tables and saved figures.

The kinds' ``section(view)`` functions and ``report.py`` build on this; it imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness import tracking  # noqa: E402
from harness.stats import Interval, interval  # noqa: E402


@dataclass
class RunView:
    """One recorded spec run, read back from MLflow, with lazy access to its curves and artifacts."""

    row: pd.Series
    figures: Path
    suffix: str = ""  # told apart in figure names when a spec shows two runs (a CPU and a CUDA one)

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

    def interval(self, values: list[float]) -> Interval:
        """The bootstrap interval of ``values`` at the spec's confidence level, the one its verdicts use."""
        return interval(values, confidence=self.spec.get("timing", {}).get("confidence", 0.95))

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
        """A metric of one unit as (step, value)."""
        return tracking.metric_history(self.unit(device, seed), name)

    def table(self, name: str, device: str, seed: int | str) -> pd.DataFrame:
        """A table one unit logged."""
        return tracking.load_table(self.unit(device, seed), f"{name}.json")

    def figure_path(self, stem: str) -> tuple[Path, str]:
        """Where to save a PNG, and the relative link REPORT.md uses for it."""
        name = f"{self.name}{self.suffix}-{stem}.png"
        return self.figures / name, f"figures/{name}"


def md_table(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False) if not df.empty else "_(empty)_"


def save_figure(fig, view: RunView, stem: str, alt: str) -> str:
    """Save a matplotlib figure for the report and return its markdown image line."""
    path, link = view.figure_path(stem)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f"![{alt}]({link})"
