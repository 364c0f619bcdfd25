"""The convolution implementations of the throughput experiment as pytest-benchmark benchmarks.

Run with ``pytest --benchmark-only tests/bench`` (``nox -s bench`` saves the JSON). One group per
shape; CUDA cases are skipped without a GPU. Each case is checked against a float64 F.conv2d before
it is timed. The tutorial's loop runs only on the small shapes (the throughput spec extrapolates it on
the others); ``torch.compile`` is compiled before timing, its compile time kept in ``extra_info``.
On CUDA every timed call ends with the device's synchronisation (``harness.machine.device``), so it includes the launch
and the wait.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harness.book import ops
from harness.kinds.conv_throughput.settings import Settings, Shape
from harness.machine import device as devices
from harness.specs.spec import load_spec

SPEC = load_spec(Path(__file__).parents[2] / "experiments" / "conv-throughput.yaml")
SHAPES = Settings.model_validate(SPEC.settings).shapes  # the spec's grid
LOOP_SHAPES = {"edge_6x8", "img_28x28"}
IMPLS = ["loop", "unfold", "strided", "library", "unfold_compiled"]
FUNCS = {"loop": ops.conv2d_loop, "unfold": ops.conv2d_unfold, "strided": ops.conv2d_strided,
         "library": ops.conv2d_library_batched}
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU (torch.cuda.is_available() is False)")
DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=CUDA)]


def cases():
    for shape in SHAPES:
        for impl in IMPLS:
            if impl == "loop" and shape.id not in LOOP_SHAPES:
                continue
            yield pytest.param(shape, impl, id=f"{shape.id}-{impl}")


def _inputs(shape: Shape) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(shape.n, shape.c_in, shape.h, shape.w, generator=g)
    K = torch.randn(shape.c_out, shape.c_in, shape.kh, shape.kw, generator=g)
    return X, K


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape,impl", cases())
def test_conv(benchmark, shape: Shape, impl: str, device: str):
    X_cpu, K_cpu = _inputs(shape)
    ref = F.conv2d(X_cpu.double(), K_cpu.double(), padding=shape.padding, stride=shape.stride)
    dev = devices.get(device)
    X, K = X_cpu.to(dev.torch), K_cpu.to(dev.torch)
    benchmark.group = (f"{shape.id} ({shape.input_text} * {shape.kernel_text}, pad {shape.padding}, "
                       f"stride {shape.stride_text})")
    benchmark.extra_info.update({"shape": shape.id, "impl": impl, "device": device, "flops": shape.flops})
    if impl == "unfold_compiled":
        torch._dynamo.reset()
        fn = torch.compile(ops.conv2d_unfold, dynamic=False)
        t0 = dev.clock()
        try:
            fn(X, K, shape.padding, shape.stride)
        except Exception as err:  # noqa: BLE001
            pytest.skip(f"torch.compile failed here: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
        benchmark.extra_info["compile_s"] = dev.clock() - t0
    else:
        fn = FUNCS[impl]
    y = fn(X, K, shape.padding, shape.stride)
    tol = 5e-3 if dev.switches().get("tf32_cudnn") else 1e-4
    err = float((y.double().cpu() - ref).abs().max() / ref.abs().max())
    assert err <= tol, f"{impl} disagrees with F.conv2d: max relative error {err:.3g}"

    def call():
        fn(X, K, shape.padding, shape.stride)
        dev.synchronize()

    call()  # warm-up
    if impl == "loop":
        benchmark.pedantic(call, rounds=5, iterations=1, warmup_rounds=1)
    else:
        benchmark(call)
    if benchmark.stats is not None:  # None under --benchmark-disable: the body ran once, untimed
        benchmark.extra_info["gflops_at_median"] = shape.flops / benchmark.stats.stats.median / 1e9
