"""The convolution-throughput kind's settings and metric table.

Without torch: validating a spec reads this, not the measurement (``measure``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.kinds.base import Metric
from harness.machine.work import conv_flops, conv_output_hw
from harness.schema import Strict

Impl = Literal["loop", "unfold", "strided", "library", "unfold_compiled"]
IMPLS: tuple[str, ...] = ("loop", "unfold", "strided", "library", "unfold_compiled")


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
        return conv_output_hw(self.h, self.w, self.kh, self.kw, self.padding, self.stride)

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


class Settings(Strict):
    shapes: list[Shape] = Field(min_length=1, description="the grid of convolutions (the spec holds it)")
    implementations: list[Impl] = Field(default=list(IMPLS), min_length=3)
    claim_shape: str = Field(description="the shape the loop-vs-vectorised claim is judged on")
    lenet_shapes: list[str] = Field(min_length=1, description="LeNet's layers: the shapes the library is judged on")
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


def _claim(name: str, meaning: str, unit: str = "x", headline: bool = False) -> Metric:
    """A ratio judged over rounds: first implementation's speed over the second's (or over the ceiling)."""
    return Metric(name, unit, "higher", meaning, timed=True, headline=headline)


METRICS: tuple[Metric, ...] = (
    _claim("unfold_over_loop_claim", "the loop's seconds over unfold's on the claim shape, within each round"),
    _claim("library_over_loop_claim", "the loop's seconds over the library's on the claim shape, within each round",
           headline=True),
    _claim("strided_over_loop_claim", "the loop's seconds over the strided einsum's on the claim shape, each round"),
    _claim("library_over_unfold_lenet_min", "unfold's seconds over the library's, the least over LeNet's shapes"),
    _claim("unfold_compiled_over_unfold_lenet_min", "unfold's seconds over compiled unfold's, the least over "
                                                    "LeNet's shapes"),
    _claim("library_fraction_of_peak_lenet_min", "the library's GFLOP/s over the ceiling's, the least over LeNet's "
                                                 "shapes", unit="fraction"),
    _claim("library_fraction_of_peak_lenet_max", "the library's GFLOP/s over the ceiling's, the most over LeNet's "
                                                 "shapes", unit="fraction"),
    Metric("matmul_peak_gflops", "GFLOP/s", "higher", "GFLOP/s of the ceiling's matrix product, timed in the run"),
    Metric("s.{impl}.{shape}", "s", "lower", "seconds of one call on a shape, each round (the loop's scaled to the "
                                             "whole output)", timed=True),
    Metric("gflops.{impl}.{shape}", "GFLOP/s", "higher", "the shape's FLOP over the pooled seconds per call",
           derived_from="s.{impl}.{shape}"),
    Metric("speedup_over_loop.{impl}.{shape}", "x", "higher", "the median over rounds of the loop's seconds over this "
           "implementation's in the same round (the judged ratios' estimator)",
           derived_from="s.{impl}.{shape}"),
    Metric("fraction_of_peak.{impl}.{shape}", "fraction", "higher", "GFLOP/s over the ceiling's",
           derived_from="s.{impl}.{shape}"),
)
