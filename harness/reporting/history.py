"""The headline figures over the last suites in the store, one point per suite and device, with intervals.

A headline is a number a spec names (``headlines:``, else its kind's default), read back from every suite that ran
the spec: a timing with its interval over rounds, anything else with its interval over seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from harness.judging.stats import Interval, seeds_interval
from harness.kinds import registry
from harness.reading import results
from harness.reading.view import RunView

LAST = 10  # suites shown


@dataclass(frozen=True)
class Headline:
    """One figure of one spec: a metric its spec names under ``headlines:`` (or its kind marks as a headline)."""

    spec: str
    metric: str
    unit: str

    @property
    def title(self) -> str:
        return f"{self.spec}: {self.metric}" + (f" ({self.unit})" if self.unit else "")


COLUMNS = ["suite", "started", "commit", "headline", "unit", "device", "machine", "estimate", "low", "high", "n",
           "basis"]


def spec_headlines(view: RunView) -> list[Headline]:
    """The figures a spec run's spec names as its headlines, or, where it names none, its kind's."""
    kind = registry.get(view.kind, required=False)
    if kind is None:
        return []
    names = view.spec.get("headlines")
    return [Headline(view.name, metric, declared.unit if (declared := kind.metric(metric)) else "")
            for metric in (kind.headlines if names is None else names)]


def headlines(suite: results.RunSet) -> list[Headline]:
    """The figures a suite's specs name as their headlines, or, where a spec names none, its kind's."""
    return [h for _, row in sorted(suite.runs.items()) for h in spec_headlines(RunView(row))]


def _interval(sample: pd.Series, view: RunView) -> Interval:
    if sample["basis"] == "seeds":
        return seeds_interval(sample["values"], view.confidence)
    return view.interval(sample["values"])


def _headline_rows(row: pd.Series, figures: list[Headline], when: pd.Series) -> list[dict]:
    """One spec run's headline figures with their intervals, a row per (headline, device); ``when`` (a suite's row,
    or the run's own) gives the id, start and commit they are filed under."""
    view = RunView(row)
    kind = registry.get(view.kind)
    samples = kind.derive(view, results.samples(row))
    rows = []
    for headline in figures:
        for _, sample in samples[samples["metric"] == headline.metric].iterrows():
            iv = _interval(sample, view)
            rows.append({"suite": when["run_id"], "started": pd.Timestamp(when["start_time"]),
                         "commit": str(when.get("tags.git.commit") or "")[:10], "headline": headline.title,
                         "unit": headline.unit, "device": sample["device"],
                         "machine": results.machine(row, sample["device"]), "estimate": iv.estimate,
                         "low": iv.low, "high": iv.high, "n": iv.rounds, "basis": sample["basis"]})
    return rows


def history(tracking_uri: str | None = None, last: int = LAST) -> pd.DataFrame:
    """The headline figures of the ``last`` suites, oldest first: one row per (suite, headline, device)."""
    found = results.suites(tracking_uri).head(last)
    if found.empty:
        return pd.DataFrame(columns=COLUMNS)
    figures = headlines(results.of_suite(found.iloc[0]))
    rows = []
    for _, suite in found.iloc[::-1].iterrows():
        runs = results.of_suite(suite).runs
        for spec in dict.fromkeys(h.spec for h in figures):
            if spec in runs:
                rows += _headline_rows(runs[spec], [h for h in figures if h.spec == spec], suite)
    return pd.DataFrame(rows, columns=COLUMNS)


def runs_of_spec(runs: pd.DataFrame, last: int = LAST) -> pd.DataFrame:
    """The headline figures of the ``last`` finished runs of one spec (``runs``, newest first), oldest first: how
    far apart whole runs fall, which no single run's interval covers (it holds for the rounds of that run)."""
    figures = spec_headlines(RunView(runs.iloc[0]))
    if not figures:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for _, row in runs.head(last).iloc[::-1].iterrows():
        rows += _headline_rows(row, figures, row)
    return pd.DataFrame(rows, columns=COLUMNS)


def plot(df: pd.DataFrame):
    """One panel per headline: a point per suite, coloured by (machine, device), with its interval as a bar."""
    import matplotlib.pyplot as plt

    titles = list(dict.fromkeys(df["headline"]))
    cols = 2
    rows = math.ceil(len(titles) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.2 * rows), squeeze=False)
    order = list(dict.fromkeys(df["suite"]))
    labels = {s: f"{pd.Timestamp(g['started'].iloc[0]):%m-%d %H:%M}\n{g['commit'].iloc[0][:7]}"
              for s, g in df.groupby("suite", sort=False)}
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(df["machine"] + " (" + df["device"] + ")"))}
    for ax, title in zip(axes.flat, titles):
        sub = df[df["headline"] == title]
        for who, g in sub.groupby(sub["machine"] + " (" + sub["device"] + ")", sort=False):
            x = [order.index(s) for s in g["suite"]]
            low = (g["estimate"] - g["low"]).clip(lower=0).fillna(0)
            high = (g["high"] - g["estimate"]).clip(lower=0).fillna(0)
            ax.errorbar(x, g["estimate"], yerr=[low, high], fmt="o", capsize=3, color=colours[who], label=who)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(order)), [labels[s] for s in order], fontsize=7)
        ax.set_xlim(-0.5, len(order) - 0.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(titles):]:
        ax.set_visible(False)
    return fig


def pivot(df: pd.DataFrame) -> pd.DataFrame:
    """The history as the report's table: a row per suite (or run) and device, a column per headline, with
    intervals."""
    def text(r: pd.Series) -> str:
        est = f"{r['estimate']:.3g}" + ("x" if r["unit"] == "x" else "")
        if not (math.isfinite(r["low"]) and math.isfinite(r["high"])):
            return f"{est} (no interval, {r['n']} {r['basis']})"
        return f"{est} ({r['low']:.3g}-{r['high']:.3g}, {r['n']} {r['basis']})"

    cells = df.assign(cell=df.apply(text, axis=1), started=df["started"].dt.strftime("%Y-%m-%d %H:%M"),
                      run=df["suite"].str[:8])
    table = cells.pivot_table(index=["started", "run", "commit", "machine", "device"], columns="headline",
                              values="cell", aggfunc="first", sort=False)
    titles = [t for t in dict.fromkeys(df["headline"]) if t in table.columns]
    return table[titles].reset_index().fillna("-")
