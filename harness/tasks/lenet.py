"""C1-C3 and the other trained networks: a CNN on Fashion-MNIST or MNIST, with the harness loop and/or the tutorial's.

A spec picks the network (a name or layers in ``harness.nets``' vocabulary), the dataset (optionally a subset,
optionally resized a batch at a time on the device, as the book's ``resize=`` does an image at a time), its
initialisation, the tutorial's optimiser, learning rate, batch size and epochs, and which loops run
(``loops: [harness, tutorial]`` runs both from the same initial weights, so one run compares their speed and
accuracy side by side).
The loops run interleaved, an epoch each a round (harness, tutorial, harness, tutorial, ...), so a slow
spell of the machine hits both: the first ``epochs`` rounds train and evaluate; where the spec judges a
timing, more rounds follow (training on, not evaluated) until the spec's timing policy is satisfied, and
the speed-up is taken within each round. Unprefixed metrics are those of the first loop listed;
``<loop>.<metric>`` names each loop's own. ``ceiling: true`` also counts the training FLOP per
example and measures the matmul ceiling, so the harness loop's GFLOP/s can be set against it.
``eval_first_batches`` evaluates the whole test set after each of the first batches of epoch 1, as
the notebook of C3 did after every batch, and only for those batches. With both loops, ``<m>_gap`` is the
harness loop's final ``<m>`` minus the tutorial's and ``<m>_gap_max`` the largest gap over the epochs;
``same_order: true`` has the harness loop replay the tutorial loop's data order, epoch for epoch, so the two
compute the same thing and the gaps measure float rounding alone.

Recorded in each (device, seed) unit's run: per-epoch metrics ``loss``, ``train_acc``, ``test_acc``,
``epoch_seconds`` and ``examples_per_sec`` (step = epoch; the first loop's by these plain names, another
loop's prefixed, ``tutorial.test_acc``), the first-batch series ``first_batches.*`` (step = batch), every
timing round (``round.*``), and the tables ``epochs``, ``rounds`` and ``first_batches``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from harness import device as devices
from harness import nets
from harness.data import load
from harness.models import foldable, init_xavier
from harness.rounds import recorded_rounds
from harness.schema import Strict
from harness.stats import METHOD
from harness.timing import matmul_peak, training_flops
from harness.train import CPU_FOLD, HarnessLoop, TutorialLoop, end_epoch, progress_bar, summary

if TYPE_CHECKING:
    from harness.reportkit import RunView
    from harness.tracking import Recorder

KIND = "lenet"
LOOPS = ("harness", "tutorial")
PER_EPOCH = ("loss", "train_acc", "test_acc", "epoch_seconds", "examples_per_sec")
SUMMARY = ("loss", "train_acc", "test_acc", "examples_per_sec", "seconds_per_epoch", "test_acc_per_epoch",
           "train_acc_per_epoch", "loss_per_epoch")
EARLY = ("early_test_acc_min", "early_test_acc_max", "early_loss_first", "early_loss_last", "early_loss_drop")


class Settings(Strict):
    model: nets.ModelRef = Field(description="a named network (harness.nets.NAMED) or a network definition")
    dataset: Literal["fashion-mnist", "mnist"] = "fashion-mnist"
    resize: int | None = Field(None, ge=8, le=512, description="images resized to resize x resize, a batch at a time")
    train_examples: int | None = Field(None, ge=1, le=60_000, description="train on the first N examples only")
    test_examples: int | None = Field(None, ge=1, le=10_000, description="test on the first N examples only")
    init: Literal["default", "xavier"] = Field("default", description="xavier: train_ch6's xavier_uniform_ init")
    optimizer: Literal["adam", "sgd"]
    lr: float = Field(gt=0, le=10)
    batch_size: int = Field(256, ge=1, le=60_000)
    epochs: int = Field(ge=1, le=200)
    loops: list[Literal["harness", "tutorial"]] = Field(default=["harness"], min_length=1, max_length=2)
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
                             "grouped convolutions; default 4 on the CPU, 1 (off) on CUDA")
    compile: bool = False
    ceiling: bool = Field(False, description="count the training FLOP and measure the matmul ceiling: how close "
                          "the harness loop comes to the machine's limit")
    data_dir: str | None = None
    download: bool = False
    progress: bool = True

    @field_validator("loops")
    @classmethod
    def _distinct(cls, loops: list[str]) -> list[str]:
        if len(set(loops)) != len(loops):
            raise ValueError("loops must not repeat")
        return loops

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
        if "tutorial" in self.loops and (self.dataset != "fashion-mnist" or self.resize or self.train_examples
                                         or self.test_examples):
            raise ValueError("the tutorial loop reads the whole Fashion-MNIST at 28x28: drop dataset, resize, "
                             "train_examples and test_examples, or the tutorial loop")
        if self.fold and self.fold > 1 and not foldable(nets.build(self.model, (1, size, size), device="meta")):
            raise ValueError("fold needs plain convolutions, activations and pooling before the flatten")
        if self.same_order and set(self.loops) != set(LOOPS):
            raise ValueError("same_order needs both loops: loops: [harness, tutorial]")
        if self.eval_first_batches and "harness" not in self.loops:
            raise ValueError("eval_first_batches needs the harness loop in loops")
        if self.eval_first_batches and self.chance_batches > self.eval_first_batches:
            raise ValueError(f"chance_batches ({self.chance_batches}) must not exceed eval_first_batches "
                             f"({self.eval_first_batches})")
        if self.eval_first_batches > -(-(self.train_examples or 60_000) // self.batch_size):
            raise ValueError("eval_first_batches exceeds the batches of one epoch")
        return self


# Timings measured in rounds (each loop an epoch a round, interleaved), with their units.
TIMINGS = {"speedup": "x", "examples_per_sec": " ex/s", "harness.examples_per_sec": " ex/s",
           "tutorial.examples_per_sec": " ex/s", "harness.gflops": " GFLOP/s", "harness.fraction_of_peak": "%"}
GAPS = ("loss", "train_acc", "test_acc")  # with both loops: harness minus tutorial, per seed (``test_acc_gap``)
METRICS = (set(SUMMARY) | {f"{loop}.{m}" for loop in LOOPS for m in SUMMARY} | set(EARLY) | set(TIMINGS)
           | {"harness.training_flop_per_example", "harness.matmul_peak_gflops"} | {f"{m}_gap" for m in GAPS}
           | {f"{m}_gap_max" for m in GAPS})


CURVES = tuple(f"{p}{m}" for p in ("", *(f"{loop}." for loop in LOOPS)) for m in ("loss", "train_acc", "test_acc"))
DIRECTIONS = {"speedup": 1}  # harness loop over tutorial loop, examples/s: higher is faster


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
    loader does an image at a time, so that a 224x224 training set (12 GB in float32) is never held whole."""
    if not settings.resize:
        return None
    size = (settings.resize, settings.resize)
    return partial(F.interpolate, size=size, mode="bilinear", align_corners=False)


def _values(result) -> dict[str, Any]:
    out = summary(result)
    out["test_acc_per_epoch"] = [e.test_acc for e in result.epochs]
    out["train_acc_per_epoch"] = [e.train_acc for e in result.epochs]
    out["loss_per_epoch"] = [e.loss for e in result.epochs]
    return {k: out[k] for k in SUMMARY}


def _fold_words(fold: int | None) -> str:
    """The speed table's words for the batch fold (``None``: the default, folded on the CPU only)."""
    if fold is None:
        return f", batch folded {CPU_FOLD} images deep into grouped convolutions on the CPU"
    return f", batch folded {fold} images deep into grouped convolutions" if fold > 1 else ""


def make_loops(settings: Settings, data, seed: int, device: str) -> dict[str, Any]:
    """Each loop the spec names, set up from the same initial weights, in the order an epoch runs them: with
    ``same_order`` the tutorial's first, so that the harness loop can replay the order its epoch went through."""
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
        else:
            loops[name] = TutorialLoop(net, str(data.root), device=device, num_workers=settings.tutorial_workers,
                                       style=settings.tutorial_style, record_order=settings.same_order, **common)
    return loops


def ceiling(settings: Settings, data, device: str) -> dict[str, float]:
    """Training FLOP per example (forward and backward, counted by torch.utils.flop_counter) and the matmul ceiling."""
    x, y = data.train_x[:settings.batch_size], data.train_y[:settings.batch_size]
    x = resizer(settings)(x) if settings.resize else x
    flop = training_flops(nets.build(settings.model, settings.input_shape).to(devices.place(device)), x, y) / len(y)
    return {"training_flop_per_example": flop, "matmul_peak_gflops": matmul_peak(device)["gflops"]}


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    """Every loop an epoch a round, interleaved; the first ``epochs`` rounds train and evaluate, the rest time."""
    data = prepared(settings, rec.device)
    plan = rec.plan
    limit = ceiling(settings, data, rec.device) if settings.ceiling and "harness" in settings.loops else {}
    loops = make_loops(settings, data, rec.seed, rec.device)
    first = max(settings.epochs, plan.policy.rounds) if plan.judged else settings.epochs
    per_round = sum(loop.num_batches for loop in loops.values())
    what = f"{nets.describe(settings.model)}: " + " and ".join(f"{n} loop" for n in loops)
    bar = progress_bar(settings.progress, what, first * per_round)

    def on_epoch(loop: str, stats) -> None:
        for name, value in (("loss", stats.loss), ("train_acc", stats.train_acc), ("test_acc", stats.test_acc),
                            ("epoch_seconds", stats.seconds), ("examples_per_sec", stats.examples_per_sec)):
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
            values[f"{name}.examples_per_sec"] = stats.examples_per_sec
            if limit and name == "harness":
                values["harness.gflops"] = limit["training_flop_per_example"] * stats.examples_per_sec / 1e9
                values["harness.fraction_of_peak"] = values["harness.gflops"] / limit["matmul_peak_gflops"]
        values["examples_per_sec"] = values[f"{settings.loops[0]}.examples_per_sec"]
        if set(LOOPS) <= set(loops):
            values["speedup"] = values["harness.examples_per_sec"] / values["tutorial.examples_per_sec"]
        return values

    try:
        rounds = recorded_rounds(rec, one_round, first)
    finally:
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
        epoch_rows += [{"loop": name, **e.as_dict()} for e in result.epochs]
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
    if set(LOOPS) <= set(loops):
        measured.update({f"{m}_gap": measured[f"harness.{m}"] - measured[f"tutorial.{m}"] for m in GAPS})
        pairs = list(zip(loops["harness"].result.epochs, loops["tutorial"].result.epochs))
        measured.update({f"{m}_gap_max": max(abs(getattr(h, m) - getattr(t, m)) for h, t in pairs) for m in GAPS})
    measured.update(rounds.measured([m for m in TIMINGS if m in rounds.values[0]]))
    return measured


# ---- report --------------------------------------------------------------------------------------------------------


def _printed_curves(view) -> dict[str, list[float]]:
    """The tutorial's printed per-epoch curves, from the spec's own references (metric -> values)."""
    out = {}
    for ref in view.spec["references"]:
        if ref["metric"].endswith(("test_acc_per_epoch", "train_acc_per_epoch")) and ref.get("near") is not None:
            out.setdefault(ref["metric"].split(".")[-1], ref["near"])
    return out


def _converged_band(view) -> tuple[float, float] | None:
    """The widest gating band on final test accuracy: a seed inside it counts as converged."""
    bands = [(r["band"][0] - r["tol"], r["band"][1] + r["tol"]) for r in view.spec["references"]
             if r["metric"].endswith("test_acc") and r.get("band") and r.get("gate", True)]
    return max(bands, key=lambda b: b[1] - b[0]) if bands else None


def seeds_table(view) -> pd.DataFrame:
    """Every (device, seed, loop): epochs, final loss and accuracies, converged or not, speed."""
    loops = view.spec["settings"]["loops"]
    band = _converged_band(view)
    rows = []
    for device in view.devices:
        for seed, m in view.measured[device].items():
            for loop in loops:
                secs = view.series(series_key(loop, "epoch_seconds", loops), device, seed)
                acc = m[f"{loop}.test_acc"]
                rows.append({"device": device, "seed": int(seed), "loop": loop,
                             "epochs": len(view.series(series_key(loop, "test_acc", loops), device, seed)),
                             "loss": m[f"{loop}.loss"], "train acc": m[f"{loop}.train_acc"], "test acc": acc,
                             "converged": (band[0] <= acc <= band[1]) if band else None,
                             "s / epoch": secs["value"].mean(), "examples/s": m[f"{loop}.examples_per_sec"]})
    return pd.DataFrame(rows)


def speed_table(view) -> pd.DataFrame:
    """Per device: each loop's examples/s, their ratio and the harness loop against the ceiling, with intervals."""
    from harness.reportkit import interval_columns

    loops = view.spec["settings"]["loops"]
    rows = []
    for device in view.devices:
        seeds = view.measured[device]
        info = [m.get("rounds_info", {}) for m in seeds.values()]
        row: dict[str, Any] = {"device": device, "seeds": len(seeds), "rounds (extra)": ", ".join(
            f"{i.get('rounds', '-')} ({i.get('extra', 0)})" for i in info)}
        for loop in loops:
            row |= interval_columns(f"{loop} examples/s",
                                    view.interval(_pooled_rounds(view, device, f"{loop}.examples_per_sec")))
        if set(LOOPS) <= set(loops):
            row |= interval_columns("harness / tutorial (x)", view.interval(_pooled_rounds(view, device, "speedup")))
        gflops = _pooled_rounds(view, device, "harness.gflops")
        if gflops:
            m = next(iter(seeds.values()))
            row |= interval_columns("harness GFLOP/s", view.interval(gflops))
            row |= interval_columns("of matmul ceiling (fraction)",
                                    view.interval(_pooled_rounds(view, device, "harness.fraction_of_peak")))
            row["ceiling GFLOP/s"] = m["harness.matmul_peak_gflops"]
            row["training MFLOP / example"] = m["harness.training_flop_per_example"] / 1e6
        row["stopped"] = "; ".join(sorted({i.get("stop", "") for i in info}))
        rows.append(row)
    return pd.DataFrame(rows)


def tables(view) -> dict[str, pd.DataFrame]:
    """The per-seed table, and the speed table where the spec times its loops or measures the ceiling."""
    settings = view.spec["settings"]
    out = {"seeds": seeds_table(view)}
    if len(settings["loops"]) > 1 or settings.get("ceiling"):
        out["speed"] = speed_table(view)
    return out


def section(view: RunView) -> str:
    """Accuracy per epoch against the printed curve, a per-seed table, the loops' speed table."""
    # report-only: matplotlib and MLflow (through reportkit) take seconds to import; `harness list` needs neither
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from harness.reportkit import md_table, save_figure, sig

    settings = view.spec["settings"]
    loops = settings["loops"]
    printed = _printed_curves(view)
    band = _converged_band(view)
    parts = []
    shown = tables(view)
    rows = shown["seeds"]

    fig, axes = plt.subplots(1, len(view.devices) or 1, figsize=(6.4 * max(1, len(view.devices)), 3.8), squeeze=False)
    for ax, device in zip(axes[0], view.devices):
        for seed in view.measured[device]:
            for loop in loops:
                test = view.series(series_key(loop, "test_acc", loops), device, seed)
                train = view.series(series_key(loop, "train_acc", loops), device, seed)
                style = "-" if loop == "harness" else ":"
                line, = ax.plot(test["step"], test["value"], style, marker="o", ms=3,
                                label=f"test, seed {seed}" + ("" if len(loops) == 1 else f", {loop} loop"))
                ax.plot(train["step"], train["value"], style, color=line.get_color(), alpha=0.45, lw=1)
        for name, values in printed.items():
            ax.plot(range(1, len(values) + 1), values, "k--" if name == "test_acc_per_epoch" else "k:",
                    marker="x", label=f"tutorial printed ({name.split('_per')[0].replace('_', ' ')})")
        ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title=f"{view.name} on {device}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    parts += ["### Accuracy per epoch", "",
              save_figure(fig, view, "accuracy", f"accuracy per epoch of {view.name}"), "",
              "Solid/dotted lines with markers: test accuracy; faint lines: train accuracy"
              + ("; black crosses: the tutorial's printed curve." if printed else "."), ""]
    if band:
        parts += [f"A seed counts as converged when its final test accuracy lies in [{band[0]:.3f}, {band[1]:.3f}] "
                  "(the widest gating band of the spec). "
                  f"Converged: {int(rows['converged'].sum())}/{len(rows)} runs.", ""]
    parts += ["### Every seed", "", md_table(rows, fmt={
        "loss": "{:.4f}".format, "train acc": "{:.3f}".format, "test acc": "{:.3f}".format,
        "converged": lambda c: "-" if c is None or c != c else "yes" if c else "no", "s / epoch": "{:.2f}".format,
        "examples/s": sig(thousands=True)}), ""]

    early = [(d, s) for d in view.devices for s in view.measured[d] if "early_test_acc_max" in view.measured[d][s]]
    if early:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        ax2 = ax.twinx()
        for device, seed in early:
            acc = view.series(series_key("harness", "first_batches.test_acc", loops), device, seed)
            loss = view.series(series_key("harness", "first_batches.loss", loops), device, seed)
            line, = ax.plot(acc["step"], acc["value"], marker="o", ms=3, label=f"test acc, seed {seed} ({device})")
            ax2.plot(loss["step"], loss["value"], "--", color=line.get_color(), alpha=0.6)
        ax.axvline(settings["chance_batches"], color="grey", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="batch of epoch 1", ylabel="test accuracy (solid)", ylim=(0, 1),
               title="test accuracy after each of the first batches")
        ax2.set_ylabel("running mean training loss (dashed)")
        ax.legend(fontsize=7, loc="upper left")
        parts += ["### The first batches", "",
                  save_figure(fig, view, "first-batches", f"test accuracy after each first batch of {view.name}"), "",
                  f"The whole test set was evaluated after each of the first {settings['eval_first_batches']} "
                  f"batches only (the claim covers the first {settings['chance_batches']}); evaluation time is "
                  "excluded from examples/s.", ""]

    if "speed" in shown:
        parts += _speed_section(view, loops, settings, shown["speed"])
    return "\n".join(parts)


def _pooled_rounds(view, device: str, metric: str) -> list[float]:
    return [v for m in view.measured[device].values() for v in m.get("rounds", {}).get(metric, [])]


def _speed_section(view, loops: list[str], settings: dict[str, Any], table: pd.DataFrame) -> list[str]:
    """The loops' speed with its interval over (interleaved) rounds, the harness loop against the ceiling, a plot."""
    # report-only: matplotlib and MLflow (through reportkit) take seconds to import; `harness list` needs neither
    import matplotlib.pyplot as plt

    from harness.reportkit import md_table, save_figure, shown_intervals

    both = set(LOOPS) <= set(loops)
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for device in view.devices if both else []:
        ratios = _pooled_rounds(view, device, "speedup")
        iv = view.interval(ratios)
        ax.plot(range(1, len(ratios) + 1), ratios, "o-", ms=4, label=f"{device}: ratio in each round")
        if iv.defined:
            ax.axhspan(iv.low, iv.high, alpha=0.2, label=f"{device}: {iv.confidence:.0%} CI of the median round")
    units = {f"{loop} examples/s": "" for loop in loops} | {"harness / tutorial (x)": "x", "harness GFLOP/s": "",
                                                            "of matmul ceiling (fraction)": "%"}
    confidence = view.spec.get("timing", {}).get("confidence", 0.95)
    shown = md_table(shown_intervals(table, units, confidence),
                     fmt={"ceiling GFLOP/s": "{:.1f}".format, "training MFLOP / example": "{:.3f}".format},
                     headers={"harness / tutorial (x)": "harness / tutorial",
                              "of matmul ceiling (fraction)": "of matmul ceiling"})
    for ref in view.spec["references"]:
        if ref["metric"] == "speedup" and ref.get("at_least") is not None:
            gate = ref.get("gate", True)
            where = "" if gate is True else " (info)" if gate is False else f" (gating on {', '.join(gate)})"
            ax.axhline(ref["at_least"], color="k", ls=":" if gate is False else "--", lw=1,
                       label=f"claim >= {ref['at_least']:g}x{where}")
    if both:
        ax.set(xlabel="round (one epoch of each loop)", ylabel="harness / tutorial examples/s",
               title="speed-up, round by round")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        image = save_figure(fig, view, "speedup-rounds", "speed-up of the harness loop in each round")
    else:
        image = ""
        plt.close(fig)
    order = "batches in the tutorial loop's order" if settings.get("same_order") else "randperm batches"
    words = (f"in-memory tensors, {order}, inference-mode evaluation"
             + (", channels_last" if settings["channels_last"] else "")
             + (", fused optimiser step" if settings.get("fused_optimizer") else "")
             + (", max-pool before sigmoid" if settings.get("pool_first") else "")
             + _fold_words(settings.get("fold", 1))
             + (", torch.compile" if settings["compile"] else ""))
    how = ("The loops ran interleaved in one process, an epoch of each a round, from the same initial weights; "
           if both else "Each epoch is a round; ")
    return ["### Speed: this harness's loop vs the tutorial's loop" if both else "### Speed and the machine's ceiling",
            "", shown, "", image, "",
            "examples/s = training examples / seconds of a training pass (data loading included, test evaluation "
            f"excluded). {how}the first {settings['epochs']} rounds trained and evaluated, later rounds trained "
            f"on for timing only. Estimates are median rounds; intervals: {METHOD}. "
            + (f"Tutorial loop: torchvision FashionMNIST + ToTensor + DataLoader(batch {settings['batch_size']}, "
               f"shuffle, {settings['tutorial_workers']} workers) and "
               f"{'train_ch5' if settings['tutorial_style'] == 'ch5' else 'train_ch6'}; " if both else "")
            + f"Harness loop: {words}. "
            "GFLOP/s = the training FLOP of one example (forward and backward, counted once by "
            "`torch.utils.flop_counter` on the tutorial's network: matrix products and convolutions only) x the "
            "round's examples/s; the ceiling is a 2048x2048 matrix product timed in the same run, a yardstick "
            "rather than the machine's hard limit: above 100%, the network's kernels ran faster than that one "
            "product did.", ""]
