"""The training kind's settings and metric table: what a spec may ask of a network trained on Fashion-MNIST, and
what a run measures.

``recipe`` names the book's recipe a spec starts from: ``train_ch5`` (5.5-5.12: LeNet, the port's later networks;
batch 256, PyTorch's own init) or ``train_ch6`` (d2l's 7.1-7.7: xavier init, SGD, batch 128, 10 epochs, the
matmul ceiling measured, no fold). A field the spec sets wins over its recipe. Without torch: validating a spec
reads this, not the training code (``measure``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from harness.book import nets
from harness.kinds.base import Metric
from harness.schema import Strict, distinct

LOOPS = ("harness", "tutorial", "d2l")  # this harness's loop, the pages' loop, the book's package's train_ch6
GAPS = ("loss", "train_acc", "test_acc")  # with two loops: harness minus the other, per seed (``test_acc_gap``)


RECIPES: dict[str, dict[str, Any]] = {
    "train_ch5": {},
    "train_ch6": {"init": "xavier", "optimizer": "sgd", "batch_size": 128, "epochs": 10, "ceiling": True, "fold": 1},
}


class Settings(Strict):
    recipe: Literal["train_ch5", "train_ch6"] = Field("train_ch5", description="the book's recipe the other "
                                                      "fields default to (the module's docstring)")
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

    @model_validator(mode="before")
    @classmethod
    def _recipe(cls, data: Any) -> Any:
        """The recipe's defaults under the fields the spec sets."""
        if isinstance(data, dict) and data.get("recipe") in RECIPES:
            return RECIPES[data["recipe"]] | data
        return data

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
        if self.fold and self.fold > 1 and not nets.foldable(self.model):
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
        replace(metric, name=f"{loop}.{metric.name}", meaning=f"{metric.meaning} ({loop} loop)")
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
               "(step = epoch); their mean over the epochs"),
        Metric("examples_per_s", "ex/s", "higher", "training examples / seconds of a training pass, data loading "
               "included, test evaluation excluded (step = epoch); the median round", timed=True),
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
    Metric("bn_gamma_mean", "", "none", "the first batch norm layer's learned scale (gamma), averaged over its "
           "channels (a channel's index means nothing from one seed to the next; their mean does)"),
    Metric("bn_beta_mean", "", "none", "the first batch norm layer's learned shift (beta), averaged over its channels"),
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


def other_loop(loops) -> str | None:
    """The loop the harness loop is compared with, where there are two."""
    return next((name for name in loops if name != "harness"), None) if "harness" in loops else None
