"""A recorded spec run read back from the store: its tags, spec, verdicts, measured values, units' curves and tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.judging.stats import Interval, rounds_interval
from harness.reading import renames
from harness.store import tags as tag
from harness.store import tracking

VERDICT_DEFAULTS: dict[str, Any] = {"gate": True, "family": 0, "adjusted_p": float("nan"),
                                   "detectable_shift": float("nan"), "weak": False, "lag1": float("nan"),
                                   "runs_p": float("nan"), "own_status": "", "estimate": float("nan"),
                                   "claimed": float("nan")}


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
        return tag.value(self.row, name) or default

    @property
    def name(self) -> str:
        return self.tag(tag.SPEC_NAME)

    @property
    def kind(self) -> str:
        return self.tag(tag.KIND)

    @property
    def devices(self) -> list[str]:
        return [d for d in self.tag(tag.DEVICES_RAN).split(",") if d]

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
        """What each (device, seed) measured, by today's metric names."""
        raw = tracking.load_json(self.run_id, "measured.json")

        def renamed(values: dict[str, Any]) -> dict[str, Any]:
            out = {renames.current(k): v for k, v in values.items()}
            if isinstance(out.get("rounds"), dict):
                out["rounds"] = {renames.current(k): v for k, v in out["rounds"].items()}
            return out

        return {device: {seed: renamed(m) for seed, m in seeds.items()} for device, seeds in raw.items()}

    @cached_property
    def verdicts(self) -> pd.DataFrame:
        """The recorded verdicts, a row each; a store written before a column existed gets its neutral value (no
        family, no detectable shift: each row stands as it was judged)."""
        df = pd.DataFrame(tracking.load_json(self.run_id, "verdicts.json"))
        for column, default in VERDICT_DEFAULTS.items():
            if column not in df:
                df[column] = default
        df["family"] = df["family"].fillna(0).astype(int)
        if "own_status" in df:
            df["own_status"] = df["own_status"].where(df["own_status"].astype(bool), df["status"])
        for column in ("weak", "gate"):
            df[column] = df[column].fillna(False).astype(bool)
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
        """A metric of one unit as (step, value), under today's name or a former one (read once, then copies)."""
        unit = self.unit(device, seed)
        for candidate in renames.former(name):
            found = self._once("series", candidate, unit, tracking.metric_history)
            if not found.empty:
                return found
        return found

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
