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
    "train_ch6": {"init": "xavier", "optimisation": {"optimizer": "sgd", "batch_size": 128, "epochs": 10},
                  "measure": {"ceiling": True}, "harness_loop": {"fold": 1}},
}


class Data(Strict):
    """What the book's ``load_data_fashion_mnist(batch_size, resize)`` loads, and where from."""

    dataset: Literal["fashion-mnist", "mnist"] = "fashion-mnist"
    resize: int | None = Field(None, ge=8, le=512, description="images resized to resize x resize, a batch at a time")
    train_examples: int | None = Field(None, ge=1, le=60_000, description="train on the first N examples only")
    test_examples: int | None = Field(None, ge=1, le=10_000, description="test on the first N examples only")
    dir: str | None = Field(None, description="the folder of the four idx files (default: the search order)")
    download: bool = False


class Optimisation(Strict):
    """The tutorial's optimisation, as its ``train_ch5``/``train_ch6`` take it."""

    optimizer: Literal["adam", "sgd"]
    lr: float = Field(gt=0, le=10)
    batch_size: int = Field(256, ge=1, le=60_000)
    epochs: int = Field(ge=1, le=200)


class Tutorial(Strict):
    """The pages' own loop, where ``loops`` names it."""

    style: Literal["ch5", "ch6"] = Field("ch5", description="train_ch5 (5.5) or train_ch6 (6.6)")
    workers: int = Field(4, ge=0, le=32, description="DataLoader workers; d2l uses 4 on Linux")
    same_order: bool = Field(False, description="the harness loop replays the tutorial loop's data order, epoch for "
                             "epoch, so the two compute the same thing")


class HarnessLoop(Strict):
    """How the harness loop does the work (never what it computes): docs/internals.md, "The harness loop"."""

    channels_last: bool = True
    fused_optimizer: bool = True
    pool_first: bool = Field(True, description="max-pool before the sigmoid (same outputs, less work)")
    fold: int | None = Field(None, ge=1, le=64, description="images folded into the channels of grouped "
                             "convolutions; default 4 on the CPU, 1 (off) on CUDA and for networks with batch norm")
    compile: bool = False


class Measure(Strict):
    """What a run measures beyond each epoch's loss, accuracies and speed."""

    eval_first_batches: int = Field(0, ge=0, le=1000, description="evaluate the test set after each of these")
    chance_batches: int = Field(15, ge=1, le=1000, description="the first batches whose test acc stays at chance")
    ceiling: bool = Field(False, description="count the training FLOP and measure the matmul ceiling: how close "
                          "the harness loop comes to the machine's limit")
    profile: bool = Field(False, description="after the rounds, one more training epoch of the harness loop under "
                          "torch.profiler: where its time goes, operator by operator (the table 'profile')")


GROUPS = {"data": Data, "optimisation": Optimisation, "tutorial": Tutorial, "harness_loop": HarnessLoop,
          "measure": Measure}
RENAMED = {"data_dir": ("data", "dir"), "tutorial_style": ("tutorial", "style"),
           "tutorial_workers": ("tutorial", "workers")}
# each setting's name before the settings were grouped, and its place today
FLAT = {f: (g, f) for g, m in GROUPS.items() for f in m.model_fields if (g, f) not in RENAMED.values()} | RENAMED


def grouped(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as runs recorded before they were grouped (``lr``, ``tutorial_style``) in today's groups
    (``optimisation.lr``, ``tutorial.style``); grouped ones as they are. The one place that knows the old names."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key in FLAT:
            group, name = FLAT[key]
            out.setdefault(group, {})[name] = value
        elif key in GROUPS and isinstance(value, dict):
            out[key] = out.get(key, {}) | value
        else:
            out[key] = value
    return out


class Settings(Strict):
    """A trained network's spec: the network and its init, then a group each for the data, the optimisation, the
    tutorial's loop, the harness loop's ways and what else to measure."""

    recipe: Literal["train_ch5", "train_ch6"] = Field("train_ch5", description="the book's recipe the other "
                                                      "fields default to (the module's docstring)")
    model: nets.ModelRef = Field(description="a named network (harness.book.nets.NAMED) or a network definition")
    init: Literal["default", "xavier"] = Field("default", description="xavier: train_ch6's xavier_uniform_ init")
    data: Data = Data()
    optimisation: Optimisation
    loops: Annotated[list[Literal["harness", "tutorial", "d2l"]], AfterValidator(distinct)] = Field(
        default=["harness"], min_length=1, max_length=2, description="harness, tutorial (the pages' loop) or d2l "
        "(the d2l package's own load_data_fashion_mnist and train_ch6); two of them run interleaved")
    tutorial: Tutorial = Tutorial()
    harness_loop: HarnessLoop = HarnessLoop()
    measure: Measure = Measure()
    progress: bool = True

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One example's (C, H, W) as the network sees it."""
        size = self.data.resize or 28
        return (1, size, size)

    @model_validator(mode="before")
    @classmethod
    def _recipe(cls, data: Any) -> Any:
        """A flat setting is refused with its place today; the recipe's defaults go under the fields the spec sets."""
        if not isinstance(data, dict):
            return data
        flat = [k for k in data if k in FLAT]
        if flat:
            raise ValueError("settings are grouped: " + ", ".join(f"{k} is now {'.'.join(FLAT[k])}" for k in flat))
        defaults = RECIPES.get(data.get("recipe", "train_ch5"), {})
        merged = defaults | data
        for group in GROUPS:
            if isinstance(defaults.get(group), dict) and isinstance(data.get(group, {}), dict):
                merged[group] = defaults[group] | data.get(group, {})
        return merged

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        data, tutorial, measure = self.data, self.tutorial, self.measure
        size = data.resize or 28
        try:
            nets.trace(self.model, (1, size, size))
        except nets.NetError as err:
            raise ValueError(f"model.{err} (on {size}x{size} images)") from None
        for book in {"tutorial", "d2l"} & set(self.loops):
            if data.dataset != "fashion-mnist" or data.resize or data.train_examples or data.test_examples:
                raise ValueError(f"the {book} loop reads the whole Fashion-MNIST at 28x28: drop data's dataset, "
                                 f"resize, train_examples and test_examples, or the {book} loop")
        if "d2l" in self.loops and (self.optimisation.optimizer, self.init) != ("sgd", "xavier"):
            raise ValueError("the d2l loop is train_ch6, which initialises with xavier_uniform_ and trains with SGD: "
                             "set init: xavier and optimisation.optimizer: sgd")
        if "harness" not in self.loops and len(self.loops) > 1:
            raise ValueError("two loops compare the harness loop with another: put harness in loops")
        if self.harness_loop.fold and self.harness_loop.fold > 1 and not nets.foldable(self.model):
            raise ValueError("harness_loop.fold needs plain convolutions, activations, pooling and nn.BatchNorm2d "
                             "before the flatten")
        if tutorial.same_order and set(self.loops) != {"harness", "tutorial"}:
            raise ValueError("tutorial.same_order needs both loops: loops: [harness, tutorial]")
        if (measure.eval_first_batches or measure.profile) and "harness" not in self.loops:
            raise ValueError("measure.eval_first_batches and measure.profile need the harness loop in loops")
        if measure.eval_first_batches and measure.chance_batches > measure.eval_first_batches:
            raise ValueError(f"measure.chance_batches ({measure.chance_batches}) must not exceed "
                             f"measure.eval_first_batches ({measure.eval_first_batches})")
        if measure.eval_first_batches > -(-(data.train_examples or 60_000) // self.optimisation.batch_size):
            raise ValueError("measure.eval_first_batches exceeds the batches of one epoch")
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
