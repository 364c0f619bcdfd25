"""C1-C3 and the other trained networks: a CNN on Fashion-MNIST or MNIST, trained by the harness loop, the
tutorial's loop, the book's own package (``d2l``'s ``train_ch6``) or two of them, the loops interleaved an epoch each
a round.

Unprefixed metrics are the first loop's; ``<loop>.<metric>`` each loop's own. ``docs/internals.md`` ("The lenet
kind") says what a spec chooses and what a run records.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
import torch.nn.functional as F

from harness.book import nets
from harness.book.data import load
from harness.book.models import init_xavier
from harness.book.modern import BatchNorm
from harness.book.peer import D2lLoop
from harness.book.train import HarnessLoop, TutorialLoop, end_epoch, progress_bar
from harness.judging.rounds import recorded_rounds
from harness.kinds.base import timings_of
from harness.kinds.training.settings import GAPS, METRICS, Settings, other_loop, series_key
from harness.machine import device as devices
from harness.machine.timing import matmul_peak, profile_ops, training_flops

if TYPE_CHECKING:
    from harness.store.tracking import Recorder

def _model(settings: Settings, seed: int) -> torch.nn.Module:
    """The spec's network, initialised from the run's seed (so every loop starts from the same weights)."""
    torch.manual_seed(seed)
    net = nets.build(settings.model, settings.input_shape)
    return init_xavier(net) if settings.init == "xavier" else net


def prepared(settings: Settings, device: str):
    """The spec's dataset on ``device`` at 28x28: the first N examples where asked (``resizer`` resizes batches)."""
    asked = settings.data
    data = load(asked.dataset, asked.dir, device=devices.place(device), download=asked.download)
    if not (asked.train_examples or asked.test_examples):
        return data
    return replace(data, train_x=data.train_x[:asked.train_examples], train_y=data.train_y[:asked.train_examples],
                   test_x=data.test_x[:asked.test_examples], test_y=data.test_y[:asked.test_examples])


def resizer(settings: Settings):
    """The book's ``resize=`` as a batch transform (bilinear), or None: resized a batch at a time, as the book's
    loader does an image at a time, so that a 224x224 training set is never held whole."""
    if not settings.data.resize:
        return None
    size = (settings.data.resize, settings.data.resize)
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


def batch_norm_means(net: torch.nn.Module) -> dict[str, float]:
    """The first batch norm layer's gamma and beta, each averaged over its channels (the pages print net[1]'s)."""
    for layer in net.modules():
        if isinstance(layer, BatchNorm | torch.nn.modules.batchnorm._BatchNorm) and getattr(layer, "affine", True):
            gamma, beta = (layer.gamma, layer.beta) if isinstance(layer, BatchNorm) else (layer.weight, layer.bias)
            return {"bn_gamma_mean": gamma.detach().mean().item(), "bn_beta_mean": beta.detach().mean().item()}
    return {}


def make_loops(settings: Settings, data, seed: int, device: str, max_epochs: int = 1000) -> dict[str, Any]:
    """Each loop the spec names, set up from the same initial weights, in the order an epoch runs them: with
    ``same_order`` the tutorial's first, so that the harness loop can replay the order its epoch went through.
    The d2l loop's ``train_ch6`` initialises the network itself and is asked for ``max_epochs`` (``close_loops``
    ends it where it stands)."""
    opt, tutorial, fast = settings.optimisation, settings.tutorial, settings.harness_loop
    common = dict(optimizer=opt.optimizer, lr=opt.lr, batch_size=opt.batch_size)
    loops: dict[str, Any] = {}
    for name in sorted(settings.loops, key=lambda n: tutorial.same_order and n == "harness"):
        net = _model(settings, seed)
        if name == "harness":
            order = loops["tutorial"].last_order if tutorial.same_order else None
            loops[name] = HarnessLoop(net, data, seed=seed, device=device,
                                      eval_first_batches=settings.measure.eval_first_batches,
                                      channels_last=fast.channels_last, fused=fast.fused_optimizer,
                                      pool_first=fast.pool_first, fold=fast.fold, compile=fast.compile,
                                      order=order, transform=resizer(settings), **common)
        elif name == "tutorial":
            loops[name] = TutorialLoop(net, str(data.root), device=device, num_workers=tutorial.workers,
                                       style=tutorial.style, record_order=tutorial.same_order, **common)
        else:
            loops[name] = D2lLoop(net, str(data.root), lr=opt.lr, batch_size=opt.batch_size, seed=seed,
                                  device=device, max_epochs=max_epochs)
    return loops


def close_loops(loops: dict[str, Any]) -> None:
    """End the loops that hold something open (the d2l loop's paused train_ch6)."""
    for loop in loops.values():
        if hasattr(loop, "close"):
            loop.close()


def ceiling(settings: Settings, data, device: str) -> dict[str, float]:
    """Training FLOP per example (forward and backward, counted by torch.utils.flop_counter) and the matmul ceiling."""
    x, y = data.train_x[:settings.optimisation.batch_size], data.train_y[:settings.optimisation.batch_size]
    x = resizer(settings)(x) if settings.data.resize else x
    flop = training_flops(nets.build(settings.model, settings.input_shape).to(devices.place(device)), x, y) / len(y)
    return {"training_flop_per_example": flop, "matmul_peak_gflops": matmul_peak(device)["gflops"]}


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    """Every loop an epoch a round, interleaved; the first ``epochs`` rounds train and evaluate, the rest time."""
    data = prepared(settings, rec.device)
    rec.log_dataset(**data.described())
    plan = rec.plan
    limit = ceiling(settings, data, rec.device) if settings.measure.ceiling and "harness" in settings.loops else {}
    first = max(settings.optimisation.epochs, plan.policy.rounds) if plan.judged else settings.optimisation.epochs
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
        training = i < settings.optimisation.epochs
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
        if settings.measure.profile:
            epoch = partial(loops["harness"].epoch, evaluate_test=False)
            rec.log_table("profile", pd.DataFrame(profile_ops(epoch, device=rec.device)))
    finally:
        close_loops(loops)
        if bar is not None:
            bar.stop()
    trained = getattr(loops[settings.loops[0]], "net", None)
    measured: dict[str, Any] = {f"harness.{k}": v for k, v in limit.items()}
    measured.update(batch_norm_means(trained) if trained is not None else {})
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
            early = fb[:settings.measure.chance_batches]
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
