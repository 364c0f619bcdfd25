"""D2: convolution implementations side by side, over a grid of shapes, against the device's matmul ceiling.

Implementations (same (N, C_i, H, W) x (C_o, C_i, kh, kw) maths, zero padding, a stride per shape, default 1):

- ``loop``: the tutorial's ``corr2d_multi_in_out`` per image (Python loops over channels, rows, columns);
- ``unfold``: im2col by ``F.unfold`` and one matrix product;
- ``strided``: the windows as a strided view (``Tensor.unfold``) contracted by ``einsum``;
- ``library``: ``F.conv2d`` (the backend PyTorch picked is read from the profiler: oneDNN on CPU, cuDNN on CUDA);
- ``unfold_compiled``: ``torch.compile`` of ``unfold`` (compile time measured apart, steady state timed after).

Every implementation is checked against a float64 CPU reference on the same random inputs before it
is timed. Timing goes in rounds: each round times every implementation on every shape in turn, and the
judged ratios (the loop against unfold and the library, the library against unfold) are taken within
each round, then judged on their interval over rounds (``harness.rounds``). The loop is slow: it is
timed on a leading part of the output (whole output rows of the first output channels of the first
images) within a time budget and scaled linearly to the whole output; those rows say ``extrapolated``
and how. A large matrix product, timed in the same run on the same device, is the ceiling that
``fraction_of_peak`` divides by.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from harness import device as devices
from harness import ops
from harness.rounds import Rounds, recorded_rounds
from harness.schema import Strict
from harness.stats import is_finite_number
from harness.timing import (
    Timing,
    busy_note,
    conv_flops,
    cpu_threads,
    extrapolate,
    matmul_peak,
    measure,
    pool,
    time_once,
)

if TYPE_CHECKING:
    from harness.reportkit import RunView
    from harness.tracking import Recorder

KIND = "conv_throughput"

Impl = Literal["loop", "unfold", "strided", "library", "unfold_compiled"]
IMPLS: tuple[str, ...] = ("loop", "unfold", "strided", "library", "unfold_compiled")
FUNCS = {"loop": ops.conv2d_loop, "unfold": ops.conv2d_unfold, "strided": ops.conv2d_strided,
         "library": ops.conv2d_library_batched}


class Shape(Strict):
    """One convolution: input (n, c_in, h, w), kernel (c_out, c_in, kh, kw), zero padding on each side, a stride."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    n: int = Field(ge=1, le=4096)
    c_in: int = Field(ge=1, le=4096)
    h: int = Field(ge=1, le=4096)
    w: int = Field(ge=1, le=4096)
    c_out: int = Field(ge=1, le=4096)
    kh: int = Field(ge=1, le=64)
    kw: int = Field(ge=1, le=64)
    padding: int = Field(default=0, ge=0, le=32)
    stride: int | tuple[int, int] = Field(default=1, description="an int, or [s_h, s_w]; each from 1 to 64")
    note: str = ""

    @field_validator("stride", mode="before")
    @classmethod
    def _stride(cls, v: Any) -> Any:
        pair = list(v) if isinstance(v, (list, tuple)) and len(v) == 2 else [v]
        if not all(type(s) is int and 1 <= s <= 64 for s in pair):
            raise ValueError(f"stride must be an int from 1 to 64 or a pair [s_h, s_w] of them (got {repr(v)[:40]})")
        return tuple(pair) if isinstance(v, (list, tuple)) else v

    @model_validator(mode="after")
    def _fits(self) -> Shape:
        if self.kh > self.h + 2 * self.padding or self.kw > self.w + 2 * self.padding:
            raise ValueError(f"kernel {self.kh}x{self.kw} is larger than the padded {self.h}x{self.w} input")
        if self.n * self.c_in * self.h * self.w > 2**28:
            raise ValueError("input larger than 2**28 elements")
        return self

    @property
    def out_hw(self) -> tuple[int, int]:
        return ops.conv_output_hw(self.h, self.w, self.kh, self.kw, self.padding, self.stride)

    @property
    def stride_hw(self) -> tuple[int, int]:
        return (self.stride, self.stride) if isinstance(self.stride, int) else self.stride

    @property
    def stride_text(self) -> str:
        sh, sw = self.stride_hw
        return str(sh) if sh == sw else f"{sh}x{sw}"

    @property
    def flops(self) -> int:
        return conv_flops(self.n, self.c_in, *self.out_hw, self.c_out, self.kh, self.kw)

    @property
    def input_text(self) -> str:
        return f"{self.n}x{self.c_in}x{self.h}x{self.w}"

    @property
    def kernel_text(self) -> str:
        return f"{self.c_out}x{self.c_in}x{self.kh}x{self.kw}"


# The default grid: the tutorial's edge image, one 28x28 image, LeNet's two convolutions at batch 256
# (d2l v2: padding 2 on the first), then larger images and channel counts, then AlexNet's
# stride-4 first layer.
DEFAULT_SHAPES: list[dict[str, Any]] = [
    {"id": "edge_6x8", "n": 1, "c_in": 1, "h": 6, "w": 8, "c_out": 1, "kh": 1, "kw": 2,
     "note": "the tutorial's edge image and its 1x2 kernel"},
    {"id": "img_28x28", "n": 1, "c_in": 1, "h": 28, "w": 28, "c_out": 1, "kh": 5, "kw": 5,
     "note": "one 28x28 image, one 5x5 kernel"},
    {"id": "lenet_c1", "n": 256, "c_in": 1, "h": 28, "w": 28, "c_out": 6, "kh": 5, "kw": 5, "padding": 2,
     "note": "LeNet's first convolution at batch 256"},
    {"id": "lenet_c2", "n": 256, "c_in": 6, "h": 14, "w": 14, "c_out": 16, "kh": 5, "kw": 5,
     "note": "LeNet's second convolution at batch 256"},
    {"id": "img_224_c3", "n": 1, "c_in": 3, "h": 224, "w": 224, "c_out": 64, "kh": 3, "kw": 3, "padding": 1,
     "note": "one 224x224 RGB image, 64 3x3 kernels"},
    {"id": "feat_56_c64", "n": 8, "c_in": 64, "h": 56, "w": 56, "c_out": 64, "kh": 3, "kw": 3, "padding": 1,
     "note": "8 feature maps of 64 channels at 56x56, 64 3x3 kernels"},
    {"id": "alexnet_c1", "n": 1, "c_in": 1, "h": 224, "w": 224, "c_out": 96, "kh": 11, "kw": 11, "padding": 1,
     "stride": 4, "note": "AlexNet's first convolution as d2l 7.1 builds it: 96 11x11 kernels, stride 4, 54x54 out"},
]


class Settings(Strict):
    shapes: list[Shape] = Field(default_factory=lambda: [Shape(**s) for s in DEFAULT_SHAPES], min_length=1)
    implementations: list[Impl] = Field(default=list(IMPLS), min_length=3)
    claim_shape: str = Field(default="img_28x28", description="the shape the loop-vs-vectorised claim is judged on")
    lenet_shapes: list[str] = Field(default=["lenet_c1", "lenet_c2"], min_length=1)
    min_run_time: float = Field(default=0.1, gt=0, le=30,
                                description="seconds of timed blocks per implementation and shape, each round")
    loop_budget_s: float = Field(default=0.25, gt=0, le=120,
                                 description="seconds the loop may take per shape, each round")
    peak_n: int = Field(default=2048, ge=64, le=16384, description="matmul size of the CPU ceiling")
    peak_n_cuda: int = Field(default=8192, ge=64, le=32768, description="matmul size of the CUDA ceiling")
    peak_min_run_time: float = Field(default=1.0, gt=0, le=30)
    threads: int | None = Field(default=None, ge=1, le=1024,
                                description="CPU threads for torch (default: torch's own choice, all cores)")
    check_tol: float = Field(default=1e-4, gt=0, le=0.1, description="max |y - ref| / max |ref|, float32")
    check_tol_tf32: float = Field(default=5e-3, gt=0, le=0.1, description="the same where cuDNN may use TF32")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        ids = [s.id for s in self.shapes]
        if len(set(ids)) != len(ids):
            raise ValueError("shape ids must not repeat")
        if len(set(self.implementations)) != len(self.implementations):
            raise ValueError("implementations must not repeat")
        missing = {"loop", "unfold", "library"} - set(self.implementations)
        if missing:
            raise ValueError(f"implementations must include loop, unfold and library (missing {sorted(missing)})")
        for name in [self.claim_shape, *self.lenet_shapes]:
            if name not in ids:
                raise ValueError(f"shape {name!r} is not in shapes ({', '.join(ids)})")
        return self


# Timings measured in rounds (every implementation on every shape once a round), with their units.
TIMINGS = {"unfold_over_loop_claim": "x", "library_over_loop_claim": "x", "strided_over_loop_claim": "x",
           "library_over_unfold_lenet_min": "x", "unfold_compiled_over_unfold_lenet_min": "x",
           "library_fraction_of_peak_lenet_min": "", "library_fraction_of_peak_lenet_max": ""}
METRICS = set(TIMINGS) | {"matmul_peak_gflops"}
DIRECTIONS = {m: 1 for m in TIMINGS if "_over_" in m}  # speed ratios, first over second: higher is faster
DERIVED = ("gflops.", "speedup_over_loop.", "fraction_of_peak.")  # from the timed rounds (s.*): compared there

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
    loop_s = df[df["impl"] == "loop"].set_index("shape")["median_s"]
    df["speedup_over_loop"] = loop_s.reindex(df["shape"]).to_numpy() / df["median_s"]
    df["fraction_of_peak"] = df["gflops"] / peak["gflops"]
    rec.log_table("conv_throughput", df)
    return _metrics(df, rounds, peak)


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
                           **rounds.measured(TIMINGS)}
    for r in df.itertuples():
        if isinstance(r.gflops, float) and math.isfinite(r.gflops):
            out[f"gflops.{r.impl}.{r.shape}"] = r.gflops
            out[f"speedup_over_loop.{r.impl}.{r.shape}"] = r.speedup_over_loop
            out[f"fraction_of_peak.{r.impl}.{r.shape}"] = r.fraction_of_peak
    return {k: (float(v) if isinstance(v, float) else v) for k, v in out.items()}


# ---- report ------------------------------------------------------------------------


def throughput_table(df: pd.DataFrame) -> pd.DataFrame:
    """One unit's logged table as the report shows it: numbers, with their units in the column names."""
    runs = df["runs"].astype(float)
    return pd.DataFrame({
        "shape": df["shape"], "input": df["input"], "kernel": df["kernel"], "pad": df["padding"],
        "stride": df["stride"] if "stride" in df else "1", "impl": df["impl"], "backend": df["backend"].fillna(""),
        "time (s)": df["median_s"], "IQR/median": df["rel_spread"],
        "others (share of CPU)": df["others_cpu"] if "others_cpu" in df else math.nan,
        "runs": runs, "calls per run": df["calls"] / runs.where(runs > 0),
        "GFLOP/s": df["gflops"], "x loop": df["speedup_over_loop"], "of peak (fraction)": df["fraction_of_peak"],
        "extrapolated": df["extrapolated"].astype(bool), "check (max rel err)": df["max_rel_err"].astype(float),
        "compile (s)": df["compile_s"].astype(float), "compile pays after (calls)": _breakeven(df),
        "status": df["status"],
    })


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


def _shown(table: pd.DataFrame) -> str:
    """The throughput table of one seed as markdown."""
    from harness.reportkit import md_table, percent, seconds, sig

    shown = table.assign(impl=[f"{i} ({b})" if b else i for i, b in
                                                      zip(table["impl"], table["backend"])]).drop(columns=["backend"])
    return md_table(shown, fmt={"time (s)": seconds, "IQR/median": percent(1), "others (share of CPU)": percent(),
                                "runs": sig(thousands=True), "calls per run": sig(thousands=True), "GFLOP/s": sig(),
                                "x loop": _x, "of peak (fraction)": percent(2),
                                "extrapolated": lambda e: "yes" if e else "no",
                                "check (max rel err)": lambda v: f"{v:.1e}" if is_finite_number(v) else "-",
                                "compile (s)": seconds, "compile pays after (calls)": _calls},
                    headers={"time (s)": "time", "others (share of CPU)": "others", "of peak (fraction)": "of peak",
                             "compile (s)": "compile", "compile pays after (calls)": "compile pays after"})


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
        return view.interval(rounds).text(TIMINGS[metric]) if rounds else _x(m.get(metric))

    return (f"On `{claim}`, unfold is **{iv('unfold_over_loop_claim')}** and the library convolution "
            f"**{iv('library_over_loop_claim')}** as fast as the loop (ratios taken within each round). On "
            f"LeNet's layers the library convolution reaches {fracs} of the matmul ceiling (pooled rounds); the "
            f"slower of its two ratios to unfold is {iv('library_over_unfold_lenet_min')}.")


def _x(v: Any) -> str:
    if not is_finite_number(v):
        return "-"
    return f"{v:,.0f}x" if v >= 10 else f"{v:.2g}x"


def section(view: RunView) -> str:
    """Report: the ceiling, the throughput table and a GFLOP/s chart per device, and how the loop was timed."""
    # report-only: matplotlib and MLflow (through reportkit) take seconds to import; `harness list` needs neither
    import matplotlib.pyplot as plt

    from harness.reportkit import of_seed, save_figure

    parts: list[str] = []
    shown = tables(view)
    devices = list(view.measured)
    fig, axes = plt.subplots(len(devices), 1, figsize=(8.5, 3.8 * len(devices)), squeeze=False)
    for ax, device in zip(axes[:, 0], devices):
        for seed in view.measured[device]:
            peak = view.table("matmul_peak", device, seed).iloc[0]
            df = view.table("conv_throughput", device, seed)
            parts += [f"### {device} (seed {seed}): convolution throughput", "",
                      *_busy(df, peak),
                      _ceiling_text(peak, device), "",
                      _summary(view, view.measured[device][seed], view.spec["settings"]), "",
                      _shown(of_seed(shown[f"throughput-{device}"], seed)), ""]
            extra = df[df["extrapolated"].astype(bool)]
            if not extra.empty:
                parts += ["The loop (`corr2d_multi_in_out` per image) was **extrapolated** on "
                          + ", ".join(f"`{s}`" for s in extra["shape"])
                          + f": it ran within a budget of {view.spec['settings']['loop_budget_s']} s a shape and "
                          "round on a leading part of the output (whole rows, then channels, then images), checked "
                          "against the reference there, and its median time was scaled linearly to the whole output. "
                          "Its time, speed-up and GFLOP/s on those shapes are estimates, not measurements:", ""]
                parts += [f"- `{r.shape}`: {r.method}" for r in extra.itertuples()] + [""]
            if "unfold_compiled" in set(df["impl"]):
                parts += ["`unfold_compiled` is `torch.compile(conv2d_unfold, dynamic=False)`, compiled once for each "
                          "shape (after a `torch._dynamo.reset()` at the start of the run, its cache holding every "
                          "shape); `compile` is that first call, excluded from its time, in "
                          "this process and with whatever TorchInductor's on-disk cache already held (a cold cache "
                          "takes seconds longer). `compile pays after` is compile time / (eager unfold - compiled).",
                          ""]
            failed = df[df["status"] != "ok"]
            parts += [f"- `{r.shape}` / `{r.impl}`: {r.status}" for r in failed.itertuples()]
            if not failed.empty:
                parts.append("")
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
    parts.insert(0, save_figure(fig, view, "gflops-" + "-".join(devices), "GFLOP/s by implementation and shape") + "\n")
    return "\n".join(parts)
