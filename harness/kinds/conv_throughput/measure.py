"""D2: convolution implementations side by side, over the spec's grid of shapes, against the matmul ceiling.

The tutorial's loop, unfold (im2col + one matrix product), a strided einsum, the library's F.conv2d and
torch.compile of unfold compute one cross-correlation; each is checked against a float64 reference, then all are
timed in interleaved rounds, the judged ratios taken within each round (docs/internals.md, "Convolution
throughput").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
import torch.nn.functional as F

from harness.book import ops
from harness.judging.rounds import Rounds, recorded_rounds
from harness.judging.stats import median
from harness.kinds.base import timings_of
from harness.kinds.conv_throughput.settings import METRICS, Settings, Shape
from harness.machine import device as devices
from harness.machine.timing import (
    Timing,
    cpu_threads,
    extrapolate,
    matmul_peak,
    measure,
    pool,
    time_once,
)

if TYPE_CHECKING:
    from harness.store.tracking import Recorder

FUNCS = {"loop": ops.conv2d_loop, "unfold": ops.conv2d_unfold, "strided": ops.conv2d_strided,
         "library": ops.conv2d_library_batched}


TABLE_COLUMNS = ["shape", "input", "kernel", "padding", "stride", "flops", "gflop", "impl", "backend", "median_s",
                 "iqr_s", "rel_spread", "runs", "calls", "gflops", "speedup_over_loop", "fraction_of_peak",
                 "extrapolated", "method", "max_rel_err", "compile_s", "others_cpu", "status"]


BACKENDS = {"Cudnn": "cuDNN", "CudnnTranspose": "cuDNN", "Miopen": "MIOpen", "Mkldnn": "oneDNN (mkldnn)",
            "MkldnnEmpty": "oneDNN (mkldnn)", "NnpackSpatial": "NNPACK", "Slow2d": "native slow_conv2d",
            "Overrideable": "out-of-tree backend", "Mps": "MPS"}


def library_backend(X: torch.Tensor, K: torch.Tensor, padding: int, stride: int | tuple[int, int] = 1) -> str:
    """Which kernel F.conv2d dispatches to for these tensors (PyTorch's own backend choice)."""
    strides = [stride, stride] if isinstance(stride, int) else list(stride)
    try:
        choice = torch._C._select_conv_backend(X, K, None, strides, [padding, padding], [1, 1], False, [0, 0], 1,
                                               None)
    except (AttributeError, RuntimeError, TypeError):
        return "unknown"
    name = str(choice).rsplit(".", 1)[-1]
    return BACKENDS.get(name, name)


def _rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    y64 = y.detach().to("cpu", torch.float64)
    if y64.shape != ref.shape:
        return math.inf
    scale = float(ref.abs().max()) or 1.0
    return float((y64 - ref).abs().max()) / scale


@dataclass
class Case:
    """One (shape, implementation): its table row, what is timed, and its timing in every round."""

    shape: Shape
    impl: str
    row: dict[str, Any]
    call: Callable[[], Any] | None = None  # None: not timed (a failed check or compile)
    part_work: float = 1.0  # the loop: the share of the output timed ...
    full_work: float = 1.0  # ... of the whole, to extrapolate by
    timings: list[Timing] = field(default_factory=list)

    @property
    def scale(self) -> float:
        return self.full_work / self.part_work


def _loop_case(case: Case, Xp: torch.Tensor, K: torch.Tensor, ref: torch.Tensor, device: str, budget: float) -> None:
    """The loop on a leading part of the output, sized to the budget, to be scaled to the whole output.

    The unit of work is one output row of one output channel of one image (C_i * W_o inner iterations);
    the part is whole rows, then whole channels, then whole images, so its cost per unit is the loop's.
    """
    shape = case.shape
    h_o, _ = shape.out_hw
    n, c_o = shape.n, shape.c_out
    probe_x, probe_k = Xp[:1, :, :shape.kh], K[:1]
    loop = partial(ops.conv2d_loop, stride=shape.stride)
    unit = min(time_once(lambda: loop(probe_x, probe_k), device) for _ in range(2))
    units = max(1, int(budget / 4 / max(unit, 1e-9)))
    rows = min(h_o, units)
    chans = min(c_o, max(1, units // h_o)) if rows == h_o else 1
    imgs = min(n, max(1, units // (h_o * c_o))) if chans == c_o else 1
    X_part, K_part = Xp[:imgs, :, :(rows - 1) * shape.stride_hw[0] + shape.kh], K[:chans]
    case.row["max_rel_err"] = _rel_err(loop(X_part, K_part), ref[:imgs, :chans, :rows])
    case.call = partial(loop, X_part, K_part)
    case.part_work, case.full_work = imgs * chans * rows, n * c_o * h_o
    if case.scale != 1:
        case.row["extrapolated"] = True
        case.row["method"] = (f"timed {imgs} image(s) x {chans} output channel(s) x {rows} output row(s) of "
                              f"{n} x {c_o} x {h_o}; ")


def _peak(device: str, settings: Settings) -> dict[str, Any]:
    n = settings.peak_n_cuda if devices.get(device).is_cuda else settings.peak_n
    return matmul_peak(device, n=n, min_run_time=settings.peak_min_run_time)


def prepare(settings: Settings, device: str, seed: int) -> list[Case]:
    """Every (shape, implementation), checked against a float64 reference (and compiled) before any timing."""
    tol = settings.check_tol
    if devices.get(device).switches().get("tf32_cudnn"):
        tol = settings.check_tol_tf32
    compiled = None
    if "unfold_compiled" in settings.implementations:
        torch._dynamo.reset()  # compile times of this run, not cache hits from an earlier one
        compiled = torch.compile(ops.conv2d_unfold, dynamic=False)
    cases: list[Case] = []
    for index, shape in enumerate(settings.shapes):
        g = torch.Generator(device="cpu").manual_seed(seed * 1000 + index)
        X_cpu = torch.randn(shape.n, shape.c_in, shape.h, shape.w, generator=g)
        K_cpu = torch.randn(shape.c_out, shape.c_in, shape.kh, shape.kw, generator=g)
        ref = F.conv2d(X_cpu.double(), K_cpu.double(), padding=shape.padding, stride=shape.stride)
        X, K = X_cpu.to(devices.place(device)), K_cpu.to(devices.place(device))
        base = {"shape": shape.id, "input": shape.input_text, "kernel": shape.kernel_text,
                "padding": shape.padding, "stride": shape.stride_text, "flops": shape.flops, "gflop": shape.flops / 1e9}
        for impl in settings.implementations:
            case = Case(shape, impl, base | {"impl": impl, "backend": "", "extrapolated": False,
                                             "method": "measured whole", "compile_s": math.nan, "status": "ok"})
            if impl == "loop":
                Xp = F.pad(X, (shape.padding,) * 4) if shape.padding else X
                _loop_case(case, Xp, K, ref, device, settings.loop_budget_s)
            else:
                fn = FUNCS.get(impl, compiled)
                if impl == "unfold_compiled":
                    try:
                        case.row["compile_s"] = time_once(partial(fn, X, K, shape.padding, shape.stride), device)
                    except Exception as err:  # noqa: BLE001 - a compiler failure is a result to record
                        case.row["status"] = (f"compile failed: {type(err).__name__}: "
                                              f"{str(err).splitlines()[0][:200]}")
                        fn = None
                if impl == "library":
                    case.row["backend"] = library_backend(X, K, shape.padding, shape.stride)
                if fn is not None:
                    case.call = partial(fn, X, K, shape.padding, shape.stride)
                    case.row["max_rel_err"] = _rel_err(case.call(), ref)
            if case.row.get("max_rel_err", 0.0) > tol:
                case.row["status"] = f"check failed: max rel err {case.row['max_rel_err']:.3g} > {tol:g}; not timed"
                case.call = None
            cases.append(case)
    return cases


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    with cpu_threads(settings.threads), torch._dynamo.config.patch(recompile_limit=len(settings.shapes) + 8):
        return _run(settings, rec)


def _run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    device = rec.device
    peak = _peak(device, settings)
    rec.log_table("matmul_peak", pd.DataFrame([peak]))
    cases = prepare(settings, device, rec.seed)
    timed = [c for c in cases if c.call is not None]

    def one_round(i: int) -> dict[str, float]:
        for case in timed:
            loop = case.impl == "loop"
            case.timings.append(measure(case.call, device=device, warmup=0 if loop else 1, label=case.impl,
                                        min_run_time=settings.loop_budget_s * 0.75 if loop else settings.min_run_time))
        seconds = {(c.shape.id, c.impl): c.timings[-1].median * c.scale for c in timed}
        return {f"s.{impl}.{shape}": v for (shape, impl), v in seconds.items()} | _claims(seconds, settings, peak)

    rounds = recorded_rounds(rec, one_round)
    rows = []
    for case in cases:
        row = dict(case.row)
        if case.timings:
            timing, how = extrapolate(pool(case.timings), case.part_work, case.full_work)
            if case.impl == "loop":
                row["method"] = (row["method"] if case.scale != 1 else "") + how
            row |= {"median_s": timing.median, "iqr_s": timing.iqr, "rel_spread": timing.rel_spread,
                    "others_cpu": timing.others_cpu, "runs": timing.runs, "calls": timing.calls,
                    "gflops": case.shape.flops / timing.median / 1e9}
        rows.append(row)
    df = pd.DataFrame(rows).reindex(columns=TABLE_COLUMNS)
    per_round = {(c.shape.id, c.impl): [t.median * c.scale for t in c.timings] for c in timed}
    df["speedup_over_loop"] = [_median_ratio(per_round.get((shape, "loop")), per_round.get((shape, impl)))
                               for shape, impl in zip(df["shape"], df["impl"])]
    df["fraction_of_peak"] = df["gflops"] / peak["gflops"]
    rec.log_table("conv_throughput", df)
    return _metrics(df, rounds, peak)


def _median_ratio(slow: list[float] | None, fast: list[float] | None) -> float:
    """The median over rounds of slow / fast, each round's own: the estimator of every judged ratio (``_claims``)."""
    if not slow or not fast:
        return math.nan
    return median([a / b for a, b in zip(slow, fast)])


def _strict(pick, values: list[float]) -> float:
    """min or max that is NaN when any value is (a shape that was not measured is not a best case)."""
    values = [float(v) for v in values]
    return math.nan if any(math.isnan(v) for v in values) else float(pick(values))


def _claims(seconds: dict[tuple[str, str], float], settings: Settings, peak: dict[str, Any]) -> dict[str, float]:
    """The judged ratios, from one round's seconds per call of each (shape, implementation)."""
    claim, lenet = settings.claim_shape, settings.lenet_shapes
    flops = {s.id: s.flops for s in settings.shapes}

    def ratio(slow: str, fast: str, shape: str) -> float:
        return seconds.get((shape, slow), math.nan) / seconds.get((shape, fast), math.nan)

    frac = [flops[s] / seconds.get((s, "library"), math.nan) / 1e9 / peak["gflops"] for s in lenet]
    out = {
        "unfold_over_loop_claim": ratio("loop", "unfold", claim),
        "library_over_loop_claim": ratio("loop", "library", claim),
        "strided_over_loop_claim": ratio("loop", "strided", claim),
        "library_over_unfold_lenet_min": _strict(min, [ratio("unfold", "library", s) for s in lenet]),
        "unfold_compiled_over_unfold_lenet_min": _strict(min, [ratio("unfold", "unfold_compiled", s) for s in lenet]),
        "library_fraction_of_peak_lenet_min": _strict(min, frac),
        "library_fraction_of_peak_lenet_max": _strict(max, frac),
    }
    return out


def _metrics(df: pd.DataFrame, rounds: Rounds, peak: dict[str, Any]) -> dict[str, Any]:
    """The judged ratios with their rounds; per-(impl, shape) figures of the pooled table beside them."""
    out: dict[str, Any] = {"matmul_peak_gflops": peak["gflops"],
                           **rounds.measured(timings_of(METRICS))}
    for r in df.itertuples():
        if isinstance(r.gflops, float) and math.isfinite(r.gflops):
            out[f"gflops.{r.impl}.{r.shape}"] = r.gflops
            out[f"speedup_over_loop.{r.impl}.{r.shape}"] = r.speedup_over_loop
            out[f"fraction_of_peak.{r.impl}.{r.shape}"] = r.fraction_of_peak
    return {k: (float(v) if isinstance(v, float) else v) for k, v in out.items()}
