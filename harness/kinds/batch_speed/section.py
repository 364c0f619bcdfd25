"""The batch-speed report: examples/s and seconds per update against the batch size, and the speed table."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from harness.kinds.base import timings_of
from harness.kinds.batch_speed.settings import METRICS
from harness.reading.markdown import busy_note

if TYPE_CHECKING:
    from harness.reading.view import RunView

UNITS = timings_of(METRICS)


def speed_table(df: pd.DataFrame) -> pd.DataFrame:
    """One unit's logged table as the report's CSV holds it: numbers, the unit in each column's name."""
    nan = pd.Series(math.nan, index=df.index)
    measured = df["epoch_measured_s"]
    return pd.DataFrame({
        "batch": df["batch"].astype(int),
        "update_s": df["update_s"],
        "rel_spread": df["rel_spread"],
        "round_spread": df.get("round_spread", nan),
        "others_cpu": df.get("others_cpu", nan),
        "faults_per_update": df.get("faults_per_update", nan),
        "updates_timed": df["updates_timed"].astype(int),
        "examples_per_s": df["examples_per_s"],
        "updates_per_epoch": df["updates_per_epoch"].astype(int),
        "epoch_s": df["epoch_s"],
        "epoch_s_full": df["epoch_s_full"],
        "epoch_measured_s": measured,
        "extrapolated_over_real": df["epoch_s"] / measured.where(measured > 0),
    })


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """Per device: the speed at every batch size, every seed's rows with a ``seed`` column."""
    return {f"speed-{device}": pd.concat(
        [speed_table(view.table("batch_speed", device, seed)).assign(seed=int(seed)) for seed in seeds],
        ignore_index=True)
        for device, seeds in view.measured.items()}


def shown(table: pd.DataFrame, epoch_examples: int, full_examples: int) -> str:
    """One seed's speed table as markdown, under the headers a reader knows."""
    from harness.reading.markdown import md_table, percent, seconds, sig

    return md_table(table,
                    fmt={"update_s": seconds, "rel_spread": percent(1), "round_spread": percent(),
                         "others_cpu": percent(), "faults_per_update": sig(thousands=True),
                         "examples_per_s": sig(thousands=True), "epoch_s": seconds, "epoch_s_full": seconds,
                         "epoch_measured_s": seconds, "extrapolated_over_real": sig(4)},
                    headers={"update_s": "s / update", "rel_spread": "IQR/median", "round_spread": "rounds apart",
                             "others_cpu": "others", "faults_per_update": "page faults / update",
                             "updates_timed": "updates timed", "examples_per_s": "examples/s",
                             "updates_per_epoch": f"updates / epoch of {epoch_examples}",
                             "epoch_s": f"s / epoch of {epoch_examples} (extrapolated)",
                             "epoch_s_full": f"s / epoch of {full_examples} (extrapolated)",
                             "epoch_measured_s": "s / epoch (one real epoch)",
                             "extrapolated_over_real": "extrapolated / real"})


def _summary(view: RunView, df: pd.DataFrame, m: dict) -> str:
    """The page's comparisons of one (device, seed), on their intervals over rounds."""
    iv = {k: view.interval(m["rounds"][k]).text(UNITS[k])
          for k in ("epoch_ratio_1_over_10", "update_growth_1_to_10", "update_time_growth")}
    low, high = int(df["batch"].min()), int(df["batch"].max())
    return (f"Epoch at batch 1 / epoch at batch 10: **{iv['epoch_ratio_1_over_10']}**. Time per update from batch 1 "
            f"to 10: **{iv['update_growth_1_to_10']}**; from batch {low} to {high}: **{iv['update_time_growth']}** "
            f"for x{int(high / low)} the examples. Most examples/s at batch {m['best_batch']} "
            f"({df['examples_per_s'].max():,.0f}/s, pooled rounds).")


def _note(settings: dict) -> str:
    """How the table's numbers were measured, from the spec's settings."""
    epoch, full = settings["epoch_examples"], settings["full_examples"]
    return (f"Seconds per epoch are **extrapolated**: the median seconds of one update times the number of "
            f"updates in an epoch, ceil({epoch:,} / batch) for the page's epoch of {epoch:,} examples and "
            f"ceil({full:,} / batch) for the whole training set. Each batch size had its own fresh LeNet "
            f"(`{settings['model']}`), {settings['warmup_updates']} warm-up updates, then at least "
            f"{settings['round_time']} s of timed updates a round, in rounds interleaved over the batch sizes (the "
            "table pools the blocks of every round; `rounds apart` is how far the slowest round's median lay above "
            "the fastest's; the ratios above are taken within each round and their interval is over rounds) on "
            "real Fashion-MNIST batches held in device memory (no DataLoader, no evaluation: the page's times "
            "include both, so its absolute seconds are not comparable). `others` is the share of all CPU time "
            "other processes took meanwhile. `page faults / update` counts, over one more block of updates, the "
            "memory the process touched afresh: where the allocator hands large buffers back to the system after "
            "every update and faults them in again, the count is high, and the update's time is as much the "
            "allocator's as the arithmetic's.")


def section(view: RunView) -> str:
    """Report: examples/s and seconds per update against the batch size, one line per device; the tables."""
    import matplotlib.pyplot as plt

    from harness.reading.figures import save_figure
    from harness.reading.markdown import of_seed

    settings = view.spec["settings"]
    speed = tables(view)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    parts: list[str] = []
    for device in view.devices:
        for seed, m in view.measured[device].items():
            df = view.table("batch_speed", device, seed)
            label = f"{device}" + (f" seed {seed}" if len(view.measured[device]) > 1 else "")
            ax1.plot(df["batch"], df["examples_per_s"], marker="o", label=label)
            ax2.plot(df["batch"], df["update_s"], marker="o", label=label)
            b1 = float(df.loc[df["batch"] == 1, "update_s"].iloc[0])
            busy = busy_note(df["others_cpu"].tolist() if "others_cpu" in df else [])
            parts += [f"### {device} (seed {seed}): seconds per update and per epoch", "",
                      *([busy, ""] if busy else []), _summary(view, df, m), "",
                      shown(of_seed(speed[f"speed-{device}"], seed), settings["epoch_examples"],
                            settings["full_examples"]), ""]
        ax2.plot(df["batch"], b1 * df["batch"] / df["batch"].min(), ls=":", color="grey",
                 label="proportional to batch" if device == view.devices[0] else None)
    ax1.set(xscale="log", yscale="log", xlabel="batch size", ylabel="examples / s (training updates)",
            title="throughput")
    ax2.set(xscale="log", yscale="log", xlabel="batch size", ylabel="seconds / update", title="time of one update")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    image = save_figure(fig, view, "speed-" + "-".join(view.devices),
                        "examples/s and seconds per update against batch size")
    return "\n".join([image, "", _note(settings), "", *parts])
