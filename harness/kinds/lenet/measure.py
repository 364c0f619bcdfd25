"""C1-C3 and the other trained networks: a CNN on Fashion-MNIST or MNIST, trained by the harness loop, the
tutorial's loop, the book's own package (``d2l``'s ``train_ch6``) or two of them, the loops interleaved an epoch each
a round.

Unprefixed metrics are the first loop's; ``<loop>.<metric>`` each loop's own. ``docs/internals.md`` ("The lenet
kind") says what a spec chooses and what a run records.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import AfterValidator, Field, model_validator

from harness.book import nets
from harness.book.data import load
from harness.book.models import foldable, init_xavier
from harness.book.peer import D2lLoop
from harness.book.train import HarnessLoop, TutorialLoop, end_epoch, progress_bar
from harness.judging.rounds import recorded_rounds
from harness.kinds.base import Metric, timings_of
from harness.machine import device as devices
from harness.machine.timing import matmul_peak, profile_ops, training_flops
from harness.schema import Strict, distinct

if TYPE_CHECKING:
    from harness.store.tracking import Recorder

LOOPS = ("harness", "tutorial", "d2l")  # this harness's loop, the pages' loop, the book's package's train_ch6
GAPS = ("loss", "train_acc", "test_acc")  # with two loops: harness minus the other, per seed (``test_acc_gap``)


class Settings(Strict):
    model: nets.ModelRef = Field(description="a named network (harness.book.nets.NAMED) or a network definition")
    dataset: Literal["fashion-mnist", "mnist"] = "fashion-mnist"
    resize: int | None = Field(None, ge=8, le=512, description="images resized to resize x resize, a batch at a time")
    train_examples: int | None = Field(None, ge=1, le=60_000, description="train on the first N examples only")
    test_examples: int | None = Field(None, ge=1, le=10_000, description="test on the first N examples only")
    init: Literal["default", "xavier"] = Field("default", description="xavier: train_ch6's xavier_uniform_ init")
    optimizer: Literal["adam", "sgd"]
    lr: float = Field(gt=0, le=10)
    batch_size: int = Field(256, ge=1, le=60_000)
    epochs: int = Field(ge=1, le=200)
    loops: Annotated[list[Literal["harness", "tutorial", "d2l"]], AfterValidator(distinct)] = Field(
        default=["harness"], min_length=1, max_length=2, description="harness, tutorial (the pages' loop) or d2l "
        "(the d2l package's own load_data_fashion_mnist and train_ch6); two of them run interleaved")
    tutorial_style: Literal["ch5", "ch6"] = Field("ch5", description="train_ch5 (5.5) or train_ch6 (6.6)")
    tutorial_workers: int = Field(4, ge=0, le=32, description="DataLoader workers; d2l uses 4 on Linux")
    same_order: bool = Field(False, description="with both loops: the harness loop replays the tutorial loop's "
                             "data order, epoch for epoch, so the two compute the same thing")
    eval_first_batches: int = Field(0, ge=0, le=1000, description="evaluate the test set after each of these")
    chance_batches: int = Field(15, ge=1, le=1000, description="the first batches whose test acc stays at chance")
    channels_last: bool = True
    fused_optimizer: bool = True
    pool_first: bool = Field(True, description="harness loop: max-pool before the sigmoid (same outputs, less work)")
    fold: int | None = Field(None, ge=1, le=64, description="harness loop: images folded into the channels of "
                             "grouped convolutions; default 4 on the CPU, 1 (off) on CUDA and for networks with "
                             "batch norm")
    compile: bool = False
    ceiling: bool = Field(False, description="count the training FLOP and measure the matmul ceiling: how close "
                          "the harness loop comes to the machine's limit")
    profile: bool = Field(False, description="after the rounds, one more training epoch of the harness loop under "
                          "torch.profiler: where its time goes, operator by operator (the table 'profile')")
    data_dir: str | None = None
    download: bool = False
    progress: bool = True

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One example's (C, H, W) as the network sees it."""
        return (1, self.resize or 28, self.resize or 28)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        size = self.resize or 28
        try:
            nets.trace(self.model, (1, size, size))
        except nets.NetError as err:
            raise ValueError(f"model.{err} (on {size}x{size} images)") from None
        for book in {"tutorial", "d2l"} & set(self.loops):
            if self.dataset != "fashion-mnist" or self.resize or self.train_examples or self.test_examples:
                raise ValueError(f"the {book} loop reads the whole Fashion-MNIST at 28x28: drop dataset, resize, "
                                 f"train_examples and test_examples, or the {book} loop")
        if "d2l" in self.loops and (self.optimizer, self.init) != ("sgd", "xavier"):
            raise ValueError("the d2l loop is train_ch6, which initialises with xavier_uniform_ and trains with SGD: "
                             "set init: xavier and optimizer: sgd")
        if "harness" not in self.loops and len(self.loops) > 1:
            raise ValueError("two loops compare the harness loop with another: put harness in loops")
        if self.fold and self.fold > 1 and not foldable(nets.build(self.model, (1, size, size), device="meta")):
            raise ValueError("fold needs plain convolutions, activations, pooling and nn.BatchNorm2d before the "
                             "flatten")
        if self.same_order and set(self.loops) != {"harness", "tutorial"}:
            raise ValueError("same_order needs both loops: loops: [harness, tutorial]")
        if (self.eval_first_batches or self.profile) and "harness" not in self.loops:
            raise ValueError("eval_first_batches and profile need the harness loop in loops")
        if self.eval_first_batches and self.chance_batches > self.eval_first_batches:
            raise ValueError(f"chance_batches ({self.chance_batches}) must not exceed eval_first_batches "
                             f"({self.eval_first_batches})")
        if self.eval_first_batches > -(-(self.train_examples or 60_000) // self.batch_size):
            raise ValueError("eval_first_batches exceeds the batches of one epoch")
        return self


def _each_loop(*metrics: Metric) -> tuple[Metric, ...]:
    """Each metric under its plain name (the first loop's) and as each loop's own (``tutorial.test_acc``)."""
    return tuple(m for metric in metrics for m in (metric, *(
        replace(metric, name=f"{loop}.{metric.name}", meaning=f"{metric.meaning} ({loop} loop)", formerly=())
        for loop in LOOPS)))


def _first_batches(key: str, unit: str, meaning: str) -> tuple[Metric, ...]:
    """A series of the harness loop's first batches: plain where it is the first loop listed, prefixed where not."""
    return tuple(Metric(f"{prefix}first_batches.{key}", unit, "none", f"{meaning}, after each of the first batches "
                        "of epoch 1 (step = batch)") for prefix in ("", "harness."))


METRICS: tuple[Metric, ...] = (
    *_each_loop(
        Metric("loss", "", "lower", "mean training loss of an epoch (step = epoch); the final epoch's"),
        Metric("train_acc", "fraction", "higher", "training accuracy of an epoch (step = epoch); the final epoch's"),
        Metric("test_acc", "fraction", "higher", "test accuracy after an epoch (step = epoch); the final epoch's"),
        Metric("epoch_s", "s", "lower", "wall seconds of an epoch, training pass and test evaluation "
               "(step = epoch); their mean over the epochs", formerly=("seconds_per_epoch", "epoch_seconds")),
        Metric("examples_per_s", "ex/s", "higher", "training examples / seconds of a training pass, data loading "
               "included, test evaluation excluded (step = epoch); the median round", timed=True,
               formerly=("examples_per_sec",)),
        Metric("loss_per_epoch", "", "lower", "the mean training loss of every epoch"),
        Metric("train_acc_per_epoch", "fraction", "higher", "the training accuracy of every epoch"),
        Metric("test_acc_per_epoch", "fraction", "higher", "the test accuracy after every epoch"),
    ),
    *_first_batches("loss", "", "running mean training loss"),
    *_first_batches("train_acc", "fraction", "running training accuracy"),
    *_first_batches("test_acc", "fraction", "test accuracy"),
    Metric("early_test_acc_min", "fraction", "none", "lowest test accuracy after the first chance_batches batches"),
    Metric("early_test_acc_max", "fraction", "none", "highest test accuracy after the first chance_batches batches"),
    Metric("early_loss_first", "", "none", "running mean training loss after the first batch"),
    Metric("early_loss_last", "", "none", "running mean training loss after batch chance_batches"),
    Metric("early_loss_drop", "", "none", "early_loss_first minus early_loss_last"),
    *(Metric(f"{m}_gap", unit, "none", f"the harness loop's final {m} minus the other loop's")
      for m, unit in zip(GAPS, ("", "fraction", "fraction"))),
    *(Metric(f"{m}_gap_max", unit, "lower", f"the largest |harness - other loop| {m} over the epochs")
      for m, unit in zip(GAPS, ("", "fraction", "fraction"))),
    Metric("speedup", "x", "higher", "the harness loop's examples/s over the other loop's (the tutorial's or d2l's), "
           "within each round", timed=True),
    Metric("harness.gflops", "GFLOP/s", "higher", "training FLOP per example x the harness loop's examples/s",
           timed=True),
    Metric("harness.fraction_of_peak", "fraction", "higher", "harness.gflops over the matmul ceiling", timed=True),
    Metric("harness.training_flop_per_example", "FLOP", "none", "FLOP of one example's forward and backward pass "
           "(matrix products and convolutions, counted by torch.utils.flop_counter)"),
    Metric("harness.matmul_peak_gflops", "GFLOP/s", "higher", "the matmul ceiling: GFLOP/s of a square matrix "
           "product timed in the same run"),
)


def series_key(loop: str, name: str, loops: list[str]) -> str:
    """A unit's metric name: plain for the first loop (``test_acc``), prefixed for another (``tutorial.test_acc``)."""
    return name if loop == loops[0] else f"{loop}.{name}"


def _model(settings: Settings, seed: int) -> torch.nn.Module:
    """The spec's network, initialised from the run's seed (so every loop starts from the same weights)."""
    torch.manual_seed(seed)
    net = nets.build(settings.model, settings.input_shape)
    return init_xavier(net) if settings.init == "xavier" else net


def prepared(settings: Settings, device: str):
    """The spec's dataset on ``device`` at 28x28: the first N examples where asked (``resizer`` resizes batches)."""
    data = load(settings.dataset, settings.data_dir, device=devices.place(device), download=settings.download)
    if not (settings.train_examples or settings.test_examples):
        return data
    return replace(data, train_x=data.train_x[:settings.train_examples], train_y=data.train_y[:settings.train_examples],
                   test_x=data.test_x[:settings.test_examples], test_y=data.test_y[:settings.test_examples])


def resizer(settings: Settings):
    """The book's ``resize=`` as a batch transform (bilinear), or None: resized a batch at a time, as the book's
    loader does an image at a time, so that a 224x224 training set is never held whole."""
    if not settings.resize:
        return None
    size = (settings.resize, settings.resize)
    return partial(F.interpolate, size=size, mode="bilinear", align_corners=False)


def _values(result) -> dict[str, Any]:
    """A loop's final loss and accuracies, its speed over its epochs, and its per-epoch curves."""
    final, epochs = result.final, result.epochs
    return {"loss": final.loss, "train_acc": final.train_acc, "test_acc": final.test_acc,
            "examples_per_s": result.examples_per_s, "epoch_s": sum(e.epoch_s for e in epochs) / len(epochs),
            "test_acc_per_epoch": [e.test_acc for e in epochs], "train_acc_per_epoch": [e.train_acc for e in epochs],
            "loss_per_epoch": [e.loss for e in epochs]}


def _epoch_row(loop: str, e) -> dict[str, Any]:
    """One row of the ``epochs`` table."""
    return {"loop": loop, "epoch": e.epoch, "loss": e.loss, "train_acc": e.train_acc, "test_acc": e.test_acc,
            "epoch_s": e.epoch_s, "train_s": e.train_s, "examples_per_s": e.examples_per_s}


def make_loops(settings: Settings, data, seed: int, device: str, max_epochs: int = 1000) -> dict[str, Any]:
    """Each loop the spec names, set up from the same initial weights, in the order an epoch runs them: with
    ``same_order`` the tutorial's first, so that the harness loop can replay the order its epoch went through.
    The d2l loop's ``train_ch6`` initialises the network itself and is asked for ``max_epochs`` (``close_loops``
    ends it where it stands)."""
    common = dict(optimizer=settings.optimizer, lr=settings.lr, batch_size=settings.batch_size)
    loops: dict[str, Any] = {}
    for name in sorted(settings.loops, key=lambda n: settings.same_order and n == "harness"):
        net = _model(settings, seed)
        if name == "harness":
            order = loops["tutorial"].last_order if settings.same_order else None
            loops[name] = HarnessLoop(net, data, seed=seed, device=device,
                                      eval_first_batches=settings.eval_first_batches,
                                      channels_last=settings.channels_last, fused=settings.fused_optimizer,
                                      pool_first=settings.pool_first, fold=settings.fold, compile=settings.compile,
                                      order=order, transform=resizer(settings), **common)
        elif name == "tutorial":
            loops[name] = TutorialLoop(net, str(data.root), device=device, num_workers=settings.tutorial_workers,
                                       style=settings.tutorial_style, record_order=settings.same_order, **common)
        else:
            loops[name] = D2lLoop(net, str(data.root), lr=settings.lr, batch_size=settings.batch_size, seed=seed,
                                  device=device, max_epochs=max_epochs)
    return loops


def close_loops(loops: dict[str, Any]) -> None:
    """End the loops that hold something open (the d2l loop's paused train_ch6)."""
    for loop in loops.values():
        if hasattr(loop, "close"):
            loop.close()


def other_loop(loops) -> str | None:
    """The loop the harness loop is compared with, where there are two."""
    return next((name for name in loops if name != "harness"), None) if "harness" in loops else None


def ceiling(settings: Settings, data, device: str) -> dict[str, float]:
    """Training FLOP per example (forward and backward, counted by torch.utils.flop_counter) and the matmul ceiling."""
    x, y = data.train_x[:settings.batch_size], data.train_y[:settings.batch_size]
    x = resizer(settings)(x) if settings.resize else x
    flop = training_flops(nets.build(settings.model, settings.input_shape).to(devices.place(device)), x, y) / len(y)
    return {"training_flop_per_example": flop, "matmul_peak_gflops": matmul_peak(device)["gflops"]}


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    """Every loop an epoch a round, interleaved; the first ``epochs`` rounds train and evaluate, the rest time."""
    data = prepared(settings, rec.device)
    rec.log_dataset(**data.described())
    plan = rec.plan
    limit = ceiling(settings, data, rec.device) if settings.ceiling and "harness" in settings.loops else {}
    first = max(settings.epochs, plan.policy.rounds) if plan.judged else settings.epochs
    loops = make_loops(settings, data, rec.seed, rec.device, max(first, plan.policy.max_rounds))
    other = other_loop(loops)
    per_round = sum(loop.num_batches for loop in loops.values())
    what = f"{nets.describe(settings.model)}: " + " and ".join(f"{n} loop" for n in loops)
    bar = progress_bar(settings.progress, what, first * per_round)

    def on_epoch(loop: str, stats) -> None:
        for name, value in (("loss", stats.loss), ("train_acc", stats.train_acc), ("test_acc", stats.test_acc),
                            ("epoch_s", stats.epoch_s), ("examples_per_s", stats.examples_per_s)):
            rec.log_metric(series_key(loop, name, settings.loops), value, step=stats.epoch)

    def one_round(i: int) -> dict[str, float]:
        training = i < settings.epochs
        if bar is not None and i >= first:
            bar.update(0, total=(i + 1) * per_round)
        values = {}
        for name, loop in loops.items():
            stats = loop.epoch(evaluate_test=training, bar=bar)
            if training:
                end_epoch(loop.result, stats, bar, partial(on_epoch, name))
            values[f"{name}.examples_per_s"] = stats.examples_per_s
            if limit and name == "harness":
                values["harness.gflops"] = limit["training_flop_per_example"] * stats.examples_per_s / 1e9
                values["harness.fraction_of_peak"] = values["harness.gflops"] / limit["matmul_peak_gflops"]
        values["examples_per_s"] = values[f"{settings.loops[0]}.examples_per_s"]
        if other:
            values["speedup"] = values["harness.examples_per_s"] / values[f"{other}.examples_per_s"]
        return values

    try:
        rounds = recorded_rounds(rec, one_round, first)
        if settings.profile:
            epoch = partial(loops["harness"].epoch, evaluate_test=False)
            rec.log_table("profile", pd.DataFrame(profile_ops(epoch, device=rec.device)))
    finally:
        close_loops(loops)
        if bar is not None:
            bar.stop()
    measured: dict[str, Any] = {f"harness.{k}": v for k, v in limit.items()}
    epoch_rows = []
    for name, loop in loops.items():
        result = loop.result
        values = _values(result)
        measured.update({f"{name}.{k}": v for k, v in values.items()})
        if name == settings.loops[0]:
            measured.update(values)
        epoch_rows += [_epoch_row(name, e) for e in result.epochs]
        if result.first_batches:
            fb = result.first_batches
            steps = [b.batch for b in fb]
            for key in ("loss", "train_acc", "test_acc"):
                rec.log_series(series_key(name, f"first_batches.{key}", settings.loops), [getattr(b, key) for b in fb],
                               steps)
            rec.log_table("first_batches", pd.DataFrame([vars(b) for b in fb]))
            early = fb[:settings.chance_batches]
            measured.update({
                "early_test_acc_min": min(b.test_acc for b in early),
                "early_test_acc_max": max(b.test_acc for b in early),
                "early_loss_first": early[0].loss,
                "early_loss_last": early[-1].loss,
                "early_loss_drop": early[0].loss - early[-1].loss,
            })
    rec.log_table("epochs", pd.DataFrame(epoch_rows))
    if other:
        measured.update({f"{m}_gap": measured[f"harness.{m}"] - measured[f"{other}.{m}"] for m in GAPS})
        pairs = list(zip(loops["harness"].result.epochs, loops[other].result.epochs))
        measured.update({f"{m}_gap_max": max(abs(getattr(h, m) - getattr(t, m)) for h, t in pairs) for m in GAPS})
    measured.update(rounds.measured([m for m in timings_of(METRICS) if m in rounds.values[0]]))
    return measured
