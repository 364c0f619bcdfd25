"""The report's first screen: does the chapter reproduce, on which devices, and how fast is this against the book's
own code, with where the numbers come from. Read from the verdict rows of the spec runs the report shows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from harness.judging.verdict import INCONCLUSIVE, MISSED, REPRODUCED, SKIPPED
from harness.kinds import registry
from harness.reading.view import RunView
from harness.reporting import history
from harness.store import tags as tag

DEVICES = ("cpu", "cuda")
MARK = {REPRODUCED: "✅", MISSED: "❌", INCONCLUSIVE: "❔", SKIPPED: "⏭"}


def _gating(view: RunView, device: str) -> pd.DataFrame:
    v = view.verdicts
    return v[(v["device"] == device) & v["gate"].astype(bool)]


def devices_table(views: list[RunView]) -> pd.DataFrame:
    """Per device, the gating claims of every spec shown: reproduced, not, inconclusive, and not run with why."""
    rows = []
    for device in DEVICES:
        per_view = [(v, _gating(v, device)) for v in views]
        claims = pd.concat([g for _, g in per_view]) if per_view else pd.DataFrame(columns=["status", "detail"])
        counts = claims["status"].value_counts()
        skipped = claims[claims["status"] == SKIPPED]
        why = Counter(str(d).split(";")[0] for d in skipped["detail"])
        rows.append({"device": device,
                     "specs_judged": sum(bool((g["status"] != SKIPPED).any()) for _, g in per_view),
                     "reproduced": int(counts.get(REPRODUCED, 0)), "not_reproduced": int(counts.get(MISSED, 0)),
                     "inconclusive": int(counts.get(INCONCLUSIVE, 0)), "not_run": int(len(skipped)),
                     "specs_not_run": sum(bool((g["status"] == SKIPPED).any()) for _, g in per_view),
                     "why_not_run": "; ".join(f"{reason} ({n})" for reason, n in why.most_common(2))})
    return pd.DataFrame(rows)


def speedups_table(views: list[RunView]) -> pd.DataFrame:
    """Every headline speed-up a kind declares (``Kind.speedups``) that a spec names among its headlines: one row per
    (spec, device, metric), its interval, and every claim on it with its bound and verdict."""
    rows = []
    for view in views:
        kind = registry.get(view.kind, required=False)
        if kind is None:
            continue
        named = {h.metric for h in history.spec_headlines(view)}
        labels = {m: text for m, text in kind.speedups(view).items() if m in named}
        v = view.verdicts
        mine = v[v["metric"].isin(labels) & (v["status"] != SKIPPED)]
        for (device, metric), claims in mine.groupby(["device", "metric"], sort=False):
            first = claims.iloc[0]
            rows.append({"compared": labels[metric], "spec": view.name, "device": device, "metric": metric,
                         "estimate": first["estimate"], "low": first["low"], "high": first["high"],
                         "rounds": first["rounds"], "measured": first["measured"],
                         "claims": "; ".join(f"{c.expected}{'' if c.gate else ' (info)'} {MARK.get(c.status, '')}"
                                             for c in claims.itertuples())})
    return pd.DataFrame(rows, columns=["compared", "spec", "device", "metric", "estimate", "low", "high", "rounds",
                                       "measured", "claims"])


def speedups_figure(df: pd.DataFrame, path: Path) -> bool:
    """Each speed-up's median round and 95% interval on a log axis, its bounds marked; False where none has one."""
    import matplotlib.pyplot as plt

    from harness.reading.figures import write

    shown = df[df["estimate"].notna()].reset_index(drop=True)
    if shown.empty:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(shown)))
    y = list(range(len(shown)))[::-1]
    ax.errorbar(shown["estimate"], y, xerr=[shown["estimate"] - shown["low"], shown["high"] - shown["estimate"]],
                fmt="o", color="C0", capsize=3, label="median round, 95% CI")
    for yy, claims in zip(y, shown["claims"]):
        for part in claims.split("; "):
            bound = part.split()[1] if part.startswith((">=", "<=")) else None
            if bound is not None:
                ax.plot([float(bound.replace(",", ""))], [yy], "|", color="C3", ms=14, mew=2)
    ax.plot([], [], "|", color="C3", ms=10, mew=2, label="claimed bound")
    ax.set_yticks(y, [f"{r.compared} [{r.spec}, {r.device}]" for r in shown.itertuples()], fontsize=8)
    ax.set(xscale="log", xlabel="speed-up (x)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    write(fig, path)
    return True


def provenance(suite: pd.Series | None, views: list[RunView]) -> str:
    """Where the numbers come from: the newest suite's commit, machine, date and wall time, and the other runs."""
    if suite is None:
        return f"No suite run in this store: {len(views)} spec run(s) made with `harness run`."
    start, end = pd.Timestamp(suite["start_time"]), suite.get("end_time")
    minutes = (pd.Timestamp(end) - start).total_seconds() / 60 if end is not None and not pd.isna(end) else None
    inside = sum(v.tag("mlflow.parentRunId") == suite["run_id"] for v in views)
    took = f", {minutes:.1f} minutes" if minutes is not None else ""
    began = tag.value(suite, tag.SESSION_START)  # Unix seconds: nox's reproduce session began, before installing
    if minutes is not None and began.isdigit():
        took += (f"; {(pd.Timestamp(end).timestamp() - int(began)) / 60:.1f} from the start of `nox -s reproduce`, "
                 "its install included")
    others = ("all of the spec runs shown are from it" if inside == len(views) else
              f"{inside} of the {len(views)} spec runs shown are from it, the others older or run alone (the Summary "
              "lists them apart, with their commit and start; `experiments/studies/` holds the checks kept out of the "
              "suite, which `nox -s reproduce -- --studies` runs after it)")
    return (f"From the suite run `{suite['run_id'][:8]}` ({start:%Y-%m-%d %H:%M} UTC{took}) at commit "
            f"`{str(suite.get('tags.git.commit') or '?')[:10]}` on {suite.get('tags.cpu.model', '?')} "
            f"({suite.get('tags.cpu.count', '?')} cores), GPU: {suite.get('tags.gpu.model') or 'none'}; {others}.")
