"""The report is rebuilt from the MLflow store alone, and replaced whole or not at all."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from harness.cli import main
from harness.kinds import registry
from harness.reporting import report
from harness.store import tags as tag
from tests.execution.test_runner import SPEC


@pytest.fixture
def recorded(tmp_path, store, write_spec):
    path = write_spec(SPEC)
    assert main(["run", str(path)]) == 0
    return tmp_path


def test_report_from_store(recorded):
    out = recorded / "reports"
    assert main(["report", "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "## Summary" in text and "[edge-small](#edge-small)" in text
    assert "| [B1](#ref-b1) | loss_drop_orders" in text and "✅ reproduced" in text
    # each verdict links to its entry, rendered from the run's record with its public source
    assert '<a id="ref-b1"></a>' in text and "### B1: Learning the 1x2 edge kernel" in text
    assert "(https://github.com/ShusenTang/Dive-into-DL-PyTorch/blob/master/docs/chapter05_CNN/5.1_conv-layer.md)" \
        in text
    assert "![loss curves of edge-small](figures/edge-small-loss.png)" in text
    assert (out / "figures" / "edge-small-loss.png").stat().st_size > 1000
    assert torch.__version__ in text
    if not torch.cuda.is_available():
        assert "**No GPU.**" in text and "no GPU found" in text
    assert not list(out.glob(".build-*")), "scratch directory left behind"
    rows = pd.read_csv(out / "tables" / "report-summary.csv")
    assert (rows["wall_s"] > 0).all() and "| wall (s) |" in text.replace("  ", " ").replace("  ", " ")


def test_report_needs_runs(tmp_path, store, capsys):
    assert main(["report", "--out", str(tmp_path / "reports")]) == 1
    assert "no finished runs" in capsys.readouterr().err
    assert not (tmp_path / "reports" / "REPORT.md").exists()


def test_failed_build_keeps_the_old_report(recorded, monkeypatch):
    out = recorded / "reports"
    out.mkdir()
    (out / "REPORT.md").write_text("old report\n")

    def broken(view):
        raise ValueError("plot failed")

    edge_kernel = registry.KINDS["edge_kernel"]
    monkeypatch.setitem(registry.KINDS, "edge_kernel", dataclasses.replace(edge_kernel, section=broken))
    with pytest.raises(ValueError):
        report.write_report(out)
    assert (out / "REPORT.md").read_text() == "old report\n"
    assert not list(out.glob(".build-*"))


def test_a_cuda_run_recorded_elsewhere_fills_the_cuda_section(tmp_path):
    """Newest first, as the store returns them: the newest run of a spec, plus the newest one that had a GPU."""

    def row(run_id, devices, gpu="none"):
        return {"run_id": run_id, "tags.harness.spec": "lenet-c2", "tags.harness.devices_ran": devices,
                "tags.gpu.model": gpu, "tags.cpu.model": "some CPU"}

    runs = pd.DataFrame([row("cpu-here", "cpu"), row("gpu-there", "cpu,cuda", "NVIDIA H200"),
                         row("gpu-older", "cpu,cuda", "NVIDIA A100")])
    views = report.select_views(runs, tmp_path)
    assert [(v.run_id, v.suffix) for v in views] == [("cpu-here", ""), ("gpu-there", "-cuda-run")]
    assert report.cuda_section(views) == "CUDA runs on: NVIDIA H200. Specs: `lenet-c2`."
    assert report.cuda_section(views[:1]).startswith("**No GPU.** No recorded run had a CUDA device")


def test_a_gpu_nodes_newer_cuda_only_suite_sits_beside_the_older_cpu_run(tmp_path):
    """The kit's suite ran the CUDA half only (--devices cuda), after this machine's CPU run: the report keeps both."""

    def row(run_id, devices, gpu="none"):
        return {"run_id": run_id, "tags.harness.spec": "lenet-c1", "tags.harness.devices_ran": devices,
                "tags.gpu.model": gpu, "tags.cpu.model": "some CPU"}

    runs = pd.DataFrame([row("node", "cuda", "NVIDIA H200"), row("here", "cpu"), row("older", "cpu")])
    views = report.select_views(runs, tmp_path)
    assert [(v.run_id, v.suffix) for v in views] == [("node", ""), ("here", "-cpu-run")]


def test_the_determinism_lines_say_per_device_what_repeated_and_whether_it_matched():

    from harness.reporting import repeats

    df = pd.DataFrame([{"spec": "lenet-c1", "device": "cpu", "device_model": "Some CPU", "seed": "0", "run": "a",
                        "repeat": "b", "curves": 3, "points": 30, "identical": True, "max_abs_difference": 0.0},
                       {"spec": "lenet-c2", "device": "cpu", "device_model": "Some CPU", "seed": "1", "run": "c",
                        "repeat": "d", "curves": 3, "points": 30, "identical": False, "max_abs_difference": 2e-7}],
                      columns=repeats.COLUMNS)
    cpu, cuda = repeats.summary(df)
    assert cpu == ("- **cpu** (Some CPU): 2 repeated units of 2 specs, 60 points: 1 differ (largest difference "
                   "2e-07).")
    assert cuda.startswith("- **cuda**: no unit was run twice")
    same = repeats.summary(df.iloc[:1], devices=("cpu",))
    assert same == ["- **cpu** (Some CPU): 1 repeated units of 1 specs, 30 points: identical curves, bit for bit."]


def test_the_cuda_table_names_the_gpu_the_nodes_libraries_and_the_peak_memory(store):
    """A spec run with a CUDA half, as a GPU node records it (written here with MLflow's client: no GPU here)."""
    from mlflow import MlflowClient

    from harness.machine import PEAK_MEMORY
    from harness.reading.view import RunView
    from harness.store import tracking

    experiment = tracking.connect(store)
    client = MlflowClient(store)
    spec = client.create_run(experiment, tags={
        tag.ROLE: "spec", tag.SPEC_NAME: "lenet-c1", "harness.devices_ran": "cuda",
        "gpu.model": "NVIDIA H200", "torch": "2.11.0+cu130", "torch.cuda": "13.0", "cudnn": "91900"}).info.run_id
    for seed, peak in ((0, 812.5), (1, 1024.0)):
        unit = client.create_run(experiment, tags={tag.ROLE: "unit", "mlflow.parentRunId": spec, "device": "cuda",
                                                   "seed": str(seed), "device.tf32_cudnn": "true"}).info.run_id
        client.log_metric(unit, PEAK_MEMORY, peak)
        client.set_terminated(unit)
    client.set_terminated(spec)
    table = report.cuda_table([RunView(tracking.spec_runs().iloc[0])])
    assert table.drop(columns="run").to_dict("records") == [{
        "spec": "lenet-c1", "gpu": "NVIDIA H200", "torch": "2.11.0+cu130", "cuda": "13.0", "cudnn": "91900",
        "units": 2, "peak_memory_mb": 1024.0, "tf32_cudnn": "true"}]
