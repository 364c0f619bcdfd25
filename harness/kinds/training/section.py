"""The training kind's report: accuracy per epoch against the printed curve, every seed, the first batches, speed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.book.nets import CPU_FOLD
from harness.judging.stats import METHOD
from harness.kinds.base import Located
from harness.kinds.training.settings import GROUPS, grouped, other_loop, series_key
from harness.reading.markdown import interval_columns, md_table, shown_intervals, sig

if TYPE_CHECKING:
    from harness.reading.view import RunView

SEEDS_HEADERS = {"train_acc": "train acc", "test_acc": "test acc", "epoch_s": "s / epoch",
                 "examples_per_s": "examples/s"}
SPEED_HEADERS = {"rounds_extra": "rounds (extra)", "harness_gflops": "harness GFLOP/s",
                 "harness_fraction_of_peak": "of matmul ceiling", "matmul_peak_gflops": "ceiling GFLOP/s",
                 "training_flop_per_example": "training MFLOP / example"}


BASELINES = {"tutorial": "the tutorial's train_{style} and DataLoader", "d2l": "d2l 1.0.3's own train_ch6"}


def recorded(view: RunView) -> dict[str, Any]:
    """The run's settings in today's groups, whenever it was recorded (``grouped``), each group a dict."""
    settings = grouped(view.spec["settings"])
    return settings | {group: settings.get(group, {}) for group in GROUPS}


def speedups(view: RunView) -> dict[str, str]:
    """With two loops, ``speedup``: the harness loop's examples/s over the other loop's, the book's code."""
    settings = recorded(view)
    other = other_loop(settings["loops"])
    if other is None:
        return {}
    return {"speedup": "harness loop over " + BASELINES[other].format(style=settings["tutorial"].get("style", "ch5"))}


PRINTED = {"loss": "loss", "train acc": "train_acc", "test acc": "test_acc", "examples/sec": "examples_per_s",
           "time": "epoch_s"}  # a printed label -> the metric it is


def locate(view: RunView, device: str, label: str, at: int | None, form: str) -> Located | None:
    """A training line's number among the run's: the final value, or an earlier epoch's from the per-epoch curve;
    a throughput or an epoch's time for information; a train_ch5 loss not at all (its scale changed between the
    port's versions)."""
    seeds = view.measured.get(device, {})
    epochs = recorded(view)["optimisation"]["epochs"]
    quantity = PRINTED.get(label)
    if quantity in ("examples_per_s", "epoch_s"):  # a machine's speed, shown beside this one's
        return Located(quantity, tuple(float(m[quantity]) for m in seeds.values() if quantity in m), info=True)
    if quantity is None:
        return None
    if quantity == "loss" and form == "train_ch5":
        return Located("loss", why="train_ch5 printed its loss on two scales (its printed runs divide the sum of "
                                   "the batch means by the examples, its code since by the batches), and a line "
                                   "does not say which")
    if at is None or at == epochs:
        return Located(quantity, tuple(float(m[quantity]) for m in seeds.values()))
    if not 1 <= at <= epochs:
        return Located(quantity, why=f"epoch {at}: this run trained {epochs} epochs")
    curve = f"{quantity}_per_epoch"
    return Located(f"{curve}[{at - 1}]", tuple(float(m[curve][at - 1]) for m in seeds.values()))


def _printed_curves(view: RunView) -> dict[str, list[float]]:
    """The tutorial's printed per-epoch curves, from the spec's own references (metric -> values)."""
    out = {}
    for ref in view.spec["references"]:
        if ref["metric"].endswith(("test_acc_per_epoch", "train_acc_per_epoch")) and ref.get("near") is not None:
            out.setdefault(ref["metric"].split(".")[-1], ref["near"])
    return out


def _printed_finals(view: RunView) -> list[tuple[str, float, bool]]:
    """The printed draws of the final accuracies (metric, value, gating), from the spec's own references."""
    return [(r["metric"], r["draw"], r.get("gate", True) is not False) for r in view.spec["references"]
            if r["metric"].split(".")[-1] in ("test_acc", "train_acc") and r.get("draw") is not None]


def _converged_band(view: RunView) -> tuple[float, float] | None:
    """The widest gating band on final test accuracy: a seed inside it counts as converged."""
    bands = [(r["band"][0] - r["tol"], r["band"][1] + r["tol"]) for r in view.spec["references"]
             if r["metric"].endswith("test_acc") and r.get("band") and r.get("gate", True)]
    return max(bands, key=lambda b: b[1] - b[0]) if bands else None


def _pooled_rounds(view: RunView, device: str, metric: str) -> list[float]:
    return [v for m in view.measured[device].values() for v in m.get("rounds", {}).get(metric, [])]


def seeds_table(view: RunView) -> pd.DataFrame:
    """Every (device, seed, loop): epochs, final loss and accuracies, converged or not, speed."""
    loops = view.spec["settings"]["loops"]
    band = _converged_band(view)
    rows = []
    for device in view.devices:
        for seed, m in view.measured[device].items():
            for loop in loops:
                secs = view.series(series_key(loop, "epoch_s", loops), device, seed)
                acc = m[f"{loop}.test_acc"]
                rows.append({"device": device, "seed": int(seed), "loop": loop,
                             "epochs": len(view.series(series_key(loop, "test_acc", loops), device, seed)),
                             "loss": m[f"{loop}.loss"], "train_acc": m[f"{loop}.train_acc"], "test_acc": acc,
                             "converged": (band[0] <= acc <= band[1]) if band else None,
                             "epoch_s": secs["value"].mean(), "examples_per_s": m[f"{loop}.examples_per_s"]})
    return pd.DataFrame(rows)


def speed_table(view: RunView) -> pd.DataFrame:
    """Per device: each loop's examples/s, their ratio and the harness loop against the ceiling, with intervals."""
    loops = view.spec["settings"]["loops"]
    rows = []
    for device in view.devices:
        seeds = view.measured[device]
        info = [m.get("rounds_info", {}) for m in seeds.values()]
        row: dict[str, Any] = {"device": device, "seeds": len(seeds), "rounds_extra": ", ".join(
            f"{i.get('rounds', '-')} ({i.get('extra', 0)})" for i in info)}
        for loop in loops:
            row |= interval_columns(f"{loop}_examples_per_s",
                                    view.interval(_pooled_rounds(view, device, f"{loop}.examples_per_s")))
        if other_loop(loops):
            row |= interval_columns("speedup", view.interval(_pooled_rounds(view, device, "speedup")))
        gflops = _pooled_rounds(view, device, "harness.gflops")
        if gflops:
            m = next(iter(seeds.values()))
            row |= interval_columns("harness_gflops", view.interval(gflops))
            row |= interval_columns("harness_fraction_of_peak",
                                    view.interval(_pooled_rounds(view, device, "harness.fraction_of_peak")))
            row["matmul_peak_gflops"] = m["harness.matmul_peak_gflops"]
            row["training_flop_per_example"] = m["harness.training_flop_per_example"]
        row["stopped"] = "; ".join(sorted({i.get("stop", "") for i in info}))
        rows.append(row)
    return pd.DataFrame(rows)


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """The per-seed table, and the speed table where the spec times its loops or measures the ceiling."""
    settings = recorded(view)
    out = {"seeds": seeds_table(view)}
    if len(settings["loops"]) > 1 or settings["measure"].get("ceiling"):
        out["speed"] = speed_table(view)
    return out


def section(view: RunView) -> str:
    """Accuracy per epoch against the printed curve, a per-seed table, the first batches, the loops' speed."""
    settings = recorded(view)
    shown = tables(view)
    rows = shown["seeds"]
    parts = _accuracy_part(view)
    band = _converged_band(view)
    if band:
        parts += [f"A seed counts as converged when its final test accuracy lies in [{band[0]:.3f}, {band[1]:.3f}] "
                  "(the widest gating band of the spec). "
                  f"Converged: {int(rows['converged'].sum())}/{len(rows)} runs.", ""]
    parts += ["### Every seed", "", md_table(rows, fmt={
        "loss": "{:.4f}".format, "train_acc": "{:.3f}".format, "test_acc": "{:.3f}".format,
        "converged": lambda c: "-" if c is None or c != c else "yes" if c else "no", "epoch_s": "{:.2f}".format,
        "examples_per_s": sig(thousands=True)}, headers=SEEDS_HEADERS), ""]
    parts += _first_batches_part(view)
    if "speed" in shown:
        parts += _speed_section(view, settings["loops"], settings, shown["speed"])
    if settings["measure"].get("profile"):
        parts += _profile_part(view)
    return "\n".join(parts)


def _profile_part(view: RunView) -> list[str]:
    """Where a training epoch of the harness loop goes, operator by operator (the first seed of each device)."""
    parts = ["### Where an epoch of the harness loop goes", ""]
    for device in view.devices:
        seed = min(view.measured[device], key=int)
        rows = view.table("profile", device, seed)
        parts += [f"{device}, seed {seed}: one more training epoch after the rounds, under `torch.profiler` "
                  f"({rows['self_s'].sum():.2f} s of operator self time, profiler overhead included).", "",
                  md_table(rows, fmt={"self_s": "{:.3f}".format, "share": "{:.1%}".format}), ""]
    if "cpu" in view.devices:
        parts += ["On the CPU the profiler's overhead does not fall evenly: on a 2-core machine ATen's element-wise "
                  "kernels (the sigmoid and its backward, fills) read several times longer under it than the same "
                  "kernels took in an unprofiled step (timed between autograd hooks), while oneDNN's convolutions "
                  "read about the same. Their shares are upper bounds; a change is judged by an interleaved ratio "
                  "of whole steps.", ""]
    return parts


def _accuracy_part(view: RunView) -> list[str]:
    """Test and train accuracy per epoch of every seed and loop, with the tutorial's printed curve."""
    # report-only: matplotlib takes seconds to import; `harness list` needs none of it
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from harness.reading.figures import save_figure

    loops = view.spec["settings"]["loops"]
    printed, finals = _printed_curves(view), _printed_finals(view)
    epochs = recorded(view)["optimisation"].get("epochs", 1)
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
        for metric, value, gate in finals:
            test = metric.endswith("test_acc")
            ax.plot([epochs], [value], "D" if test else "d", mfc="k" if gate else "none", mec="k", ms=6, ls="")
        if finals:
            ax.plot([], [], "D", color="k", ls="", label="book printed, final epoch (hollow: info)")
        ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title=f"{view.name} on {device}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return ["### Accuracy per epoch", "",
            save_figure(fig, view, "accuracy", f"accuracy per epoch of {view.name}"), "",
            "Solid/dotted lines with markers: test accuracy; faint lines: train accuracy"
            + ("; black crosses: the tutorial's printed curve" if printed else "")
            + ("; black diamonds at the last epoch: the books' printed final accuracies (large: test, small: train)"
               if finals else "") + ".", ""]


def _first_batches_part(view: RunView) -> list[str]:
    """Test accuracy and running loss after each of the first batches, where the spec evaluated them."""
    early = [(d, s) for d in view.devices for s in view.measured[d] if "early_test_acc_max" in view.measured[d][s]]
    if not early:
        return []
    # report-only: matplotlib takes seconds to import; `harness list` needs none of it
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from harness.reading.figures import save_figure

    settings = recorded(view)
    loops, measure = settings["loops"], settings["measure"]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax2 = ax.twinx()
    for device, seed in early:
        acc = view.series(series_key("harness", "first_batches.test_acc", loops), device, seed)
        loss = view.series(series_key("harness", "first_batches.loss", loops), device, seed)
        line, = ax.plot(acc["step"], acc["value"], marker="o", ms=3, label=f"test acc, seed {seed} ({device})")
        ax2.plot(loss["step"], loss["value"], "--", color=line.get_color(), alpha=0.6)
    ax.axvline(measure["chance_batches"], color="grey", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="batch of epoch 1", ylabel="test accuracy (solid)", ylim=(0, 1),
           title="test accuracy after each of the first batches")
    ax2.set_ylabel("running mean training loss (dashed)")
    ax.legend(fontsize=7, loc="upper left")
    return ["### The first batches", "",
            save_figure(fig, view, "first-batches", f"test accuracy after each first batch of {view.name}"), "",
            f"The whole test set was evaluated after each of the first {measure['eval_first_batches']} "
            f"batches only (the claim covers the first {measure['chance_batches']}); evaluation time is "
            "excluded from examples/s.", ""]


def _fold_words(fold: int | None) -> str:
    """The speed table's words for the batch fold (``None``: the default, folded on the CPU only)."""
    if fold is None:
        return (f", batch folded {CPU_FOLD} images deep into grouped convolutions on the CPU (networks without batch "
                "norm)")
    return f", batch folded {fold} images deep into grouped convolutions" if fold > 1 else ""


def _speed_section(view: RunView, loops: list[str], settings: dict[str, Any], table: pd.DataFrame) -> list[str]:
    """The loops' speed with its interval over (interleaved) rounds, the harness loop against the ceiling, a plot."""
    # report-only: matplotlib takes seconds to import; `harness list` needs none of it
    import matplotlib.pyplot as plt

    from harness.reading.figures import save_figure

    other = other_loop(loops)
    both = other is not None
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for device in view.devices if both else []:
        ratios = _pooled_rounds(view, device, "speedup")
        iv = view.interval(ratios)
        ax.plot(range(1, len(ratios) + 1), ratios, "o-", ms=4, label=f"{device}: ratio in each round")
        if iv.defined:
            ax.axhspan(iv.low, iv.high, alpha=0.2, label=f"{device}: {iv.confidence:.0%} CI of the median round")
    units = {f"{loop}_examples_per_s": "" for loop in loops} | {"speedup": "x", "harness_gflops": "",
                                                               "harness_fraction_of_peak": "%"}
    confidence = view.spec.get("timing", {}).get("confidence", 0.95)
    headers = SPEED_HEADERS | {f"{loop}_examples_per_s": f"{loop} examples/s" for loop in loops} | {
        "speedup": f"harness / {other}"}
    shown = md_table(shown_intervals(table, units, confidence),
                     fmt={"matmul_peak_gflops": "{:.1f}".format,
                          "training_flop_per_example": lambda v: f"{v / 1e6:.3f}"}, headers=headers)
    for ref in view.spec["references"]:
        if ref["metric"] == "speedup" and ref.get("at_least") is not None:
            gate = ref.get("gate", True)
            where = "" if gate is True else " (info)" if gate is False else f" (gating on {', '.join(gate)})"
            ax.axhline(ref["at_least"], color="k", ls=":" if gate is False else "--", lw=1,
                       label=f"claim >= {ref['at_least']:g}x{where}")
    if both:
        ax.set(xlabel="round (one epoch of each loop)", ylabel=f"harness / {other} examples/s",
               title="speed-up, round by round")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        image = save_figure(fig, view, "speedup-rounds", "speed-up of the harness loop in each round")
    else:
        image = ""
        plt.close(fig)
    opt, tutorial, fast = settings["optimisation"], settings["tutorial"], settings["harness_loop"]
    order = "batches in the tutorial loop's order" if tutorial.get("same_order") else "randperm batches"
    words = (f"in-memory tensors, {order}, inference-mode evaluation"
             + (", channels_last" if fast["channels_last"] else "")
             + (", fused optimiser step" if fast.get("fused_optimizer") else "")
             + (", max-pool before sigmoid" if fast.get("pool_first") else "")
             + _fold_words(fast.get("fold", 1))
             + (", torch.compile" if fast["compile"] else ""))
    how = ("The loops ran interleaved, an epoch of each a round and one at a time (the d2l loop in a process of its "
           "own, from its own Xavier initialisation); " if other == "d2l" else
           "The loops ran interleaved in one process, an epoch of each a round, from the same initial weights; "
           if both else "Each epoch is a round; ")
    title = {"tutorial": "the tutorial's loop", "d2l": "the d2l package's train_ch6"}.get(other)
    return [f"### Speed: this harness's loop vs {title}" if both else "### Speed and the machine's ceiling",
            "", shown, "", image, "",
            "examples/s = training examples / seconds of a training pass (data loading included, test evaluation "
            f"excluded). {how}the first {opt['epochs']} rounds trained and evaluated, later rounds trained "
            f"on for timing only. Estimates are median rounds; intervals: {METHOD}. "
            + (f"Tutorial loop: torchvision FashionMNIST + ToTensor + DataLoader(batch {opt['batch_size']}, "
               f"shuffle, {tutorial['workers']} workers) and "
               f"{'train_ch5' if tutorial['style'] == 'ch5' else 'train_ch6'}; "
               if other == "tutorial" else "")
            + ("d2l loop: the d2l package's own `load_data_fashion_mnist` (ToTensor, DataLoader with its 4 "
               "workers) and `train_ch6` (its Xavier initialisation, SGD, Animator and per-batch accuracy), paused "
               "in a process of its own after each epoch's test evaluation; " if other == "d2l" else "")
            + f"Harness loop: {words}. "
            "GFLOP/s = the training FLOP of one example (forward and backward, counted once by "
            "`torch.utils.flop_counter` on the tutorial's network: matrix products and convolutions only) x the "
            "round's examples/s; the ceiling is a square matrix product (`harness.machine.timing.matmul_peak`) "
            "timed in the same run, a yardstick rather than the machine's hard limit: above 100%, the network's "
            "kernels ran faster than that one product did.", ""]
