"""Executors: Ray gives what the local loop gives, and a unit that fails or dies ends FAILED while the rest go on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from harness.cli import main
from harness.kinds import registry
from harness.store import tracking
from tests import flaky

ROOT = Path(__file__).resolve().parents[2]


def wall_clock(key: str) -> bool:
    """A metric read off a clock (a round's value, or one the kinds' tables call a speed): it differs every run."""
    name = key.removeprefix("measured.")
    return name.startswith("round.") or any((m := kind.metric(name)) is not None and m.speed
                                            for kind in registry.KINDS.values())


def test_ray_missing_is_one_line(write_spec, store, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["run", "--executor", "ray", str(write_spec(flaky.spec([0])))]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "harness: error: --executor ray needs Ray, an optional extra: pip install -e '.[ray]'"


def test_ray_address_needs_ray(write_spec, store, capsys):
    assert main(["run", "--ray-address", "auto", str(write_spec(flaky.spec([0])))]) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs whose workers can import this test package (for the flaky kind)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray
    ray.shutdown()


def recorded(uri: str) -> dict:
    """Per spec: its verdicts; per unit: every metric's curve, wall-clock ones left out."""
    mlflow.set_tracking_uri(uri)
    client, out = MlflowClient(), {}
    for run in mlflow.search_runs(search_all_experiments=True, output_format="list"):
        tags = run.data.tags
        if tags.get("harness.role") == "spec":
            verdicts = tracking.load_json(run.info.run_id, "verdicts.json")
            out[tags["harness.spec"]] = [(v["ref"], v["metric"], v["device"], v["status"], v["measured"])
                                         for v in verdicts]
        elif tags.get("harness.role") == "unit":
            out[(tags["harness.spec"], tags["device"], tags["seed"])] = {
                key: [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key),
                                                        key=lambda m: m.step)]
                for key in run.data.metrics if not wall_clock(key)}
    return out


@pytest.mark.scale
def test_ray_records_what_local_records(cluster, tmp_path, monkeypatch):
    """The same suite, local and on Ray, each CPU unit on 1 thread: the same verdicts, every curve equal bit
    for bit. (At other thread counts oneDNN sums in another order, so the last bits may differ.)"""
    monkeypatch.chdir(tmp_path)
    lenet = yaml.safe_load((ROOT / "experiments/lenet-c1.yaml").read_text())
    lenet.update(name="lenet-small", seeds=[0, 1], devices=["cpu"])
    lenet["settings"]["optimisation"].update(epochs=2)
    lenet["settings"]["data"] = {"train_examples": 2048, "test_examples": 500}
    (tmp_path / "lenet-small.yaml").write_text(yaml.safe_dump(lenet))
    specs = [str(ROOT / "experiments" / f) for f in ("worked-convolution.yaml", "worked-pooling.yaml",
                                                     "edge-kernel-nn-conv2d.yaml", "structure-nin.yaml")]
    specs.append(str(tmp_path / "lenet-small.yaml"))
    stores = {}
    for executor in ("local", "ray"):
        stores[executor] = f"sqlite:///{tmp_path / executor}.db"
        argv = ["reproduce", "--allow-miss", "--executor", executor, "--threads", "1",
                "--tracking-uri", stores[executor], "--out", str(tmp_path / executor), *specs]
        assert main(argv) == 0
    local, on_ray = recorded(stores["local"]), recorded(stores["ray"])
    assert set(local) == set(on_ray) and len(local) == 5 + 1 + 1 + 5 + 1 + 2
    for key in local:
        assert local[key] == on_ray[key], key
    assert any(curve for key, unit in local.items() if isinstance(key, tuple) for curve in unit.values())
    assert (tmp_path / "ray" / "REPORT.md").is_file()
    units = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`harness.role` = 'unit'")
    assert set(units["tags.torch.threads"]) == {"1"}
    assert os.getpid() not in set(units["tags.harness.pid"].astype(int))  # each ran in a Ray worker


@pytest.mark.scale
def test_a_dead_worker_fails_its_unit_only(cluster, write_spec, store):
    path = write_spec(flaky.spec([0, 1, 2], raise_on=[2], die_on=[1]))
    assert main(["run", "--executor", "ray", str(path)]) == 1
    tracking.connect()
    runs = mlflow.search_runs(search_all_experiments=True)
    units = runs[runs["tags.harness.role"] == "unit"].sort_values("tags.seed")
    assert units["status"].tolist() == ["FINISHED", "FAILED", "FAILED"]
    died = units[units["tags.seed"] == "1"].iloc[0]
    assert died["tags.harness.ended_by"].startswith("Ray task failed: ")
    spec_run = runs[runs["tags.harness.role"] == "spec"].iloc[0]
    assert spec_run["status"] == "FAILED"
    assert spec_run["tags.harness.executor"] == "ray"
    missing = spec_run["tags.harness.units_failed"]
    assert "cpu seed 1: " in missing and "cpu seed 2: RuntimeError: seed 2 fails on purpose" in missing
    (verdict,) = tracking.load_json(spec_run["run_id"], "verdicts.json")
    assert verdict["status"] == "reproduced" and verdict["measured"] == "0"
    assert "missing seed 1 (" in verdict["detail"] and "seed 2 (RuntimeError" in verdict["detail"]
    assert runs[runs["status"].isin(["RUNNING", "SCHEDULED"])].empty


def test_a_cuda_unit_asks_ray_for_one_gpu_and_a_cpu_unit_for_none(write_spec):
    """The Ray executor's CUDA branch (its cluster is not needed to place a unit)."""
    from harness.execution.executors import Ray
    from harness.execution.units import Unit
    from harness.specs.spec import load_spec

    spec = load_spec(write_spec({"name": "k", "title": "corr2d", "kind": "worked_examples", "seeds": [0],
                                 "devices": ["cpu", "cuda"], "settings": {},
                                 "references": [{"metric": "corr2d", "source": "A1", "basis": "printed",
                                                 "quote": "gives [[19, 25], [37, 43]]",
                                                 "equals": [[19, 25], [37, 43]]}]}))
    ray = Ray.__new__(Ray)  # no cluster: resources() reads only the unit and the thread setting
    ray.threads = 2
    assert ray.resources(Unit(spec, "cuda", 0)) == {"num_cpus": 1, "num_gpus": 1}
    assert ray.resources(Unit(spec, "cpu", 0)) == {"num_cpus": 2, "num_gpus": 0}
