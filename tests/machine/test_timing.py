"""Timing helpers: medians and spreads from torch.utils.benchmark, FLOP counts, linear extrapolation.

No test compares a time with a threshold: times depend on the machine and its load.
"""

from __future__ import annotations

import contextlib
import math
import os

import pytest
import torch

from harness.machine import device as devices
from harness.machine import timing as T
from harness.machine.device import Device, FakeCuda
from harness.machine.timing import (
    Timing,
    conv_flops,
    cpu_threads,
    extrapolate,
    matmul_flops,
    matmul_peak,
    measure,
    profile_ops,
    time_once,
)


def test_measure_returns_positive_median_and_spread():
    x = torch.randn(64, 64)
    t = measure(lambda: x @ x, min_run_time=0.02)
    assert t.median > 0 and t.iqr >= 0 and t.min <= t.median <= t.max
    assert t.runs >= 1 and t.number_per_run >= 1 and t.calls == t.runs * t.number_per_run
    assert t.total_s > 0 and t.rel_spread >= 0
    assert set(t.as_dict()) >= {"median", "iqr", "runs", "calls", "rel_spread"}


def test_measure_times_at_least_min_runs_blocks():
    import time

    t = measure(lambda: time.sleep(0.004), min_run_time=0.001, min_runs=4)
    assert t.runs >= 4 and t.median >= 0.004


def test_measure_calls_warmup_then_timed_blocks():
    calls = []
    t = measure(lambda: calls.append(1), min_run_time=0.01, warmup=3)
    assert len(calls) >= 3 + t.calls


@pytest.mark.skipif(T.minor_faults() is None, reason="no page fault count on this platform")
def test_measure_counts_page_faults_of_fresh_memory_only_when_asked():
    fresh = measure(lambda: torch.ones(16_000_000), min_run_time=0.05, count_faults=True)  # 64 MB: mmap'd anew
    assert fresh.faults_per_call > 64e6 / 4096 / 2
    x = torch.randn(64, 64)
    assert measure(lambda: x @ x, min_run_time=0.02, count_faults=True).faults_per_call < 10
    assert math.isnan(measure(lambda: x @ x, min_run_time=0.02).faults_per_call)
    assert T.pool([fresh, fresh]).faults_per_call == fresh.faults_per_call


def test_measure_rejects_non_positive_run_time():
    with pytest.raises(ValueError):
        measure(lambda: None, min_run_time=0)


def test_time_once_is_one_call_between_two_reads_of_the_device_s_clock():
    class Ticking(Device):
        """A device whose clock reads 10 s, then 10.25 s."""

        def __init__(self):
            super().__init__("cpu")
            self.reads = iter([10.0, 10.25])

        def clock(self):
            return next(self.reads)

    calls = []
    with devices.use(Ticking()):
        assert time_once(lambda: calls.append(1)) == 0.25 and calls == [1]


def test_time_once_reads_a_sleep_s_length():
    import time

    assert 0.05 <= time_once(lambda: time.sleep(0.05)) < 5


def test_conv_flops_counts_multiply_adds_twice():
    assert conv_flops(1, 1, 1, 1, 1, 1, 1) == 2
    # LeNet's second convolution at batch 256: 256 images, 16x10x10 outputs, 6x5x5 products each
    assert conv_flops(256, 6, 10, 10, 16, 5, 5) == 2 * 256 * 16 * 10 * 10 * 6 * 5 * 5
    with pytest.raises(ValueError):
        conv_flops(-1, 1, 1, 1, 1, 1, 1)


def test_matmul_flops():
    assert matmul_flops(4) == 128 and matmul_flops(2, 3, 5) == 60


def test_matmul_peak_is_flops_over_median():
    p = matmul_peak("cpu", n=128, min_run_time=0.02)
    assert p["gflops"] == pytest.approx(matmul_flops(128) / p["median_s"] / 1e9)
    assert p["gflops_at_min"] >= p["gflops"] > 0 and p["device"] == "cpu" and p["dtype"] == "float32"


def test_extrapolate_scales_linearly_and_says_how():
    part = Timing.of([0.4, 0.5, 0.6])
    assert (part.median, part.min, part.max, part.runs, part.total_s) == pytest.approx((0.5, 0.4, 0.6, 3, 1.5))
    assert part.iqr == pytest.approx(0.1)
    full, how = extrapolate(part, 10, 40)
    assert full.median == 2.0 and full.iqr == pytest.approx(0.4) and full.min == pytest.approx(1.6)
    assert full.runs == 3 and "extrapolated linearly" in how and "25%" in how and "x4" in how
    same, how = extrapolate(part, 7, 7)
    assert same is part and how == "measured whole"
    with pytest.raises(ValueError):
        extrapolate(part, 0, 10)
    with pytest.raises(ValueError):
        extrapolate(part, 10, 5)


def test_pool_merges_the_blocks_of_rounds():
    a, b = Timing.of([1.0, 2.0], number_per_run=2), Timing.of([3.0, 4.0, 5.0], number_per_run=2)
    both = T.pool([a, b])
    assert both.times == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0]) and both.median == pytest.approx(3.0)
    assert both.calls == 10 and both.total_s == pytest.approx(30.0) and both.runs == 5


def test_cpu_threads_restores():
    before = torch.get_num_threads()
    with cpu_threads(1) as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None) as n:
        assert n == before


def ticks(*readings):
    """A stand-in for ``_cpu_ticks``: (machine busy, machine total, this process) at each call."""
    it = iter(readings)
    return lambda: next(it)


def test_other_cpu_share_is_the_busy_time_that_was_not_ours(monkeypatch):
    from harness.machine.timing import OtherCpu

    monkeypatch.setattr(T, "_cpu_ticks", ticks((100, 1000, 10), (160, 1100, 30)))
    with OtherCpu() as oc:
        pass
    assert oc.share == pytest.approx((60 - 20) / 100)
    monkeypatch.setattr(T, "_cpu_ticks", ticks((0, 0, 0), (10, 100, 10)))
    x = torch.randn(32, 32)
    assert measure(lambda: x @ x, min_run_time=0.01).others_cpu == 0.0  # all the busy time was ours
    monkeypatch.setattr(T, "_cpu_ticks", ticks(None, (10, 100, 10)))
    with OtherCpu() as oc:
        pass
    assert math.isnan(oc.share)  # no /proc: no share


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc on this platform")
def test_other_cpu_reads_proc():
    from harness.machine.timing import OtherCpu

    with OtherCpu() as oc:
        sum(i * i for i in range(200_000))
    assert 0.0 <= oc.share <= 1.0


def test_busy_note():
    from harness.reading.markdown import busy_note

    assert busy_note([0.0, 0.05]) == "" and busy_note([]) == "" and busy_note([math.nan]) == ""
    assert "shared" in busy_note([0.0, 0.5]) and "50%" in busy_note([math.nan, 0.5])


def test_profile_ops_ranks_operators_by_self_time_and_keeps_the_rest_in_one_row():
    x = torch.rand(128, 128)
    rows = profile_ops(lambda: [torch.relu(x @ x) for _ in range(5)], top=2)
    assert [r["op"] for r in rows][0] == "aten::mm" and len(rows) == 3  # the product outweighs the rest
    assert rows[0]["input_shapes"] == "[[128, 128], [128, 128]]" and rows[0]["calls"] == 5
    assert rows[0]["self_s"] >= rows[1]["self_s"] and rows[-1]["op"].endswith("other operators)")
    assert sum(r["share"] for r in rows) == pytest.approx(1)


def test_profile_ops_on_cuda_ranks_by_device_time_after_synchronising():
    """CUDA's branch: the operators' device time, read after the device is synchronised; a fake CUDA device computes
    on the CPU, so no operator has device time and the table holds only the empty rest."""
    x = torch.rand(16, 16)
    no_gpu = pytest.warns(UserWarning, match="CUDA is not available")  # torch turns CUDA profiling off
    with devices.use(FakeCuda()) as fake, contextlib.nullcontext() if torch.cuda.is_available() else no_gpu:
        rows = profile_ops(lambda: x @ x, device="cuda")
    assert "synchronize" in fake.calls
    assert [(r["op"], r["calls"], r["self_s"]) for r in rows] == [("(0 other operators)", 0, 0.0)]
