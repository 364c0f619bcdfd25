"""The device layer: CUDA's branches taken on the CPU by a fake that records its calls, and every clock read
going through it, after a synchronisation; nothing a fake measured reaches a store."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import mlflow
import pytest
import torch
import torch.nn.functional as F

from harness.book.nets import build
from harness.book.train import HarnessLoop
from harness.judging.rounds import recorded_rounds
from harness.machine import device as devices
from harness.machine import timing
from harness.machine.device import Device, FakeCuda, FakeDeviceError
from harness.machine.seeding import seed_everything
from harness.store import tracking
from tests.book.helpers import run_epochs
from tests.book.test_data import make_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def fake():
    with devices.use(FakeCuda()) as dev:
        yield dev


@pytest.fixture
def clock_reads(monkeypatch):
    """The modules that read ``time.perf_counter`` while the test runs (torch's own reads are not counted)."""
    real, callers = time.perf_counter, []

    def spy():
        callers.append(sys._getframe(1).f_globals.get("__name__", "?"))
        return real()

    monkeypatch.setattr(time, "perf_counter", spy)
    return callers


def harness_readers(callers: list[str]) -> set[str]:
    return {c for c in callers if c.split(".")[0] == "harness"}


def synchronised(calls: list[str]) -> bool:
    """Every clock read of the fake comes straight after a synchronisation."""
    return all(i > 0 and calls[i - 1] == "synchronize" for i, c in enumerate(calls) if c == "clock")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    from harness.book import data as D

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    make_dataset(tmp_path / "idx", monkeypatch, n_train=96, n_test=40)
    D.clear_cache()
    return D.load_fashion_mnist(tmp_path / "idx")


def test_a_real_cuda_device_synchronises_before_it_reads_the_clock(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(("synchronize", str(d))))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: calls.append(("reset", str(d))))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: 3 * 2**20)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Some GPU")
    dev = Device("cuda")
    t = dev.clock()
    assert calls == [("synchronize", "cuda")] and t > 0
    dev.reset_peak_memory()
    assert calls[-1] == ("reset", "cuda") and dev.peak_memory_bytes() == 3 * 2**20 and dev.model() == "Some GPU"
    cpu = Device("cpu")
    calls.clear()
    cpu.clock(), cpu.reset_peak_memory()
    assert calls == [] and cpu.peak_memory_bytes() is None and cpu.switches() == {}


def test_a_stand_in_takes_the_place_of_its_device_only_inside_the_block():
    with devices.use(FakeCuda()) as fake:
        assert devices.get("cuda") is fake and devices.get(torch.device("cuda:0")) is fake
        assert devices.place("cuda") == torch.device("cpu") and devices.get("cpu").fake is False
    assert devices.get("cuda").fake is False and devices.place("cuda") == torch.device("cuda")


def test_measure_and_time_once_read_the_clock_only_through_the_device(fake, clock_reads):
    x = torch.randn(64, 64)
    t = timing.measure(lambda: x @ x, min_run_time=0.01, device="cuda", min_runs=3)
    assert t.runs >= 3 and fake.calls.count("clock") >= 2 * t.runs and synchronised(fake.calls)
    fake.calls.clear()
    assert timing.time_once(lambda: x @ x, "cuda") > 0 and fake.calls == ["synchronize", "clock"] * 2
    assert harness_readers(clock_reads) == {devices.__name__}


def test_matmul_peak_on_cuda_records_the_tf32_and_cudnn_switches(fake):
    peak = timing.matmul_peak("cuda", n=64, min_run_time=0.01)
    assert peak["tf32_cudnn"] is True and "cudnn_deterministic" in peak and "switches" in fake.calls


def test_every_epoch_of_the_harness_loop_ends_on_a_synchronised_clock(fake, tiny, clock_reads):
    torch.manual_seed(0)
    loop = HarnessLoop(build("lenet_nopad_max"), tiny, optimizer="adam", lr=0.003, batch_size=32, seed=0,
                       device="cuda", eval_first_batches=2)
    assert loop.device == torch.device("cpu")
    fake.calls.clear()
    result = run_epochs(loop, 2)
    assert synchronised(fake.calls) and fake.calls.count("clock") >= 2 * 2
    assert fake.calls[-2:] == ["synchronize", "clock"]  # the epoch's time is read after its queued work
    assert harness_readers(clock_reads) == {devices.__name__}
    assert all(e.epoch_s >= e.train_s > 0 for e in result.epochs) and len(result.first_batches) == 2


def test_the_harness_loop_does_not_fold_batches_on_cuda(fake, tiny):
    """CUDA's branch: no BatchFolded grouped convolutions (CPU_FOLD is a CPU measurement)."""
    from harness.book.models import BatchFolded

    def folded(loop):
        return any(isinstance(m, BatchFolded) for m in loop.fwd.modules())

    common = dict(optimizer="adam", lr=0.003, batch_size=32, seed=0)
    assert not folded(HarnessLoop(build("lenet_nopad_max"), tiny, device="cuda", **common))
    assert folded(HarnessLoop(build("lenet_nopad_max"), tiny, device="cpu", **common))


def test_rounds_are_timed_on_the_devices_clock(fake, memory_recorder):
    rec = memory_recorder(device="cuda")
    out = recorded_rounds(rec, lambda i: {"x": float(i)}, first=3)
    assert len(out.seconds) == 3 and fake.calls.count("clock") == 6 and synchronised(fake.calls)


def test_a_fake_device_never_reaches_a_store(fake, store, write_spec):
    from harness.execution.units import Unit, run_unit
    from harness.specs.spec import load_spec

    path = write_spec({"name": "fake-kernel", "title": "corr2d", "kind": "worked_examples", "seeds": [0],
                       "devices": ["cuda"], "settings": {},
                       "references": [{"metric": "corr2d", "source": "A1", "basis": "printed",
                                       "quote": "gives [[19, 25], [37, 43]]", "equals": [[19, 25], [37, 43]]}]})
    with pytest.raises(FakeDeviceError, match="fake"):
        tracking.Recorder("some-run", "cuda", 0)
    with pytest.raises(FakeDeviceError, match="nothing measured on it is recorded"):
        run_unit(Unit(load_spec(path), "cuda", 0))
    import mlflow

    mlflow.set_tracking_uri(store)
    assert mlflow.search_runs(search_all_experiments=True).empty  # refused before any run began


def test_seeding_sets_cudnn_through_the_device_and_warns_on_a_changed_cublas_setting(fake, monkeypatch):
    seed_everything(0, deterministic=True, on="cuda")
    assert fake.deterministic is True and "set_deterministic" in fake.calls
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")
    with pytest.warns(UserWarning, match="CUBLAS_WORKSPACE_CONFIG"):
        seed_everything(0, deterministic=True, on="cuda")
    seed_everything(0, deterministic=False, on="cuda")
    assert fake.deterministic is False


def test_the_cublas_setting_is_in_place_before_torch_touches_cuda():
    """Set by importing the harness, before any CUDA call: a fresh interpreter sees it at once."""
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", "import harness, os; print(os.environ['CUBLAS_WORKSPACE_CONFIG'])"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == ":4096:8"


def test_resizing_a_batch_at_a_time_gives_the_whole_set_resized_at_once():
    from harness.kinds.training.measure import resizer
    from harness.kinds.training.settings import Settings

    x = torch.rand(70, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    settings = Settings.model_validate({"model": "nin", "data": {"resize": 67},
                                        "optimisation": {"optimizer": "sgd", "lr": 0.1, "epochs": 1}})
    whole = F.interpolate(x, size=(67, 67), mode="bilinear", align_corners=False)
    batches = torch.cat([resizer(settings)(x[i:i + 16]) for i in range(0, 70, 16)])
    assert torch.equal(whole, batches)
    assert resizer(settings.model_copy(update={"data": settings.data.model_copy(update={"resize": None})})) is None


def test_a_whole_lenet_unit_takes_cudas_branches_on_the_fake(fake, tiny, memory_recorder, clock_reads, tmp_path):
    from harness.kinds.training import KIND
    from harness.kinds.training.settings import Settings

    settings = Settings.model_validate({
        "recipe": "train_ch6", "model": "nin", "progress": False,
        "data": {"resize": 67, "train_examples": 64, "test_examples": 40, "dir": str(tiny.root)},
        "optimisation": {"optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 1}})
    out = KIND.run(settings, memory_recorder(device="cuda"))
    assert 0 <= out["test_acc"] <= 1 and out["harness.matmul_peak_gflops"] > 0
    assert synchronised(fake.calls) and harness_readers(clock_reads) == {devices.__name__}


def test_batch_speed_and_conv_throughput_take_cudas_branches_on_the_fake(fake, tiny, memory_recorder, clock_reads):
    from harness.kinds.batch_speed import measure as batch_speed
    from harness.kinds.conv_throughput import measure as conv_throughput
    from tests.kinds.test_conv_throughput import SETTINGS as CONV

    conv = conv_throughput.Settings.model_validate(CONV | {"peak_n_cuda": 96,
                                                           "implementations": ["loop", "unfold", "library"]})
    cases = conv_throughput.prepare(conv, "cuda", 0)
    assert cases and all(c.row["status"] == "ok" or "loop" in c.impl for c in cases)
    assert conv_throughput._peak("cuda", conv)["n"] == 96  # CUDA's own ceiling size
    speed = batch_speed.Settings.model_validate({"batch_sizes": [1, 10], "data_dir": str(tiny.root),
                                                 "round_time": 0.01, "warmup_updates": 1, "epoch_examples": 64})
    x, y = batch_speed.train_data(speed, "cuda")
    bench = batch_speed.prepare(10, x, y, speed, "cuda", 0)
    assert batch_speed.whole_epoch(bench, x, y, speed, "cuda") > 0
    assert synchronised(fake.calls) and harness_readers(clock_reads) == {devices.__name__}


def test_a_unit_records_peak_memory_and_switches_where_its_device_has_them(store, write_spec, monkeypatch):
    """run_unit's CUDA-only recording, taken on the CPU by a Device that answers as CUDA does (no fake: a fake is
    refused before any run)."""
    from harness.cli import main
    from tests.conftest import unit_of

    monkeypatch.setattr(Device, "peak_memory_bytes", lambda self: 5 * 2**20)
    monkeypatch.setattr(Device, "switches", lambda self: {"tf32_cudnn": True, "cublas_workspace": ":4096:8"})
    path = write_spec({"name": "kernel", "title": "corr2d", "kind": "worked_examples", "seeds": [0], "settings": {},
                       "references": [{"metric": "corr2d", "source": "A1", "basis": "printed",
                                       "quote": "gives [[19, 25], [37, 43]]", "equals": [[19, 25], [37, 43]]}]})
    assert main(["run", str(path)]) == 0
    unit = mlflow.get_run(unit_of(tracking.spec_runs().iloc[0].run_id))
    assert unit.data.metrics[devices.PEAK_MEMORY] == 5.0
    assert (unit.data.tags["device.tf32_cudnn"], unit.data.tags["device.cublas_workspace"]) == ("true", ":4096:8")
