"""The one place that talks to an accelerator: synchronise, read the clock, memory, the device's name, cuDNN switches.

Timing code reads time only through ``Device.clock()``, which first waits for the work queued on the device (a CUDA
kernel returns before it has run). ``get(name)`` gives the device a unit runs on; ``use(fake)`` puts a stand-in such
as ``FakeCuda`` in its place for tests, and nothing measured on a fake is recorded (``assert_real``).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import torch

from harness.machine import PEAK_MEMORY  # noqa: F401 - the metric a unit records on CUDA


@cache
def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class FakeDeviceError(RuntimeError):
    """A measurement on a fake device was about to be recorded."""


class Device:
    """A torch device and the calls that differ between the CPU and CUDA."""

    fake = False

    def __init__(self, name: str) -> None:
        self.name = name  # "cpu" or "cuda": what specs and records call it
        self.torch = torch.device(name)  # where its tensors live
        self.is_cuda = self.torch.type == "cuda"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def available(self) -> bool:
        return not self.is_cuda or torch.cuda.is_available()

    def synchronize(self) -> None:
        """Wait until the work queued on the device has run (a no-op on the CPU, where calls return when done)."""
        if self.is_cuda:
            torch.cuda.synchronize(self.torch)

    def clock(self) -> float:
        """Seconds on a monotonic clock, read after the queued work has run: every timed region reads this."""
        self.synchronize()
        return time.perf_counter()

    def model(self) -> str:
        if self.is_cuda:
            return torch.cuda.get_device_name(self.torch) if self.available() else "none"
        return cpu_model()

    def reset_peak_memory(self) -> None:
        if self.is_cuda and self.available():
            torch.cuda.reset_peak_memory_stats(self.torch)

    def peak_memory_bytes(self) -> int | None:
        """The most memory torch's allocator held on the device since ``reset_peak_memory``; None on the CPU, whose
        memory is the process's and not torch's alone."""
        if self.is_cuda and self.available():
            return int(torch.cuda.max_memory_allocated(self.torch))
        return None

    def total_memory_bytes(self) -> int | None:
        if self.is_cuda and self.available():
            return int(torch.cuda.get_device_properties(self.torch).total_memory)
        return None

    def switches(self) -> dict[str, Any]:
        """The kernel-choice switches a CUDA result depends on (TF32 on tensor cores, cuDNN's modes)."""
        if not self.is_cuda:
            return {}
        return {"tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
                "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
                "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
                "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG", "unset")}

    def set_deterministic(self, deterministic: bool) -> None:
        """cuDNN's deterministic mode (no autotuning); torch's own switch is the caller's (it covers every device)."""
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic


class FakeCuda(Device):
    """A CUDA device for tests, computing on the CPU: it takes CUDA's branches and records every call it gets."""

    fake = True

    def __init__(self) -> None:
        super().__init__("cpu")
        self.name, self.is_cuda = "cuda", True
        self.calls: list[str] = []
        self.deterministic: bool | None = None

    def available(self) -> bool:
        return True

    def synchronize(self) -> None:
        self.calls.append("synchronize")

    def clock(self) -> float:
        self.synchronize()
        self.calls.append("clock")
        return time.perf_counter()

    def model(self) -> str:
        return "Fake CUDA device (the CPU)"

    def reset_peak_memory(self) -> None:
        self.calls.append("reset_peak_memory")

    def peak_memory_bytes(self) -> int | None:
        self.calls.append("peak_memory_bytes")
        return 123_456_789

    def total_memory_bytes(self) -> int | None:
        return 8 * 2**30

    def switches(self) -> dict[str, Any]:
        self.calls.append("switches")
        return {"tf32_matmul": False, "tf32_cudnn": True, "cudnn_deterministic": bool(self.deterministic),
                "cudnn_benchmark": not self.deterministic,
                "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG", "unset")}

    def set_deterministic(self, deterministic: bool) -> None:
        self.calls.append("set_deterministic")
        self.deterministic = deterministic


_stand_ins: dict[str, Device] = {}


def get(name: str | torch.device) -> Device:
    """The device called ``name`` ("cpu", "cuda"), or the stand-in a test put in its place."""
    key = (name if isinstance(name, str) else name.type).split(":")[0]
    return _stand_ins.get(key) or Device(key)


def place(name: str | torch.device) -> torch.device:
    """Where the tensors of device ``name`` live (the CPU for a fake)."""
    return get(name).torch


@contextmanager
def use(stand_in: Device) -> Iterator[Device]:
    """Put ``stand_in`` in place of the device of its name until the block ends (tests)."""
    before = _stand_ins.get(stand_in.name)
    _stand_ins[stand_in.name] = stand_in
    try:
        yield stand_in
    finally:
        if before is None:
            _stand_ins.pop(stand_in.name, None)
        else:
            _stand_ins[stand_in.name] = before


def assert_real(name: str) -> None:
    """Refuse to record what a fake device measured."""
    if get(name).fake:
        raise FakeDeviceError(f"device {name!r} is a fake ({get(name)!r}): nothing measured on it is recorded")
