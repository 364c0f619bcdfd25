"""A few headline figures over the last suites in the store, one point per suite and device, with intervals.

Each headline is one number a spec measures, read back from every suite that ran the spec: a timing with the
interval over its rounds, an accuracy with the interval over its seeds. Plotted side by side, coloured by the
machine that measured them, they show at a glance whether something drifted between commits or machines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from harness import results
from harness.reportkit import RunView
from harness.stats import Interval, seeds_interval

LAST = 10  # suites shown


@dataclass(frozen=True)
class Headline:
    """One figure of one spec: a metric, or the GFLOP/s of an (implementation, shape) from its seconds per round."""

    spec: str
    metric: str
    title: str
    unit: str = ""
    gflops_of: str = ""  # "library.lenet_c1": per-round GFLOP/s of that row of the throughput table


HEADLINES = (
    Headline("conv-throughput", "library_over_loop_claim", "D2: library conv / loop corr2d (28x28)", "x"),
    Headline("lenet-loops", "speedup", "C1: harness loop / tutorial loop (examples/s)", "x"),
    Headline("conv-throughput", "s.library.lenet_c1", "D2: library conv GFLOP/s, LeNet conv1 (batch 256)",
             "GFLOP/s", gflops_of="library.lenet_c1"),
    Headline("conv-throughput", "s.library.lenet_c2", "D2: library conv GFLOP/s, LeNet conv2 (batch 256)",
             "GFLOP/s", gflops_of="library.lenet_c2"),
    Headline("lenet-c2", "test_acc", "C2: test accuracy (mean over seeds)"),
    Headline("batch-speed", "epoch_ratio_1_over_10", "D1: epoch at batch 1 / epoch at batch 10", "x"),
)
COLUMNS = ["suite", "started", "commit", "headline", "unit", "device", "machine", "estimate", "low", "high", "n",
           "basis"]


def _flops(view: RunView, device: str, impl_shape: str) -> float:
    impl, shape = impl_shape.split(".", 1)
    table = view.table("conv_throughput", device, next(iter(view.measured[device])))
    row = table[(table["impl"] == impl) & (table["shape"] == shape)]
    return float(row["flops"].iloc[0]) if not row.empty else math.nan


def _interval(headline: Headline, sample: pd.Series, view: RunView, device: str) -> Interval:
    if sample["basis"] == "seeds":
        return seeds_interval(sample["values"], view.confidence)
    iv = view.interval(sample["values"])
    if not headline.gflops_of:
        return iv
    giga = _flops(view, device, headline.gflops_of) / 1e9  # GFLOP/s = FLOP / seconds: the interval turns over
    return Interval(giga / iv.estimate, giga / iv.high, giga / iv.low, iv.rounds, iv.confidence)


def history(tracking_uri: str | None = None, last: int = LAST) -> pd.DataFrame:
    """The headline figures of the ``last`` suites, oldest first: one row per (suite, headline, device)."""
    rows = []
    for _, suite in results.suites(tracking_uri).head(last).iloc[::-1].iterrows():
        found = results.of_suite(suite)
        for headline in HEADLINES:
            row = found.runs.get(headline.spec)
            if row is None:
                continue
            view, samples = RunView(row), results.samples(row, {headline.metric})
            for _, sample in samples[samples["metric"] == headline.metric].iterrows():
                iv = _interval(headline, sample, view, sample["device"])
                rows.append({"suite": suite["run_id"], "started": pd.Timestamp(suite["start_time"]),
                             "commit": str(suite.get("tags.git.commit") or "")[:10], "headline": headline.title,
                             "unit": headline.unit, "device": sample["device"],
                             "machine": results.machine(row, sample["device"]), "estimate": iv.estimate,
                             "low": iv.low, "high": iv.high, "n": iv.rounds, "basis": sample["basis"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def plot(df: pd.DataFrame):
    """One panel per headline: a point per suite, coloured by (machine, device), with its interval as a bar."""
    import matplotlib.pyplot as plt

    titles = [h.title for h in HEADLINES if h.title in set(df["headline"])]
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
    fig.tight_layout()
    return fig


def pivot(df: pd.DataFrame) -> pd.DataFrame:
    """The history as the report's table: a row per suite and machine, a column per headline, with intervals."""
    def text(r: pd.Series) -> str:
        est = f"{r['estimate']:.3g}" + ("x" if r["unit"] == "x" else "")
        if not (math.isfinite(r["low"]) and math.isfinite(r["high"])):
            return f"{est} (no interval, {r['n']} {r['basis']})"
        return f"{est} ({r['low']:.3g}-{r['high']:.3g}, {r['n']} {r['basis']})"

    cells = df.assign(cell=df.apply(text, axis=1), started=df["started"].dt.strftime("%Y-%m-%d %H:%M"))
    table = cells.pivot_table(index=["started", "commit", "machine", "device"], columns="headline", values="cell",
                              aggfunc="first", sort=False)
    titles = [h.title for h in HEADLINES if h.title in table.columns]
    return table[titles].reset_index().fillna("-")
