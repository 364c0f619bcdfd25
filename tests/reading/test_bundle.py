"""export/import: a suite recorded in one store joins another's report, curves, artifacts and all."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.store import tracking
from tests.execution.test_runner import SPEC

ROOT = Path(__file__).resolve().parents[2]


def snapshot(uri: str) -> dict:
    """Every run by (role, name): status, times, params, non-harness tags, metric histories, artifact paths."""
    mlflow.set_tracking_uri(uri)
    client, out = MlflowClient(), {}
    for run in mlflow.search_runs(search_all_experiments=True, output_format="list"):
        info, data = run.info, run.data
        out[(data.tags.get("harness.role"), info.run_name)] = {
            "status": info.status, "times": (info.start_time, info.end_time), "params": data.params,
            "tags": {k: v for k, v in data.tags.items() if k not in ("mlflow.parentRunId", "harness.imported_from")},
            "metrics": {k: [(m.step, m.value) for m in client.get_metric_history(info.run_id, k)]
                        for k in data.metrics},
            "artifacts": tracking.artifact_paths(info.run_id)}
    return out


def test_a_suite_moves_between_stores(write_spec, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    here, there = f"sqlite:///{tmp_path / 'here.db'}", f"sqlite:///{tmp_path / 'there.db'}"
    edge = write_spec(SPEC | {"devices": ["cpu"]})
    assert main(["reproduce", "--tracking-uri", here, "--out", str(tmp_path / "r1"), str(edge),
                 str(ROOT / "experiments/worked-pooling.yaml")]) == 0
    assert main(["run", "--tracking-uri", there, str(ROOT / "experiments/worked-convolution.yaml")]) == 0
    bundle = tmp_path / "suite.tar.gz"
    assert main(["export", "--tracking-uri", here, "latest", "-o", str(bundle)]) == 0
    capsys.readouterr()
    assert main(["import", "--tracking-uri", there, str(bundle)]) == 0
    assert capsys.readouterr().out.startswith("imported 6 run(s) into ")  # suite, 2 specs, 2 + 1 units

    before, after = snapshot(here), snapshot(there)
    assert before.items() <= after.items()  # every run, whole, with its times, tags, curves and artifacts
    imported = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`harness.imported_from` != ''")
    parents = set(imported["tags.mlflow.parentRunId"].dropna())
    assert parents <= set(imported["run_id"])  # the tree is rebuilt on the new ids

    assert main(["import", "--tracking-uri", there, str(bundle)]) == 0  # a second import adds nothing
    assert "imported 0 run(s)" in capsys.readouterr().out
    assert len(snapshot(there)) == len(after)

    assert main(["report", "--tracking-uri", there, "--out", str(tmp_path / "r2")]) == 0
    report = (tmp_path / "r2" / "REPORT.md").read_text()
    for name in ("edge-small", "worked-pooling", "worked-convolution"):
        assert f'<a id="{name}"></a>' in report


def test_one_spec_run_by_prefix_through_stdout(write_spec, tmp_path, monkeypatch, capsysbinary):
    monkeypatch.chdir(tmp_path)
    here, there = f"sqlite:///{tmp_path / 'here.db'}", f"sqlite:///{tmp_path / 'there.db'}"
    assert main(["run", "--tracking-uri", here, str(ROOT / "experiments/worked-pooling.yaml")]) == 0
    mlflow.set_tracking_uri(here)
    spec_id = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`harness.role` = 'spec'")
    capsysbinary.readouterr()
    assert main(["export", "--tracking-uri", here, spec_id["run_id"].iloc[0][:8]]) == 0
    (tmp_path / "b.tgz").write_bytes(capsysbinary.readouterr().out)
    assert main(["import", "--tracking-uri", there, str(tmp_path / "b.tgz")]) == 0
    mlflow.set_tracking_uri(there)
    runs = mlflow.search_runs(search_all_experiments=True)
    assert sorted(runs["tags.harness.role"]) == ["spec", "unit"]
    root = runs[runs["tags.harness.role"] == "spec"].iloc[0]
    assert root["status"] == "FINISHED" and pd_isna(root.get("tags.mlflow.parentRunId"))


def pd_isna(value) -> bool:
    return value is None or value != value


@pytest.mark.parametrize(("argv", "message"), [
    (["export", "nosuch"], "nosuch: not a run id (its first 6 characters or more), a git commit, or latest"),
    (["export", "abc"], "abc: not a run id (its first 6 characters or more), a git commit, or latest"),
    (["export", "latest"], "latest: this store holds no suite run"),
    (["import", "missing.tgz"], "missing.tgz: No such file or directory"),
    (["import", "junk.tgz"], "junk.tgz: not a harness bundle"),
])
def test_bad_input_is_one_line(argv, message, store, tmp_path, capsys):
    assert main(["run", str(ROOT / "experiments/worked-pooling.yaml")]) == 0
    (tmp_path / "junk.tgz").write_text("not a tar")
    capsys.readouterr()
    assert main([*argv, "-o", str(tmp_path / "x.tgz")] if argv[0] == "export" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "x.tgz").exists()  # no half-written bundle
