"""The report's tables as pandas, for anyone to load (``reports/tables/`` holds the same as CSV): numbers, under
snake_case columns that carry their units. ``table("conv-throughput", "throughput", device="cpu")`` is the newest
run's; ``suite="latest"`` or ``run=ID`` pick another.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.kinds import registry
from harness.reading.results import ResultsError, resolve
from harness.reading.view import RunView
from harness.store import tags as tag
from harness.store import tracking


def view(row: pd.Series, figures: Path | None = None, suffix: str = "") -> RunView:
    """A recorded spec run, read back."""
    return RunView(row, figures, suffix)


def view_tables(view: RunView) -> dict[str, pd.DataFrame]:
    """Every table the report shows for one spec run, by name (``<table>`` or ``<table>-<device>``)."""
    verdicts = view.verdicts.copy()
    for column in verdicts:  # expected and measured values may be lists (a curve, a kernel): as JSON in a CSV cell
        verdicts[column] = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in verdicts[column]]
    out = {"verdicts": verdicts}
    if view.devices:
        out |= registry.get(view.kind).tables(view)
    return out


def _spec_row(spec: str, tracking_uri: str | None, run: str | None, suite: str | None) -> pd.Series:
    if run and suite:
        raise ResultsError("give run or suite, not both")
    if run or suite:
        found = resolve(run or suite, tracking_uri)  # type: ignore[arg-type]
        if run and found.role != tag.SPEC:
            raise ResultsError(f"run {run}: not a spec run (a suite is given as suite=)")
        if spec not in found.runs:
            raise ResultsError(f"{found.label} holds no finished run of spec {spec!r}")
        return found.runs[spec]
    return newest_run(spec, tracking_uri)


def newest_run(spec: str, tracking_uri: str | None = None) -> pd.Series:
    """The newest finished run of the spec called ``spec`` in the store."""
    runs = tracking.spec_runs(tracking_uri)
    mine = runs[runs[tag.column(tag.SPEC_NAME)] == spec] if not runs.empty else runs
    if mine.empty:
        raise ResultsError(f"{tracking.tracking_uri(tracking_uri)} holds no finished run of spec {spec!r}")
    return mine.iloc[0]


def tables(spec: str, *, tracking_uri: str | None = None, run: str | None = None,
           suite: str | None = None) -> dict[str, pd.DataFrame]:
    """Every table of a spec's run: its newest finished run, or the one given (``run``) or in a suite (``suite``)."""
    return view_tables(view(_spec_row(spec, tracking_uri, run, suite)))


def table(spec: str, name: str, device: str | None = None, *, tracking_uri: str | None = None,
          run: str | None = None, suite: str | None = None) -> pd.DataFrame:
    """One table of a spec's run, as the report shows it: ``table("conv-throughput", "throughput", device="cpu")``.

    A table kept per device needs ``device`` only where the run has more than one.
    """
    found = tables(spec, tracking_uri=tracking_uri, run=run, suite=suite)
    key = f"{name}-{device}" if device else name
    if key not in found and device is None:
        per_device = [k for k in found if k.startswith(f"{name}-")]
        if len(per_device) == 1:
            key = per_device[0]
    if key not in found:
        raise ResultsError(f"spec {spec!r} has no table {key!r}; it has: {', '.join(found)}")
    return found[key]


def write_csv(frames: dict[str, pd.DataFrame], folder: Path) -> list[Path]:
    """Each table as ``<name>.csv`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in frames.items():
        paths.append(folder / f"{name}.csv")
        df.to_csv(paths[-1], index=False)
    return paths
