"""Two runs of one spec, code, machine and seed: did they give the same learning curves, bit for bit?

For each unit of a spec run it finds the newest other finished unit run with the same spec hash, code id, device,
device model, torch, thread count and seed (units copied by ``--resume`` are not runs), and compares the curves its kind
declares (``CURVES``) point by point. The report's Determinism section reads the result, per device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from harness.kinds import registry
from harness.store import tags as tag
from harness.store import tracking

if TYPE_CHECKING:
    from harness.reading.view import RunView

SAME = (tag.SPEC_HASH, tag.CODE_ID, "device", "device.model", "torch", "torch.threads", "seed")
COLUMNS = ["spec", "device", "device_model", "seed", "run", "repeat", "curves", "points", "identical",
           "max_abs_difference"]


def twin(unit: pd.Series) -> str | None:
    """The newest other finished unit run that repeats ``unit`` (a row of ``tracking.unit_runs``), if any."""
    if any(pd.isna(unit.get(f"tags.{k}")) for k in SAME):
        return None
    found = tracking.finished_runs({tag.ROLE: tag.UNIT} | {k: unit[f"tags.{k}"] for k in SAME})
    if found.empty:
        return None
    reused = found.get(f"tags.{tag.REUSED_FROM}", pd.Series(index=found.index, dtype=object))
    found = found[(found["run_id"] != unit["run_id"]) & reused.isna()]
    return None if found.empty else found.iloc[0]["run_id"]


def curve_differences(a: str, b: str, curves: tuple[str, ...]) -> dict[str, object]:
    """How many curves and points two unit runs share, whether they are equal, and the largest difference."""
    n_curves = points = 0
    worst = 0.0
    same = True
    for name in curves:
        x, y = tracking.metric_history(a, name), tracking.metric_history(b, name)
        if x.empty and y.empty:
            continue
        n_curves += 1
        merged = x.merge(y, on="step", how="outer", suffixes=("_a", "_b"))
        points += len(merged)
        diff = (merged["value_a"] - merged["value_b"]).abs()
        same = same and len(x) == len(y) and bool((merged["value_a"] == merged["value_b"]).all())
        worst = max(worst, float(diff.max()) if diff.notna().all() else float("inf"))
    return {"curves": n_curves, "points": points, "identical": same, "max_abs_difference": worst}


def table(views: list[RunView]) -> pd.DataFrame:
    """One row per unit of ``views`` that has a repeat in the store, for kinds that declare curves."""
    rows = []
    for view in views:
        curves = getattr(registry.get(view.kind, required=False), "curves", ())
        if not curves:
            continue
        for _, unit in tracking.unit_runs(view.run_id).iterrows():
            if not pd.isna(unit.get(f"tags.{tag.REUSED_FROM}")):
                continue  # a copy of an earlier run (--resume), not a run of its own
            other = twin(unit)
            if other is None:
                continue
            got = curve_differences(unit["run_id"], other, curves)
            if got["curves"]:
                rows.append({"spec": view.name, "device": unit["tags.device"],
                             "device_model": unit["tags.device.model"], "seed": unit["tags.seed"],
                             "run": unit["run_id"][:8], "repeat": other[:8], **got})
    return pd.DataFrame(rows, columns=COLUMNS)


def by_spec(df: pd.DataFrame) -> pd.DataFrame:
    """Per spec and device: how many units repeated, how many points compared, how many differed and by how much."""
    if df.empty:
        return pd.DataFrame(columns=["spec", "device", "repeated_units", "points", "differed", "max_abs_difference"])
    return (df.assign(differed=~df["identical"].astype(bool))
            .groupby(["spec", "device"], as_index=False)
            .agg(**{"repeated_units": ("run", "size"), "points": ("points", "sum"), "differed": ("differed", "sum"),
                    "max_abs_difference": ("max_abs_difference", "max")}))


def summary(df: pd.DataFrame, devices: tuple[str, ...] = ("cpu", "cuda")) -> list[str]:
    """A line per device: how many repeated units the store holds and whether their curves matched."""
    lines = []
    for device in devices:
        on = df[df["device"] == device]
        if on.empty:
            lines.append(f"- **{device}**: no unit was run twice with the same spec, code, machine and seed, so "
                         "nothing says yet whether its curves repeat.")
            continue
        same = int(on["identical"].sum())
        verdict = ("identical curves, bit for bit" if same == len(on) else
                   f"{len(on) - same} differ (largest difference {on['max_abs_difference'].max():.3g})")
        lines.append(f"- **{device}** ({', '.join(sorted(set(on['device_model'])))}): {len(on)} repeated units of "
                     f"{on['spec'].nunique()} specs, {int(on['points'].sum())} points: {verdict}.")
    return lines
