"""D1: how the batch size decides the speed of an epoch: LeNet on Fashion-MNIST, seconds per update.

Every batch size gets a fresh LeNet taking SGD updates on real training batches held on the device; the batch
sizes are timed in interleaved rounds, the page's comparisons taken within each round, and an epoch is
extrapolated from the seconds per update (docs/internals.md, "Batch size and speed").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from torch import nn

from harness.book import nets
from harness.book.data import load_fashion_mnist
from harness.book.models import init_xavier
from harness.judging.rounds import Rounds, recorded_rounds
from harness.kinds.base import timings_of
from harness.kinds.batch_speed.settings import METRICS, Settings
from harness.machine import device as devices
from harness.machine.timing import Timing, cpu_threads, measure, pool, time_once

if TYPE_CHECKING:
    from harness.store.tracking import Recorder


CYCLE_EXAMPLES = 4096  # a batch size's batches: a cycle of at most this many examples, gathered once

TABLE_COLUMNS = ["batch", "update_s", "iqr_s", "rel_spread", "runs", "rounds", "round_spread", "updates_timed",
                 "timed_s", "examples_per_s", "updates_per_epoch", "epoch_s", "epoch_s_full", "epoch_measured_s",
                 "extrapolated", "threads", "others_cpu", "faults_per_update", "method"]


def train_data(settings: Settings, device: str, rec: Recorder | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's training images and labels, on ``device``; recorded as the input of ``rec``'s run."""
    data = load_fashion_mnist(settings.data_dir, device=devices.place(device))
    if rec is not None:
        rec.log_dataset(**data.described())
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
    """A fresh LeNet for one batch size, its batches (a cycle of at most ``CYCLE_EXAMPLES``, gathered once, so no
    loader cost is timed), and its ``update``; warmed up by ``warmup_updates`` updates."""
    net = init_xavier(nets.build(settings.model)).to(devices.place(device))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=settings.lr)
    loss = nn.CrossEntropyLoss()
    g = torch.Generator(device="cpu").manual_seed(seed)
    per_epoch = math.ceil(settings.epoch_examples / batch)
    n_batches = max(1, min(per_epoch, math.ceil(CYCLE_EXAMPLES / batch), x.shape[0] // batch))
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
    """One (device, seed): every batch size timed in rounds; the table, the series against the batch, the metrics."""
    x, y = train_data(settings, rec.device, rec)
    with cpu_threads(settings.threads):
        rows, rounds = time_batches(x, y, settings, rec)
    df = pd.DataFrame(rows).reindex(columns=TABLE_COLUMNS)
    rec.log_table("batch_speed", df)
    rec.log_series("examples_per_s", df["examples_per_s"].tolist(), steps=df["batch"].tolist())
    rec.log_series("update_s", df["update_s"].tolist(), steps=df["batch"].tolist())
    rec.log_series("epoch_s", df["epoch_s"].tolist(), steps=df["batch"].tolist())
    return {
        **rounds.measured(timings_of(METRICS)),
        "best_batch": int(df.loc[df["examples_per_s"].idxmax(), "batch"]),
        "batch_max": int(df["batch"].max()),
        **{f"update_s.b{int(r.batch)}": float(r.update_s) for r in df.itertuples()},
        **{f"examples_per_s.b{int(r.batch)}": float(r.examples_per_s) for r in df.itertuples()},
    }
