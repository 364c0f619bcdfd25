"""Runner + MLflow: what a run records, how it ends, and that it is deterministic."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from mlflow import MlflowClient

from harness.cli import EXIT_INCONCLUSIVE, main
from harness.judging.rounds import recorded_rounds
from harness.kinds import registry
from harness.kinds.base import Kind, Metric
from harness.kinds.edge_kernel import KIND as EDGE_KERNEL
from harness.schema import Strict
from harness.specs.spec import load_spec
from harness.store import tracking
from tests.conftest import unit_of
from tests.judging.test_rounds import SyntheticTimer

ROOT = Path(__file__).resolve().parents[2]

SPEC = {
    "name": "edge-small",
    "title": "small edge kernel run",
    "kind": "edge_kernel",
    "seeds": [0, 1],
    "devices": ["cpu", "cuda"],
    "settings": {"layer": "handwritten", "init": "randn", "lr": 0.01, "steps": 20, "checkpoints": [5, 20]},
    "references": [
        {"metric": "loss_drop_orders", "source": "B1", "basis": "chosen before measuring", "at_least": 2},
        {"metric": "kernel", "source": "B1", "basis": "chosen before measuring", "near": [[1, -1]], "atol": 0.2},
        {"metric": "loss_at_checkpoints", "source": "B1", "basis": "chosen before measuring", "near": [1.844, 0.003],
         "rtol": 0.5, "gate": False},
    ],
}


def patch_measure(monkeypatch, measure):
    """The edge kernel's measurement replaced, where the runner finds it."""
    monkeypatch.setitem(registry.KINDS, EDGE_KERNEL.name, dataclasses.replace(EDGE_KERNEL, measure=measure))


@pytest.fixture
def spec_file(write_spec) -> Path:
    return write_spec(SPEC)


def runs(status: str | None = None, role: str | None = "spec"):
    """The runs in the store (spec runs by default), newest first."""
    tracking.connect()
    df = mlflow.search_runs(search_all_experiments=True)
    if role is not None:
        df = df[df["tags.harness.role"] == role]
    return df if status is None else df[df["status"] == status]


def test_run_records_everything(spec_file, store):
    assert main(["run", str(spec_file)]) == 0
    df = runs()
    assert list(df["status"]) == ["FINISHED"]
    run = MlflowClient().get_run(df["run_id"].iloc[0])
    tags, params = run.data.tags, run.data.params
    for key in ("spec.hash", "seeds", "git.commit", "torch", "torch.cuda", "cudnn", "device", "cpu.model",
                "gpu.model", "harness.refs"):
        assert tags.get(key), key
    assert tags["seeds"] == "0,1" and tags["device"] == "cpu" and tags["torch"] == torch.__version__
    assert params["settings.lr"] == "0.01" and params["kind"] == "edge_kernel"
    arts = tracking.artifact_paths(run.info.run_id)
    assert {"spec.json", "measured.json", "verdicts.json", "spec/edge-small.yaml", "references.json"} <= set(arts)
    assert tracking.load_json(run.info.run_id, "references.json")["B1"]["sources"][0]["url"].startswith("https://")
    # one child run per (device, seed): params seed and device, plain metric names, that unit's values
    units = runs(role="unit")
    assert sorted(units["params.seed"]) == ["0", "1"] and set(units["params.device"]) == {"cpu"}
    assert set(units["tags.mlflow.parentRunId"]) == {run.info.run_id} and set(units["status"]) == {"FINISHED"}
    assert set(units["params.settings.lr"]) == {"0.01"}
    hist = tracking.metric_history(unit_of(run.info.run_id), "loss")
    assert list(hist["step"]) == list(range(1, 21)) and hist["value"].iloc[-1] < hist["value"].iloc[0]
    unit = MlflowClient().get_run(unit_of(run.info.run_id, seed=1))
    assert "measured.final_loss" in unit.data.metrics and "measured.json" in tracking.artifact_paths(unit.info.run_id)
    assert unit.info.run_name == "edge-small cpu seed 1"
    verdicts = tracking.load_json(run.info.run_id, "verdicts.json")
    by_device = {(v["metric"], v["device"]): v for v in verdicts}
    assert by_device[("kernel", "cpu")]["status"] == "reproduced"
    if not torch.cuda.is_available():
        assert by_device[("kernel", "cuda")]["status"] == "skipped"
        assert "no GPU" in by_device[("kernel", "cuda")]["detail"]


def test_same_spec_same_seed_identical_curves(spec_file, store):
    assert main(["run", str(spec_file)]) == 0
    assert main(["run", str(spec_file)]) == 0
    first, second = runs()["run_id"]
    for seed in (0, 1):
        a = tracking.metric_history(unit_of(first, seed=seed), "loss")["value"].tolist()
        b = tracking.metric_history(unit_of(second, seed=seed), "loss")["value"].tolist()
        assert a == b and len(a) == 20
    s0 = tracking.metric_history(unit_of(first), "loss")["value"].tolist()
    s1 = tracking.metric_history(unit_of(first, seed=1), "loss")["value"].tolist()
    assert s0 != s1
    from harness.reading.view import RunView
    from harness.reporting import repeats

    found = repeats.table([RunView(runs().iloc[0])])  # the newest run's units, each against its repeat
    assert set(found["repeat"]) == {unit_of(second, seed=s)[:8] for s in (0, 1)}
    assert found["identical"].all() and set(found["points"]) == {20}
    assert repeats.summary(found)[0].startswith("- **cpu**") and "identical curves, bit for bit" in \
        repeats.summary(found)[0]


def test_devices_runs_only_the_halves_asked_for_and_says_so(spec_file, store, write_spec):
    assert main(["run", "--devices", "cuda", str(spec_file)]) == 0
    verdicts = tracking.load_json(runs().iloc[0]["run_id"], "verdicts.json")
    cpu = {v["status"] for v in verdicts if v["device"] == "cpu"}
    assert cpu == {"skipped"} and all("not asked for here (--devices cuda)" in v["detail"]
                                      for v in verdicts if v["device"] == "cpu")
    assert runs().iloc[0]["tags.harness.devices_ran"] == ("cuda" if torch.cuda.is_available() else "")
    cpu_only = write_spec(SPEC | {"name": "cpu-only", "devices": ["cpu"]})
    assert main(["run", "--devices", "cuda", str(cpu_only)]) == 2  # none of the specs runs there
    assert main(["run", "--devices", "tpu", str(spec_file)]) == 2


def test_failing_task_ends_failed(spec_file, store, monkeypatch):
    def boom(settings, rec):
        raise RuntimeError("boom")

    patch_measure(monkeypatch, boom)
    assert main(["run", str(spec_file)]) == 1
    assert list(runs()["status"]) == ["FAILED"] and list(runs(role="unit")["status"]) == ["FAILED"] * 2
    failed = "cpu seed 0: RuntimeError: boom; cpu seed 1: RuntimeError: boom"
    assert runs()["tags.harness.units_failed"].tolist() == [failed]
    verdicts = tracking.load_json(runs()["run_id"].iloc[0], "verdicts.json")
    assert {v["status"] for v in verdicts if v["device"] == "cpu"} == {"inconclusive"}


def test_failed_unit_others_go_on(spec_file, store, monkeypatch):
    """One seed fails: its run ends FAILED, the other seed is judged, and every verdict names the missing one."""
    real = EDGE_KERNEL.measure

    def second_fails(settings, rec):
        if rec.seed == 1:
            raise RuntimeError("boom")
        return real(settings, rec)

    patch_measure(monkeypatch, second_fails)
    assert main(["run", str(spec_file)]) == 1
    units = runs(role="unit").sort_values("tags.seed")
    assert units["status"].tolist() == ["FINISHED", "FAILED"]
    spec_run = runs().iloc[0]
    assert spec_run["status"] == "FAILED" and spec_run["tags.harness.units_failed"] == "cpu seed 1: RuntimeError: boom"
    verdicts = tracking.load_json(spec_run["run_id"], "verdicts.json")
    cpu = [v for v in verdicts if v["device"] == "cpu"]
    assert cpu and all(v["detail"].endswith("missing seed 1 (RuntimeError: boom)") for v in cpu)
    assert {v["status"] for v in cpu if v["gate"]} == {"reproduced"}


def test_interrupt_ends_killed(spec_file, store, monkeypatch):
    def interrupted(settings, rec):
        raise KeyboardInterrupt

    patch_measure(monkeypatch, interrupted)
    assert main(["run", str(spec_file)]) == 130
    assert list(runs()["status"]) == ["KILLED"] and list(runs(role="unit")["status"]) == ["KILLED"]


def test_missed_reference_exit_status(spec_file, store, tmp_path):
    data = yaml.safe_load(spec_file.read_text())
    data["references"][0]["at_least"] = 50
    spec_file.write_text(yaml.safe_dump(data))
    assert main(["run", str(spec_file)]) == 1
    assert main(["run", "--allow-miss", str(spec_file)]) == 0
    assert set(runs("FINISHED")["tags.verdict"]) == {"not reproduced"}


def test_seeds_override(spec_file, store):
    assert main(["run", "--seeds", "3", str(spec_file)]) == 0
    assert runs()["tags.seeds"].tolist() == ["3"]
    assert main(["run", "--seeds", "x", str(spec_file)]) == 2


def test_suite_is_a_parent_run_with_nested_spec_runs(spec_file, store, tmp_path):
    assert main(["reproduce", str(tmp_path), "--out", str(tmp_path / "reports")]) == 0
    df = runs(role=None)
    parent = df[df["tags.harness.role"] == "suite"]
    child = df[df["tags.harness.role"] == "spec"]
    units = df[df["tags.harness.role"] == "unit"]
    assert len(parent) == 1 and len(child) == 1 and len(units) == 2
    assert child["tags.mlflow.parentRunId"].iloc[0] == parent["run_id"].iloc[0]
    assert set(units["tags.mlflow.parentRunId"]) == {child["run_id"].iloc[0]}
    assert set(df["status"]) == {"FINISHED"}
    experiment = MlflowClient().get_experiment(parent["experiment_id"].iloc[0])
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs
    assert (tmp_path / "reports" / "REPORT.md").exists()


class SyntheticSettings(Strict):
    center: float = 3.0


def synthetic_run(settings, rec):
    """One timing, ``ratio``, from a seeded synthetic timer (tests.judging.test_rounds), not a clock."""
    timer = SyntheticTimer(center=settings.center, paired=True, seed=rec.seed)
    rounds = recorded_rounds(rec, lambda i: {"ratio": timer(i)["speedup"]})
    return rounds.measured(SyntheticTimingKind.timings)


SyntheticTimingKind = Kind("synthetic_timing", SyntheticSettings,
                           (Metric("ratio", "x", "higher", "a synthetic speed-up", timed=True),),
                           synthetic_run, lambda view: {}, lambda view: "")


@pytest.fixture
def timing_spec(write_spec, monkeypatch):
    """Write a synthetic timing spec whose rounds centre on ``center``, claimed at least 3x (gating)."""
    monkeypatch.setitem(registry.KINDS, SyntheticTimingKind.name, SyntheticTimingKind)

    def write(center: float):
        return write_spec({
            "name": "synthetic", "title": "a synthetic timing claim", "kind": SyntheticTimingKind.name,
            "seeds": [0], "deterministic": False, "settings": {"center": center},
            "timing": {"rounds": 8, "max_rounds": 12, "budget_s": 600},
            "references": [{"metric": "ratio", "source": "C1", "basis": "chosen before measuring", "at_least": 3}]})

    return write


def test_straddled_timing_claim_is_inconclusive_and_fails_only_under_strict(timing_spec, store, tmp_path, capsys):
    path = timing_spec(center=3.0)
    assert main(["run", str(path)]) == 0
    assert "1 gating reference(s) inconclusive (not failing without --strict)" in capsys.readouterr().out
    assert main(["run", "--strict", str(path)]) == EXIT_INCONCLUSIVE == 3
    df = runs()
    assert set(df["status"]) == {"FINISHED"} and set(df["tags.verdict"]) == {"inconclusive"}
    run_id = df["run_id"].iloc[0]
    verdict = tracking.load_json(run_id, "verdicts.json")[0]
    assert verdict["status"] == "inconclusive" and verdict["rounds"] == 12 and verdict["low"] < 3 < verdict["high"]
    assert "(95% CI " in verdict["measured"] and verdict["measured"].endswith("12 rounds)")
    rounds = tracking.metric_history(unit_of(run_id), "round.ratio")  # every round is in MLflow
    assert list(rounds["step"]) == list(range(1, 13))

    assert main(["report", "--out", str(tmp_path / "reports")]) == 0
    text = (tmp_path / "reports" / "REPORT.md").read_text()
    assert re.search(r"\| cpu +\| +1 \| +0 \| +0 \| +1 \| +0 \|", text)  # the first screen: 1 claim inconclusive
    assert "❔ inconclusive" in text and "confidence sequence for the median round" in text
    bases = pd.read_csv(tmp_path / "reports" / "tables" / "report-bases.csv")  # verdicts counted by basis
    assert bases.to_dict("records") == [{"basis": "chosen before measuring", "reproduced": 0, "not_reproduced": 0,
                                         "inconclusive": 1, "skipped": 0, "information_only": 0}]


@pytest.mark.parametrize("center,status,verdict", [(10.0, 0, "reproduced"), (1.0, 1, "not reproduced")])
def test_decisive_timing_claims_set_the_exit_status_even_under_strict(timing_spec, store, center, status, verdict):
    assert main(["run", "--strict", str(timing_spec(center))]) == status
    df = runs()
    assert list(df["tags.verdict"]) == [verdict]
    assert tracking.load_json(df["run_id"].iloc[0], "verdicts.json")[0]["rounds"] == 8  # decided at the first look


def _normalised(report: str) -> str:
    """A report with what differs between any two runs masked: run ids, commits, times (the summary's wall
    seconds, and the padding their widths give the table's columns)."""
    text = re.sub(r"Generated [^`]* by", "Generated by", report)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d( UTC)?(, [\d.]+ minutes)?", "<time>", text)
    text = re.sub(r"store `[^`]*`", "store", text)
    text = re.sub(r"\b[0-9a-f]{8,32}\b", "<id>", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"-+", "-", text)
    return re.sub(r"\| [\d,.]+ \| <id> \|", "| <s> | <id> |", text)


def test_a_suite_killed_halfway_and_resumed_gives_the_same_report(tmp_path, store, monkeypatch, write_spec):
    """Two specs x two seeds: interrupted at the last unit, then resumed; only that unit runs again."""
    write_spec(SPEC)
    write_spec(SPEC | {"name": "edge-second", "title": "the same, another name"})
    whole = f"sqlite:///{tmp_path / 'whole.db'}"
    assert main(["reproduce", str(tmp_path), "--tracking-uri", whole, "--out", str(tmp_path / "whole")]) == 0

    calls = []
    real = EDGE_KERNEL.measure

    def interrupted_at_the_fourth_unit(settings, rec):
        calls.append((rec.device, rec.seed))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(settings, rec)

    patch_measure(monkeypatch, interrupted_at_the_fourth_unit)
    suite = ["reproduce", str(tmp_path), "--tracking-uri", store]
    assert main(suite) == 130
    assert main([*suite, "--resume", "--out", str(tmp_path / "resumed")]) == 0
    assert calls[4:] == [("cpu", 1)]  # the three finished units were reused, only the killed one ran again

    whole_text = (tmp_path / "whole" / "REPORT.md").read_text()
    assert _normalised((tmp_path / "resumed" / "REPORT.md").read_text()) == _normalised(whole_text)
    measured = {}
    for uri in (whole, store):
        tracking.connect(uri)
        measured[uri] = {r["tags.harness.spec"]: tracking.load_json(r["run_id"], "measured.json")
                         for _, r in tracking.spec_runs(uri).iterrows()}
    assert measured[whole] == measured[store] and len(measured[store]) == 2


def test_without_resume_everything_runs_afresh(spec_file, store, monkeypatch):
    assert main(["run", str(spec_file)]) == 0
    calls = []
    real = EDGE_KERNEL.measure
    patch_measure(monkeypatch, lambda s, rec: calls.append(rec.seed) or real(s, rec))
    assert main(["run", str(spec_file)]) == 0
    assert calls == [0, 1]
    assert main(["run", "--resume", str(spec_file)]) == 0
    assert calls == [0, 1]  # every unit finished before: nothing ran
    newest = runs("FINISHED").iloc[0]
    copies = runs(role="unit")
    copies = copies[copies["tags.mlflow.parentRunId"] == newest["run_id"]]
    assert len(copies) == 2 and copies["tags.harness.reused_from"].notna().all()
    for seed in (0, 1):  # the reused units' curves are in the new spec run's children, as if they had run there
        curve = tracking.metric_history(unit_of(newest["run_id"], seed=seed), "loss")
        source = tracking.metric_history(copies[copies["tags.seed"] == str(seed)]["tags.harness.reused_from"].iloc[0],
                                         "loss")
        assert len(curve) == 20 and curve["value"].tolist() == source["value"].tolist()


class NeedsMnistSettings(Strict):
    root: str


def needs_mnist(settings, rec):
    """Loads MNIST from ``root`` (nowhere, here): the loader's DataMissing is a skip, not a failure."""
    from harness.book import data

    data.load("mnist", settings.root)
    raise AssertionError("no MNIST is there")


NeedsMnistKind = Kind("needs_mnist", NeedsMnistSettings, (Metric("test_acc", "fraction", "higher", "accuracy"),),
                      needs_mnist, lambda view: {}, lambda view: "")


def test_a_spec_whose_dataset_is_missing_is_skipped_and_the_suite_goes_on(write_spec, store, tmp_path, monkeypatch,
                                                                           capsys):
    monkeypatch.setitem(registry.KINDS, NeedsMnistKind.name, NeedsMnistKind)
    nowhere = tmp_path / "no-mnist-here"
    path = write_spec({"name": "mnist-absent", "title": "needs MNIST", "kind": NeedsMnistKind.name, "seeds": [0, 1],
                       "devices": ["cpu"], "settings": {"root": str(nowhere)},
                       "references": [{"metric": "test_acc", "source": "C1", "basis": "chosen before measuring",
                                       "at_least": 0.9},
                                      {"metric": "test_acc", "source": "C1", "basis": "chosen before measuring",
                                       "at_least": 0.5, "gate": False}]})
    write_spec(SPEC)
    assert main(["reproduce", str(tmp_path), "--out", str(tmp_path / "reports")]) == 0  # skipped does not fail
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "skipped" in line]
    assert len(lines) == 1 and lines[0].startswith(f"harness: skipped: {path} on cpu")
    assert f"{nowhere}: MNIST not found" in lines[0] and "MNIST_DIR" in lines[0]

    df = runs(role=None)
    assert "RUNNING" not in set(df["status"]) and set(df["status"]) == {"FINISHED"}
    spec_run = df[(df["tags.harness.role"] == "spec") & (df["tags.harness.spec"] == "mnist-absent")].iloc[0]
    assert spec_run["tags.verdict"] == "skipped" and spec_run["tags.harness.devices_ran"] == ""
    verdicts = tracking.load_json(spec_run["run_id"], "verdicts.json")
    assert {v["status"] for v in verdicts} == {"skipped"} and len(verdicts) == 2
    assert {v["detail"] for v in verdicts} == {lines[0].split(" on cpu: ", 1)[1]}
    assert tracking.load_json(spec_run["run_id"], "measured.json") == {}
    # one unit ran (seed 0 on the CPU) and ended FINISHED, marked skipped; seed 1 was not started
    children = df[df["tags.mlflow.parentRunId"] == spec_run["run_id"]]
    assert list(children["tags.harness.role"]) == ["skipped"] and list(children["tags.seed"]) == ["0"]
    assert "MNIST not found" in children["tags.harness.skipped"].iloc[0]
    # the other spec ran as usual, and the report holds both
    assert set(df[df["tags.harness.role"] == "spec"]["tags.verdict"]) == {"skipped", "reproduced"}
    report = (tmp_path / "reports" / "REPORT.md").read_text()
    assert "mnist-absent" in report and "⏭ skipped" in report

    # --resume does not take the skipped unit for a finished one: it looks for the data again
    assert main(["run", "--resume", str(path)]) == 0
    assert list(runs()["tags.verdict"])[0] == "skipped" and "RUNNING" not in set(runs(role=None)["status"])


def test_a_corrupt_dataset_still_fails_the_spec(write_spec, store, tmp_path, monkeypatch):
    from harness.book import data

    def corrupt(settings, rec):
        raise data.DataError(f"{tmp_path}/t10k-images-idx3-ubyte.gz: corrupt MNIST file: MD5 ...")

    patch_measure(monkeypatch, corrupt)
    assert main(["run", str(write_spec(SPEC))]) == 1
    assert list(runs()["status"]) == ["FAILED"] and list(runs(role="unit")["status"]) == ["FAILED"] * 2


def test_a_suites_specs_that_time_nothing_run_in_a_pool_of_one_thread_processes(tmp_path, store, write_spec):
    """--jobs 2: the edge kernel (it times nothing) runs in a spawned worker on one torch thread, under the suite's
    run, and its curves are the ones the same spec gives in this process on one thread."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "edge-small.yaml").write_text(yaml.safe_dump(SPEC | {"devices": ["cpu"]}, sort_keys=False))
    assert main(["reproduce", str(specs), "--jobs", "2", "--no-report"]) == 0
    suite = runs(role="suite")
    spec = runs()
    assert len(suite) == 1 and suite["tags.harness.jobs"].iloc[0] == "2"
    assert set(spec["tags.mlflow.parentRunId"]) == {suite["run_id"].iloc[0]}
    units = runs(role="unit")
    assert set(units["tags.torch.threads"]) == {"1"} and set(units["status"]) == {"FINISHED"}
    pooled = tracking.metric_history(units["run_id"].iloc[0], "loss")["value"].tolist()
    assert main(["run", str(specs / "edge-small.yaml"), "--threads", "1"]) == 0
    alone = runs(role="unit").iloc[0]  # newest: seed 1 or 0 of the run here
    twin = units[units["tags.seed"] == alone["tags.seed"]]["run_id"].iloc[0]
    assert tracking.metric_history(alone["run_id"], "loss")["value"].tolist() == \
        tracking.metric_history(twin, "loss")["value"].tolist()
    assert pooled


def test_a_spec_may_pin_its_threads(tmp_path, store, write_spec):
    path = write_spec(SPEC | {"devices": ["cpu"], "threads": 1, "seeds": [0]})
    assert main(["run", str(path)]) == 0
    assert set(runs(role="unit")["tags.torch.threads"]) == {"1"}


def test_only_a_gating_timing_claim_or_a_cuda_half_keeps_a_spec_out_of_the_pool():
    """lenet-loops gates on its speed-up: alone. lenet-c2's examples/s is information: pooled, as is the edge kernel,
    which times nothing. With CUDA here, a spec with a CUDA half runs alone too."""
    from harness.cli.run import pooled
    from harness.execution.executors import Local

    names = ("edge-kernel-handwritten", "lenet-c2", "conv-throughput", "studies/lenet-loops")
    pairs = [(Path(n), load_spec(ROOT / "experiments" / f"{n}.yaml")) for n in names]

    class WithCuda(Local):
        def cuda(self) -> bool:
            return True

    in_pool, alone = pooled(pairs, Local(), jobs=2)
    assert [p.name for p, _ in in_pool] == ["edge-kernel-handwritten", "lenet-c2"]
    assert [p.name for p, _ in alone] == ["conv-throughput", "lenet-loops"]
    in_pool, alone = pooled(pairs, WithCuda(), jobs=2)
    assert [p.name for p, _ in in_pool] == ["edge-kernel-handwritten"]
    assert pooled(pairs, Local(), jobs=1) == ([], pairs)


@pytest.mark.parametrize("value,tags", [("1764842400", {"harness.session_started": "1764842400"}), ("", {}),
                                        ("yesterday", {}), ("-5", {}), ("99999999999", {})])
def test_a_suite_records_when_its_nox_session_began_only_from_a_plausible_time(value, tags, monkeypatch):
    from harness.cli.run import session_start

    monkeypatch.setenv("HARNESS_SESSION_START", value)
    assert session_start() == tags
