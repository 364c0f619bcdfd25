"""D1: how the batch size decides the speed of an epoch: LeNet on Fashion-MNIST, seconds per update.

For each batch size, one fresh LeNet (d2l v2's, Xavier-initialised as ``train_ch6`` does) takes SGD
updates (forward, CrossEntropyLoss, backward, step) on consecutive batches of the real training
images, already in memory on the device (no DataLoader). After warm-up updates, the batch sizes are
timed in rounds: each round times every batch size in turn with torch.utils.benchmark for
``round_time`` seconds (CUDA synchronised), so a slow spell of the machine hits them all, and the
page's comparisons (batch 1 against batch 10, and the smallest against the largest batch) are taken
within each round. Rounds continue while a gating claim is undecided (``harness.rounds``). An epoch
is **extrapolated**: seconds per update x ceil(epoch / batch), for the page's epoch of 50,000 examples
and for the full 60,000 training set. For the batch sizes named in ``full_epoch_batches`` (when the
estimate is below ``full_epoch_max_s``), one whole epoch is also run and timed, to check the
extrapolation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from harness import device as devices
from harness import nets
from harness.data import load_fashion_mnist
from harness.models import init_xavier
from harness.rounds import Rounds, recorded_rounds
from harness.schema import Strict
from harness.timing import Timing, busy_note, cpu_threads, measure, pool, time_once

if TYPE_CHECKING:
    from harness.reportkit import RunView
    from harness.tracking import Recorder

KIND = "batch_speed"


class Settings(Strict):
    model: Literal["lenet_pad2_avg", "lenet_pad2_max", "lenet_nopad_max"] = "lenet_pad2_avg"
    batch_sizes: list[int] = Field(default=[1, 2, 4, 10, 16, 32, 64, 128, 256, 512, 1024], min_length=2)
    lr: float = Field(default=0.9, gt=0, le=10)
    epoch_examples: int = Field(default=50_000, ge=1, le=60_000, description="the page's epoch: 50,000 examples")
    full_examples: int = Field(default=60_000, ge=1, le=60_000, description="the whole Fashion-MNIST training set")
    warmup_updates: int = Field(default=3, ge=1, le=1000)
    round_time: float = Field(default=0.25, gt=0, le=60,
                              description="seconds of timed updates per batch size in each round")
    full_epoch_batches: list[int] = Field(default_factory=list,
                                          description="batch sizes whose whole epoch is also run and timed")
    full_epoch_max_s: float = Field(default=60.0, ge=0, le=600,
                                    description="skip that real epoch where the estimate is above this")
    threads: int | None = Field(default=None, ge=1, le=1024,
                                description="CPU threads for torch (default: torch's own choice, all cores)")
    data_dir: str | None = None

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, sizes: list[int]) -> list[int]:
        if any(b < 1 or b > 60_000 for b in sizes):
            raise ValueError("batch sizes must lie in [1, 60000]")
        if sizes != sorted(set(sizes)):
            raise ValueError("batch sizes must be increasing without repeats")
        if 1 not in sizes or 10 not in sizes:
            raise ValueError("batch sizes must include 1 and 10, the page's two settings")
        return sizes

    @model_validator(mode="after")
    def _full_epochs(self) -> Settings:
        extra = sorted(set(self.full_epoch_batches) - set(self.batch_sizes))
        if extra:
            raise ValueError(f"full_epoch_batches {extra} are not in batch_sizes")
        return self


# Timings measured in rounds (every batch size once a round), with the unit their estimates print with.
TIMINGS = {"epoch_ratio_1_over_10": "x", "update_growth_1_to_10": "x", "update_time_growth": "x",
           "update_growth_per_batch_growth": "x", "epoch_s_b1": " s", "epoch_s_b10": " s",
           "examples_per_s_max": " ex/s"}
METRICS = set(TIMINGS) | {"best_batch"}
DERIVED = ("examples_per_s.b",)  # batch / update_s of the same batch: compared through update_s

TABLE_COLUMNS = ["batch", "update_s", "iqr_s", "rel_spread", "runs", "rounds", "round_spread", "updates_timed",
                 "timed_s", "examples_per_s", "updates_per_epoch", "epoch_s", "epoch_s_full", "epoch_measured_s",
                 "extrapolated", "threads", "others_cpu", "faults_per_update", "method"]


def train_data(settings: Settings, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's training images and labels, on ``device``."""
    data = load_fashion_mnist(settings.data_dir, device=devices.place(device))
    return data.train_x, data.train_y


@dataclass
class Bench:
    """One batch size's model, optimiser and cycle of batches, ready to take timed updates."""

    batch: int
    per_epoch: int
    update: Callable[[], None]
    net: nn.Module
    opt: torch.optim.Optimizer
    loss: nn.Module
    g: torch.Generator


def prepare(batch: int, x: torch.Tensor, y: torch.Tensor, settings: Settings, device: str, seed: int) -> Bench:
    """A fresh LeNet for one batch size, its batches (a cycle of at most ~4k examples, gathered once, so no
    loader cost is timed), and its ``update``; warmed up by ``warmup_updates`` updates."""
    net = init_xavier(nets.build(settings.model)).to(devices.place(device))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=settings.lr)
    loss = nn.CrossEntropyLoss()
    g = torch.Generator(device="cpu").manual_seed(seed)
    per_epoch = math.ceil(settings.epoch_examples / batch)
    n_batches = max(1, min(per_epoch, math.ceil(4096 / batch), x.shape[0] // batch))
    order = torch.randperm(x.shape[0], generator=g)[:n_batches * batch].to(x.device)
    xs = x[order].reshape(n_batches, batch, *x.shape[1:])
    ys = y[order].reshape(n_batches, batch)
    state = {"i": 0}

    def update() -> None:
        i = state["i"]
        state["i"] = (i + 1) % n_batches
        opt.zero_grad()
        l = loss(net(xs[i]), ys[i])
        l.backward()
        opt.step()

    for _ in range(settings.warmup_updates):
        update()
    return Bench(batch, per_epoch, update, net, opt, loss, g)


def whole_epoch(bench: Bench, x: torch.Tensor, y: torch.Tensor, settings: Settings, device: str) -> float:
    """Seconds of one real epoch of ``epoch_examples`` examples, batches gathered by index as it goes."""
    perm = torch.randperm(x.shape[0], generator=bench.g)[:settings.epoch_examples].to(x.device)
    b = bench.batch

    def epoch() -> None:
        for j in range(bench.per_epoch):
            idx = perm[j * b:(j + 1) * b]
            bench.opt.zero_grad()
            bench.loss(bench.net(x[idx]), y[idx]).backward()
            bench.opt.step()

    return time_once(epoch, device)


def claims_of_round(update_s: dict[int, float], per_epoch: dict[int, int]) -> dict[str, float]:
    """The page's comparisons, from one round's seconds per update at each batch size."""
    b_min, b_max = min(update_s), max(update_s)
    growth = update_s[b_max] / update_s[b_min]
    return {"epoch_s_b1": update_s[1] * per_epoch[1], "epoch_s_b10": update_s[10] * per_epoch[10],
            "epoch_ratio_1_over_10": update_s[1] * per_epoch[1] / (update_s[10] * per_epoch[10]),
            "update_growth_1_to_10": update_s[10] / update_s[1], "update_time_growth": growth,
            "update_growth_per_batch_growth": growth / (b_max / b_min),
            "examples_per_s_max": max(b / s for b, s in update_s.items())}


def time_batches(x: torch.Tensor, y: torch.Tensor, settings: Settings, rec: Recorder) -> tuple[list[dict], Rounds]:
    """Every batch size once a round, rounds until the spec's timing claims are decided; the table's rows."""
    device, seed = rec.device, rec.seed
    benches = [prepare(b, x, y, settings, device, seed * 100_003 + b) for b in settings.batch_sizes]
    timings: dict[int, list[Timing]] = {b.batch: [] for b in benches}
    per_epoch = {b.batch: b.per_epoch for b in benches}

    def one_round(i: int) -> dict[str, float]:
        for bench in benches:
            timings[bench.batch].append(measure(bench.update, min_run_time=settings.round_time, device=device,
                                                warmup=1, label=f"batch {bench.batch}", min_runs=3,
                                                count_faults=True))
        update_s = {b: ts[-1].median for b, ts in timings.items()}
        return {f"update_s.b{b}": s for b, s in update_s.items()} | claims_of_round(update_s, per_epoch)

    rounds = recorded_rounds(rec, one_round)
    rows = []
    for bench in benches:
        t = pool(timings[bench.batch])
        medians = [r.median for r in timings[bench.batch]]
        b, per_epoch_b = bench.batch, bench.per_epoch
        epoch_s = t.median * per_epoch_b
        row = {"batch": b, "update_s": t.median, "iqr_s": t.iqr, "rel_spread": t.rel_spread, "runs": t.runs,
               "rounds": len(medians), "round_spread": max(medians) / min(medians) - 1,
               "updates_timed": t.calls, "timed_s": t.total_s, "examples_per_s": b / t.median,
               "updates_per_epoch": per_epoch_b, "epoch_s": epoch_s,
               "epoch_s_full": t.median * math.ceil(settings.full_examples / b),
               "epoch_measured_s": math.nan, "extrapolated": True, "threads": torch.get_num_threads(),
               "others_cpu": t.others_cpu, "faults_per_update": t.faults_per_call,
               "method": (f"median s/update x {per_epoch_b} updates ({t.calls} updates timed in {t.runs} blocks "
                          f"over {len(medians)} interleaved rounds)")}
        if b in settings.full_epoch_batches:
            if epoch_s > settings.full_epoch_max_s:
                row["method"] += f"; whole epoch not run: estimate {epoch_s:.3g} s > full_epoch_max_s"
            elif settings.epoch_examples > x.shape[0]:
                row["method"] += "; whole epoch not run: fewer training examples than an epoch"
            else:
                row["epoch_measured_s"] = whole_epoch(bench, x, y, settings, device)
                row["method"] += (f"; one whole epoch also run: {row['epoch_measured_s']:.3g} s measured "
                                  "(its batches gathered by index as it went)")
        rows.append(row)
    return rows, rounds


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    x, y = train_data(settings, rec.device)
    with cpu_threads(settings.threads):
        rows, rounds = time_batches(x, y, settings, rec)
    df = pd.DataFrame(rows).reindex(columns=TABLE_COLUMNS)
    rec.log_table("batch_speed", df)
    rec.log_series("examples_per_s", df["examples_per_s"].tolist(), steps=df["batch"].tolist())
    rec.log_series("update_s", df["update_s"].tolist(), steps=df["batch"].tolist())
    rec.log_series("epoch_s", df["epoch_s"].tolist(), steps=df["batch"].tolist())
    return {
        **rounds.measured(TIMINGS),
        "best_batch": int(df.loc[df["examples_per_s"].idxmax(), "batch"]),
        "batch_max": int(df["batch"].max()),
        **{f"update_s.b{int(r.batch)}": float(r.update_s) for r in df.itertuples()},
        **{f"examples_per_s.b{int(r.batch)}": float(r.examples_per_s) for r in df.itertuples()},
    }


# ---- report ------------------------------------------------------------------------


def speed_table(df: pd.DataFrame, epoch_examples: int, full_examples: int) -> pd.DataFrame:
    """One unit's logged table as the report shows it: numbers, with their units in the column names."""
    nan = pd.Series(math.nan, index=df.index)
    measured = df["epoch_measured_s"]
    return pd.DataFrame({
        "batch": df["batch"].astype(int),
        "s / update": df["update_s"],
        "IQR/median": df["rel_spread"],
        "rounds apart (fraction)": df.get("round_spread", nan),
        "others (share of CPU)": df.get("others_cpu", nan),
        "page faults / update": df.get("faults_per_update", nan),
        "updates timed": df["updates_timed"].astype(int),
        "examples/s": df["examples_per_s"],
        f"updates / epoch of {epoch_examples}": df["updates_per_epoch"].astype(int),
        f"s / epoch of {epoch_examples} (extrapolated)": df["epoch_s"],
        f"s / epoch of {full_examples} (extrapolated)": df["epoch_s_full"],
        "s / epoch (one real epoch)": measured,
        "extrapolated / real": df["epoch_s"] / measured.where(measured > 0),
    })


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """Per device: the speed at every batch size, every seed's rows with a ``seed`` column."""
    settings = view.spec["settings"]
    return {f"speed-{device}": pd.concat(
        [speed_table(view.table("batch_speed", device, seed), settings["epoch_examples"],
                     settings["full_examples"]).assign(seed=int(seed)) for seed in seeds], ignore_index=True)
        for device, seeds in view.measured.items()}


def _shown(table: pd.DataFrame) -> str:
    from harness.reportkit import md_table, percent, seconds, sig

    epoch_cols = {c: seconds for c in table.columns if c.startswith("s / ")}
    return md_table(table,
                    fmt={"IQR/median": percent(1), "rounds apart (fraction)": percent(),
                         "others (share of CPU)": percent(), "page faults / update": sig(thousands=True),
                         "examples/s": sig(thousands=True), "extrapolated / real": sig(4),
                         **epoch_cols},
                    headers={"rounds apart (fraction)": "rounds apart", "others (share of CPU)": "others"})


def section(view: RunView) -> str:
    """Report: examples/s and seconds per update against the batch size, one line per device; the tables."""
    # report-only: matplotlib and MLflow (through reportkit) take seconds to import; `harness list` needs neither
    import matplotlib.pyplot as plt

    from harness.reportkit import of_seed, save_figure

    settings = view.spec["settings"]
    shown = tables(view)
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
            iv = {k: view.interval(m["rounds"][k]).text(TIMINGS[k]) for k in
                  ("epoch_ratio_1_over_10", "update_growth_1_to_10", "update_time_growth")}
            parts += [f"### {device} (seed {seed}): seconds per update and per epoch", "",
                      *([busy, ""] if busy else []),
                      f"Epoch at batch 1 / epoch at batch 10: **{iv['epoch_ratio_1_over_10']}** (page: 166 s / "
                      f"17 s = 9.8x). Time per update from batch 1 to 10: **{iv['update_growth_1_to_10']}** (page: "
                      f"17 s x 10 / 166 s = 1.02x); from batch {int(df['batch'].min())} to "
                      f"{int(df['batch'].max())}: **{iv['update_time_growth']}** for x"
                      f"{int(df['batch'].max() / df['batch'].min())} the examples. Most examples/s at batch "
                      f"{m['best_batch']} ({df['examples_per_s'].max():,.0f}/s, pooled rounds).", "",
                      _shown(of_seed(shown[f"speed-{device}"], seed)), ""]
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
    note = (f"Seconds per epoch are **extrapolated**: the median seconds of one update times the number of "
            f"updates in an epoch, ceil({settings['epoch_examples']:,} / batch) for the page's epoch of "
            f"{settings['epoch_examples']:,} examples and ceil({settings['full_examples']:,} / batch) for the whole "
            "training set. Each batch size had its own fresh LeNet (`" + settings["model"] + "`), "
            f"{settings['warmup_updates']} warm-up updates, then at least {settings['round_time']} s of timed "
            "updates a round, in rounds interleaved over the batch sizes (the table pools the blocks of every round; "
            "`rounds apart` is how far the slowest round's median lay above the fastest's; the ratios above are "
            "taken within each round and their interval is over rounds) on real Fashion-MNIST "
            "batches held in device memory (no DataLoader, no evaluation: the page's times include both, so its "
            "absolute seconds are not comparable). `others` is the share of all CPU time other processes took "
            "meanwhile. `page faults / update` counts, over one more block of updates, the memory the process "
            "touched afresh: where the allocator hands large buffers back to the system after every update "
            "and faults them in again, it runs into thousands, and the update's time is as much the allocator's "
            "as the arithmetic's.")
    return "\n".join([image, "", note, "", *parts])
