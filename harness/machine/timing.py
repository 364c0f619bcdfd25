"""Timing the way benchmark tools do: warm-up, CUDA synchronisation, enough repeats, median and spread.

``measure`` wraps ``torch.utils.benchmark``'s ``blocked_autorange`` on all of torch's threads and reads its clock
through ``harness.machine.device``; ``matmul_peak`` is the ceiling a convolution's GFLOP/s is set against;
``conv_flops``, ``training_flops`` and ``extrapolate`` count work and scale a timed part of a loop to the whole.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch

from harness.machine import device as devices
from harness.machine.work import conv_flops  # noqa: F401 - counted here too, as the docstring says

if TYPE_CHECKING:
    from torch.utils import benchmark


def _quiet_cuda_home_notice() -> None:
    """Keep torch's "No CUDA runtime is found, using CUDA_HOME=..." off a CPU-only run.

    torch.utils.cpp_extension logs it when it is imported (by torch.utils.benchmark's C++ timer support, imported
    by ``_benchmark`` below, and by torch.compile's C++ backend) on a machine that has nvcc on its PATH but no
    usable GPU. It concerns building CUDA extensions, which the harness never does; only that module's logger is
    turned down, and only where CUDA is unavailable. Done when this module is imported (cheap: it makes no CUDA
    context), which every kind that times or compiles does at its own import, before either of those imports.
    """
    if not torch.cuda.is_available():
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


_quiet_cuda_home_notice()


def _benchmark() -> ModuleType:
    """torch.utils.benchmark, imported on first use (it imports torch.utils.cpp_extension), so commands that time
    nothing (``harness list``) do not pay for it."""
    from torch.utils import benchmark

    return benchmark


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one statement: torch.utils.benchmark's Measurement of the timed blocks, and what else
    was seen meanwhile. Median, IQR and mean are the Measurement's (over the per-call time of each block), so a
    single slow block moves neither median nor IQR."""

    measurement: benchmark.Measurement
    number_per_run: int  # calls a block, as timed (a merged Measurement counts per call)
    calls: int  # calls timed, all blocks together
    total_s: float  # time spent in the timed blocks
    others_cpu: float = math.nan  # share of the machine's CPU other processes took meanwhile (OtherCpu)
    faults_per_call: float = math.nan  # minor page faults a call, counted over one extra block (count_faults)

    @classmethod
    def of(cls, times: list[float], number_per_run: int = 1, label: str = "measure", **extra: Any) -> Timing:
        """A timing from per-call block times (``number_per_run`` calls a block)."""
        benchmark = _benchmark()
        m = benchmark.Measurement(number_per_run, [t * number_per_run for t in times],
                                  benchmark.utils.common.TaskSpec(stmt="fn()", setup="pass", label=label))
        return cls(m, number_per_run, calls=len(times) * number_per_run, total_s=float(sum(times) * number_per_run),
                   **extra)

    @property
    def times(self) -> list[float]:
        return self.measurement.times

    median = property(lambda self: float(self.measurement.median))
    iqr = property(lambda self: float(self.measurement.iqr))
    mean = property(lambda self: float(self.measurement.mean))
    min = property(lambda self: float(min(self.times)))
    max = property(lambda self: float(max(self.times)))
    runs = property(lambda self: len(self.measurement.raw_times), doc="timed blocks")

    @property
    def rel_spread(self) -> float:
        """IQR over median: 0.05 means the middle half of the blocks lie within 5% of the median's size."""
        return self.iqr / self.median if self.median > 0 else math.nan

    def scaled(self, factor: float) -> Timing:
        """The same timing for ``factor`` times the work (linear extrapolation)."""
        m = self.measurement
        scaled = _benchmark().Measurement(m.number_per_run, [t * factor for t in m.raw_times], m.task_spec)
        return Timing(scaled, self.number_per_run, self.calls, self.total_s, self.others_cpu,
                      self.faults_per_call * factor)

    def as_dict(self) -> dict[str, Any]:
        return {"median": self.median, "iqr": self.iqr, "mean": self.mean, "min": self.min, "max": self.max,
                "runs": self.runs, "number_per_run": self.number_per_run, "total_s": self.total_s,
                "others_cpu": self.others_cpu, "faults_per_call": self.faults_per_call, "calls": self.calls,
                "rel_spread": self.rel_spread}


def pool(timings: list[Timing]) -> Timing:
    """Several timings of one statement (rounds taken at different moments) as one: blocks pooled with
    ``Measurement.merge``.

    The pooled median resists a slow drift of the machine that spoils one round; ``others_cpu`` is the
    worst round's.
    """
    if not timings:
        raise ValueError("nothing to pool")
    merged = _benchmark().Measurement.merge([t.measurement for t in timings])
    if len(merged) != 1:
        raise ValueError("pool() takes timings of one statement")
    others = [t.others_cpu for t in timings if math.isfinite(t.others_cpu)]
    faults = [t.faults_per_call for t in timings if math.isfinite(t.faults_per_call)]
    return Timing(merged[0], timings[0].number_per_run, calls=sum(t.calls for t in timings),
                  total_s=sum(t.total_s for t in timings),
                  others_cpu=max(others) if others else math.nan,
                  faults_per_call=sum(faults) / len(faults) if faults else math.nan)


@contextmanager
def cpu_threads(n: int | None) -> Iterator[int]:
    """Run with ``n`` torch CPU threads (None: leave torch's setting), restored afterwards."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _cpu_ticks() -> tuple[int, int, int] | None:
    """(busy ticks of the whole machine, all ticks of the machine, ticks this process used), Linux only."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = int(fields[11]) + int(fields[12])  # utime + stime, all threads
    except (OSError, ValueError, IndexError):
        return None
    total = sum(vals)
    return total - vals[3] - vals[4], total, own


class OtherCpu:
    """The share of the machine's CPU time that other processes (and the hypervisor's steal) took meanwhile.

    ``with OtherCpu() as oc: ...`` then ``oc.share``: 0 on a quiet machine, 0.5 when others used half of
    all cores; NaN where /proc is not there. A timing with a high share measured a shared machine.
    """

    def __enter__(self) -> OtherCpu:
        self._start = _cpu_ticks()
        self.share = math.nan
        return self

    def __exit__(self, *exc: object) -> None:
        end = _cpu_ticks()
        if self._start is None or end is None:
            return
        busy, total, own = (b - a for a, b in zip(self._start, end))
        if total > 0:
            self.share = min(1.0, max(0.0, (busy - own) / total))


def minor_faults() -> int | None:
    """Minor page faults of this process so far (memory touched for the first time); None where not counted."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(fn: Callable[[], Any], min_run_time: float = 0.5, device: str = "cpu", warmup: int = 1,
            num_threads: int | None = None, label: str = "", min_runs: int = 5,
            count_faults: bool = False) -> Timing:
    """Time ``fn()`` with torch.utils.benchmark: ``warmup`` calls first, then blocked_autorange.

    The median and IQR are of per-call times of the blocks (a block is ``number_per_run`` calls),
    so a single slow outlier block moves neither. Where ``min_run_time`` held fewer than ``min_runs``
    blocks, more blocks of the same size are timed, so the spread always rests on several blocks.
    Every clock read goes through the device's ``clock()``, which synchronises CUDA first. ``count_faults`` runs
    one more block, untimed, and counts its page faults a call: where the allocator hands memory back to the OS and
    touches it afresh every call, the time measures that as much as the arithmetic.
    """
    if min_run_time <= 0:
        raise ValueError("min_run_time must be positive")
    benchmark, dev = _benchmark(), devices.get(device)
    for _ in range(warmup):
        fn()
    dev.synchronize()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, label=label or "measure", timer=dev.clock,
                            num_threads=num_threads or torch.get_num_threads())
    with OtherCpu() as others:
        blocks = [timer.blocked_autorange(min_run_time=min_run_time)]
        n = blocks[0].number_per_run
        while sum(len(b.raw_times) for b in blocks) < min_runs:
            blocks.append(timer.timeit(n))
    faults = math.nan
    if count_faults and (before := minor_faults()) is not None:
        for _ in range(n):
            fn()
        dev.synchronize()
        faults = (minor_faults() - before) / n
    m = benchmark.Measurement.merge(blocks)[0] if len(blocks) > 1 else blocks[0]
    calls = sum(len(b.raw_times) for b in blocks) * n
    return Timing(m, int(n), calls=calls, total_s=float(sum(sum(b.raw_times) for b in blocks)),
                  others_cpu=others.share, faults_per_call=faults)


def time_once(fn: Callable[[], Any], device: str = "cpu") -> float:
    """Wall seconds of one synchronised call (for compile time and probes, not for steady state)."""
    dev = devices.get(device)
    t0 = dev.clock()
    fn()
    return dev.clock() - t0


def training_flops(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOP of one training step (forward, cross-entropy, backward) on the batch ``x``, by torch.utils.flop_counter.

    The counter sees matrix products and convolutions (a multiply-add counted as 2), not the element-wise work.
    """
    from torch.utils.flop_counter import FlopCounterMode  # imported only when FLOP are counted

    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(net(x), y).backward()
    net.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def matmul_flops(n: int, m: int | None = None, k: int | None = None) -> int:
    """2*n*m*k for an (n, k) x (k, m) product (square by default)."""
    m = n if m is None else m
    k = n if k is None else k
    return 2 * n * m * k


def matmul_peak(device: str = "cpu", n: int = 2048, dtype: torch.dtype = torch.float32,
                min_run_time: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """GFLOP/s of an n x n x n matrix product on ``device``: the measured ceiling for that device.

    The TF32 switches are recorded: with them on, a CUDA float32 product (or convolution) may run
    on tensor cores at reduced precision and beat a strict float32 ceiling.
    """
    g = torch.Generator(device="cpu").manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=dtype).to(devices.place(device))
    b = torch.randn(n, n, generator=g, dtype=dtype).to(devices.place(device))
    t = measure(lambda: torch.mm(a, b), min_run_time=min_run_time, device=device, warmup=2, label="matmul peak")
    flops = matmul_flops(n)
    return {"device": device, "n": n, "dtype": str(dtype).removeprefix("torch."), "gflop": flops / 1e9,
            "median_s": t.median, "iqr_s": t.iqr, "runs": t.runs, "calls": t.calls,
            "gflops": flops / t.median / 1e9, "gflops_at_min": flops / t.min / 1e9,
            "threads": torch.get_num_threads(), "others_cpu": t.others_cpu,
            "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32)} | devices.get(device).switches()


def extrapolate(part: Timing, part_work: float, full_work: float) -> tuple[Timing, str]:
    """Scale a timing of ``part_work`` units to ``full_work`` units, linearly; the method in words."""
    if part_work <= 0 or full_work < part_work:
        raise ValueError("need 0 < part_work <= full_work")
    factor = full_work / part_work
    if factor == 1:
        return part, "measured whole"
    return part.scaled(factor), (f"extrapolated linearly: timed {part_work:,.0f} of {full_work:,.0f} "
                                 f"work units ({100 / factor:.3g}%), x{factor:,.4g}")


def profile_ops(fn: Callable[[], Any], top: int = 12, device: str = "cpu") -> list[dict[str, Any]]:
    """Where ``fn``'s time goes, by ``torch.profiler``: the ``top`` operators by self time (CPU, and CUDA where it
    ran), each with its input shapes, calls, self seconds and share of all operators' self time; then the rest."""
    from torch.profiler import ProfilerActivity, profile  # imported only when an epoch is profiled

    dev = devices.get(device)
    cuda = dev.is_cuda
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, record_shapes=True) as prof:
        fn()
        dev.synchronize()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    ops = [e for e in prof.key_averages(group_by_input_shape=True) if getattr(e, key) > 0]
    ops.sort(key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in ops) / 1e6
    rows = [{"op": e.key, "input_shapes": str([s for s in e.input_shapes if s]), "calls": e.count,
             "self_s": getattr(e, key) / 1e6}
            for e in ops[:top]]
    rest = ops[top:]
    rows.append({"op": f"({len(rest)} other operators)", "input_shapes": "", "calls": sum(e.count for e in rest),
                 "self_s": sum(getattr(e, key) for e in rest) / 1e6})
    return [r | {"share": r["self_s"] / total if total else math.nan} for r in rows]
