"""The convolution-throughput report: the ceiling, the throughput table and a GFLOP/s chart per device; and the
per-round GFLOP/s the History reads, derived from the recorded seconds per round."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.judging.stats import is_finite_number, number
from harness.kinds.base import timings_of
from harness.kinds.conv_throughput.settings import METRICS
from harness.reading.markdown import busy_note

if TYPE_CHECKING:
    from harness.reading.view import RunView

UNITS = timings_of(METRICS)


def throughput_table(df: pd.DataFrame) -> pd.DataFrame:
    """One unit's logged table as the report's CSV holds it: numbers, the unit in each column's name."""
    runs = df["runs"].astype(float)
    return pd.DataFrame({
        "shape": df["shape"], "input": df["input"], "kernel": df["kernel"], "padding": df["padding"],
        "stride": df["stride"] if "stride" in df else "1", "impl": df["impl"], "backend": df["backend"].fillna(""),
        "time_s": df["median_s"], "rel_spread": df["rel_spread"],
        "others_cpu": df["others_cpu"] if "others_cpu" in df else math.nan,
        "runs": runs, "calls_per_run": df["calls"] / runs.where(runs > 0),
        "gflops": df["gflops"], "speedup_over_loop": df["speedup_over_loop"],
        "fraction_of_peak": df["fraction_of_peak"], "extrapolated": df["extrapolated"].astype(bool),
        "max_rel_err": df["max_rel_err"].astype(float), "compile_s": df["compile_s"].astype(float),
        "compile_breakeven_calls": _breakeven(df), "status": df["status"],
    })


def speedups(view: RunView) -> dict[str, str]:
    """The claim shape's ratios to the loop ``corr2d``, the book's definition."""
    shape = view.spec["settings"]["claim_shape"]
    return {f"{impl}_over_loop_claim": f"{name} over the loop corr2d ({shape})"
            for impl, name in (("library", "library convolution"), ("unfold", "unfold"), ("strided", "strided einsum"))}


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """Per device: the throughput table and the matmul ceiling, every seed's rows with a ``seed`` column."""
    out: dict[str, pd.DataFrame] = {}
    for device, seeds in view.measured.items():
        out[f"throughput-{device}"] = pd.concat(
            [throughput_table(view.table("conv_throughput", device, s)).assign(seed=int(s)) for s in seeds],
            ignore_index=True)
        out[f"ceiling-{device}"] = pd.concat(
            [view.table("matmul_peak", device, s).assign(seed=int(s)) for s in seeds], ignore_index=True)
    return out


def _flops(view: RunView, device: str) -> dict[tuple[str, str], float]:
    """FLOP of one call of each (implementation, shape), from the throughput table of the device's first seed."""
    seeds = list(view.measured.get(device, {}))
    if not seeds:
        return {}
    table = view.table("conv_throughput", device, seeds[0])
    return {(r.impl, r.shape): float(r.flops) for r in table.itertuples()}


def derive(view: RunView, samples: pd.DataFrame) -> pd.DataFrame:
    """``gflops.<impl>.<shape>`` per round from each round's ``s.<impl>.<shape>``: FLOP / seconds / 1e9.

    It takes the place of that name's per-seed sample (the pooled GFLOP/s), so that its interval is over rounds.
    """
    timed = samples[(samples["basis"] == "rounds") & samples["metric"].str.fullmatch(r"s\.[^.]+\.[^.]+")]
    added = []
    for device, group in timed.groupby("device", sort=False):
        flops = _flops(view, device)
        for r in group.itertuples():
            _, impl, shape = r.metric.split(".")
            if (impl, shape) in flops:
                values = [flops[impl, shape] / s / 1e9 if s > 0 else math.nan for s in r.values]
                added.append({"device": device, "metric": f"gflops.{impl}.{shape}", "basis": "rounds",
                              "values": values, "seeds": []})
    if not added:
        return samples
    new = pd.DataFrame(added, columns=samples.columns)
    replaced = set(zip(new["device"], new["metric"]))
    kept = samples[[(d, m) not in replaced for d, m in zip(samples["device"], samples["metric"])]]
    return pd.concat([kept, new], ignore_index=True)


def _breakeven(df: pd.DataFrame) -> list[float]:
    """For the compiled rows: how many calls the compile time takes to win back against eager unfold (inf: never)."""
    unfold = df[df["impl"] == "unfold"].set_index("shape")["median_s"]
    out = []
    for r in df.itertuples():
        eager = unfold.get(r.shape, math.nan)
        if r.impl != "unfold_compiled" or not all(map(is_finite_number, (r.compile_s, r.median_s, eager))):
            out.append(math.nan)
        elif r.median_s >= eager:
            out.append(math.inf)
        else:
            out.append(float(math.ceil(r.compile_s / (eager - r.median_s))))
    return out


def _calls(v: Any) -> str:
    return "never (not faster)" if v == math.inf else f"{v:,.0f} calls" if is_finite_number(v) else "-"


def shown(table: pd.DataFrame) -> str:
    """One seed's throughput table as markdown, under the headers a reader knows."""
    from harness.reading.markdown import md_table, percent, seconds, sig

    table = table.assign(impl=[f"{i} ({b})" if b else i for i, b in zip(table["impl"], table["backend"])])
    return md_table(table.drop(columns=["backend"]),
                    fmt={"time_s": seconds, "rel_spread": percent(1), "others_cpu": percent(),
                         "runs": sig(thousands=True), "calls_per_run": sig(thousands=True), "gflops": sig(),
                         "speedup_over_loop": _x, "fraction_of_peak": percent(2),
                         "extrapolated": lambda e: "yes" if e else "no",
                         "max_rel_err": lambda v: f"{v:.1e}" if is_finite_number(v) else "-",
                         "compile_s": seconds, "compile_breakeven_calls": _calls},
                    headers={"padding": "pad", "time_s": "time", "rel_spread": "IQR/median", "others_cpu": "others",
                             "calls_per_run": "calls per run", "gflops": "GFLOP/s",
                             "speedup_over_loop": "x loop (median round)",
                             "fraction_of_peak": "of peak", "max_rel_err": "check (max rel err)",
                             "compile_s": "compile", "compile_breakeven_calls": "compile pays after"})


def _busy(df: pd.DataFrame, peak: pd.Series) -> list[str]:
    shares = (df["others_cpu"].tolist() if "others_cpu" in df else []) + [peak.get("others_cpu", math.nan)]
    note = busy_note(shares)
    return [note, ""] if note else []


def _ceiling_text(peak: pd.Series, device: str) -> str:
    tf32 = f"; TF32 matmul {peak['tf32_matmul']}, TF32 cuDNN {peak['tf32_cudnn']}" if device == "cuda" else ""
    return (f"Ceiling: a {int(peak['n'])}x{int(peak['n'])} {peak['dtype']} matrix product on this device, in the "
            f"same run: **{peak['gflops']:.1f} GFLOP/s** (median of {int(peak['runs'])} runs, IQR "
            f"{peak['iqr_s'] / peak['median_s']:.1%} of the median; {int(peak['threads'])} threads{tf32}). "
            "`of peak` divides by it. It is a measured ceiling, not the datasheet's: a convolution kernel that uses "
            "the device better than this one product (oneDNN's JIT kernels against the BLAS sgemm, say) can pass 100%.")


def _summary(view: RunView, m: dict[str, Any], settings: dict[str, Any]) -> str:
    """The headline numbers of one (device, seed), from its recorded metrics."""
    claim, lenet = settings["claim_shape"], settings["lenet_shapes"]
    fracs = ", ".join(f"`{s}` {m[f'fraction_of_peak.library.{s}']:.1%}" for s in lenet
                      if f"fraction_of_peak.library.{s}" in m)

    def iv(metric: str) -> str:
        rounds = m.get("rounds", {}).get(metric)
        return view.interval(rounds).text(UNITS[metric]) if rounds else _x(m.get(metric))

    return (f"On `{claim}`, unfold is **{iv('unfold_over_loop_claim')}** and the library convolution "
            f"**{iv('library_over_loop_claim')}** as fast as the loop: the median of the ratios taken within each "
            "round, the estimator of the table's `x loop` column too, with its interval. On "
            f"LeNet's layers the library convolution reaches {fracs} of the matmul ceiling (pooled rounds); the "
            f"slower of its two ratios to unfold is {iv('library_over_unfold_lenet_min')}.")


def _x(v: Any) -> str:
    """A ratio as every interval prints its estimate (``stats.number``): the table's figure is the prose's."""
    return f"{number(v)}x" if is_finite_number(v) else "-"


def _notes(df: pd.DataFrame, settings: dict[str, Any]) -> list[str]:
    """How the loop was extrapolated, what the compiled rows mean, and what failed, where the table has them."""
    parts: list[str] = []
    extra = df[df["extrapolated"].astype(bool)]
    if not extra.empty:
        parts += ["The loop (`corr2d_multi_in_out` per image) was **extrapolated** on "
                  + ", ".join(f"`{s}`" for s in extra["shape"])
                  + f": it ran within a budget of {settings['loop_budget_s']} s a shape and "
                  "round on a leading part of the output (whole rows, then channels, then images), checked "
                  "against the reference there, and its median time was scaled linearly to the whole output. "
                  "Its time, speed-up and GFLOP/s on those shapes are estimates, not measurements:", ""]
        parts += [f"- `{r.shape}`: {r.method}" for r in extra.itertuples()] + [""]
    if "unfold_compiled" in set(df["impl"]):
        parts += ["`unfold_compiled` is `torch.compile(conv2d_unfold, dynamic=False)`, compiled once for each "
                  "shape (after a `torch._dynamo.reset()` at the start of the run, its cache holding every "
                  "shape); `compile` is that first call, excluded from its time, in this process and with whatever "
                  "TorchInductor's on-disk cache already held (a cold cache takes longer). `compile pays after` is "
                  "compile time / (eager unfold - compiled).", ""]
    failed = df[df["status"] != "ok"]
    parts += [f"- `{r.shape}` / `{r.impl}`: {r.status}" for r in failed.itertuples()]
    return parts + ([""] if not failed.empty else [])


def _bars(ax, df: pd.DataFrame, peak: pd.Series, device: str) -> None:
    """GFLOP/s of every implementation on every shape (hatched where extrapolated), and the ceiling."""
    import numpy as np

    shapes = list(dict.fromkeys(df["shape"]))
    impls = list(dict.fromkeys(df["impl"]))
    width = 0.8 / len(impls)
    x = np.arange(len(shapes))
    for i, impl in enumerate(impls):
        sub = df[df["impl"] == impl].set_index("shape").reindex(shapes)
        hatch = ["//" if bool(e) else "" for e in sub["extrapolated"].fillna(False)]
        bars = ax.bar(x + (i - (len(impls) - 1) / 2) * width, sub["gflops"].fillna(0), width, label=impl)
        for bar, h in zip(bars, hatch):
            bar.set_hatch(h)
    ax.axhline(peak["gflops"], color="k", ls="--", lw=1, label=f"matmul ceiling {peak['gflops']:.0f}")
    ax.set(yscale="log", ylabel="GFLOP/s", title=f"{device}: GFLOP/s by shape (hatched: extrapolated)")
    ax.set_xticks(x, shapes, rotation=15, fontsize=8)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=3)


def section(view: RunView) -> str:
    """Report: the ceiling, the throughput table and a GFLOP/s chart per device, and how the loop was timed."""
    import matplotlib.pyplot as plt

    from harness.reading.figures import save_figure
    from harness.reading.markdown import of_seed

    settings = view.spec["settings"]
    parts: list[str] = []
    throughput = tables(view)
    devices = list(view.measured)
    fig, axes = plt.subplots(len(devices), 1, figsize=(8.5, 3.8 * len(devices)), squeeze=False)
    for ax, device in zip(axes[:, 0], devices):
        for seed in view.measured[device]:
            peak = view.table("matmul_peak", device, seed).iloc[0]
            df = view.table("conv_throughput", device, seed)
            parts += [f"### {device} (seed {seed}): convolution throughput", "", *_busy(df, peak),
                      _ceiling_text(peak, device), "",
                      _summary(view, view.measured[device][seed], settings), "",
                      shown(of_seed(throughput[f"throughput-{device}"], seed)), "",
                      *_notes(df, settings)]
            _bars(ax, df, peak, device)
    parts.insert(0, save_figure(fig, view, "gflops-" + "-".join(devices), "GFLOP/s by implementation and shape") + "\n")
    return "\n".join(parts)
