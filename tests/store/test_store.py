"""The store under crowds and crashes: concurrent first use, locked writes, and runs whose process vanished."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from harness.cli import main
from harness.store import locks as hs
from harness.store import tracking
from tests import sleeper

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"


def child_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env.pop("PYTEST_CURRENT_TEST", None)  # MLflow checks session flags under pytest; a child is a plain run
    return env


def harness_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def all_runs(uri: str):
    """Every run in the store, read under the creation lock (a child process may be creating the store)."""
    mlflow.set_tracking_uri(uri)
    with hs.creation_lock(uri):
        return mlflow.search_runs(search_all_experiments=True)


def test_four_runners_on_a_fresh_store_all_finish(tmp_path):
    """Four processes started together on a directory with no store: one creates it, the others wait."""
    specs = ["worked-pooling.yaml", "worked-convolution.yaml", "worked-lenet-shapes.yaml", "edge-kernel-nn-conv2d.yaml"]
    procs = [subprocess.Popen(harness_cmd("run", str(EXPERIMENTS / s)), cwd=tmp_path, env=child_env(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in specs]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert err == "", err  # a CPU-only run prints nothing on stderr: no library warning, no lock noise
    df = all_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert set(df["status"]) == {"FINISHED"}  # spec runs and their unit runs, none lost
    spec_runs = df[df["tags.harness.role"] == "spec"]
    assert sorted(spec_runs["tags.harness.spec"]) == sorted(s.removesuffix(".yaml") for s in specs)
    units = df[df["tags.harness.role"] == "unit"]
    assert set(units["tags.mlflow.parentRunId"]) == set(spec_runs["run_id"])


def test_a_run_killed_outright_is_ended_by_the_next_command(tmp_path, store, write_spec, capsys):
    path = write_spec(sleeper.spec(seconds=120))
    child = subprocess.Popen([sys.executable, "-m", "tests.sleeper", "run", str(path)], cwd=tmp_path,
                             env=child_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the child's spec run and its unit run are in flight
        df = all_runs(store)
        if len(df) == 2 and set(df["status"]) == {"RUNNING"}:
            break
        time.sleep(0.2)
    else:
        child.kill()
        pytest.fail("the child never started its run: " + child.stderr.read().decode())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert set(df["tags.harness.pid"]) == {str(child.pid)} and set(df["tags.harness.host"]) == {socket.gethostname()}

    assert main(["run", str(EXPERIMENTS / "worked-pooling.yaml")]) == 0
    err = capsys.readouterr().err
    lines = sorted(line for line in err.splitlines() if "vanished" in line)
    names = dict(zip(df["run_id"], df["tags.mlflow.runName"]))
    assert len(lines) == 2  # the spec run and its unit run, one line each
    for run_id, line in zip(sorted(names, key=lambda r: f"harness: run {r[:8]}"), lines):
        assert line.startswith(f"harness: run {run_id[:8]} ({names[run_id]}) was left RUNNING")
        assert line.endswith("ended as FAILED") and f"pid {child.pid}" in line
        killed = MlflowClient().get_run(run_id)
        assert killed.info.status == "FAILED" and killed.data.tags[hs.ENDED_BY].startswith("process vanished")
    assert set(all_runs(store)["status"]) == {"FINISHED", "FAILED"}
    assert main(["report", "--out", str(tmp_path / "reports")]) == 0  # the report shows only the finished run
    text = (tmp_path / "reports" / "REPORT.md").read_text()
    assert "worked-pooling" in text and "sleepy" not in text


def fake_run(client: MlflowClient, exp_id: str, tags: dict[str, str]) -> str:
    return client.create_run(exp_id, tags=tags, run_name="elsewhere").info.run_id


def test_runs_of_other_hosts_end_only_after_their_heartbeat_stops(store):
    exp_id = tracking.connect()
    client, now = MlflowClient(), time.time()
    stale = fake_run(client, exp_id, {hs.HOST: "gpu-box", hs.PID: "7", hs.HEARTBEAT: f"{now - 3600:.0f}"})
    fresh = fake_run(client, exp_id, {hs.HOST: "gpu-box", hs.PID: "8", hs.HEARTBEAT: f"{now - 5:.0f}"})
    foreign = fake_run(client, exp_id, {})  # not a harness run: left alone
    lines = hs.recover_orphans(exp_id)
    assert len(lines) == 1 and "no heartbeat from gpu-box for 60 min" in lines[0]
    assert client.get_run(stale).info.status == "FAILED"
    assert client.get_run(fresh).info.status == client.get_run(foreign).info.status == "RUNNING"


def test_a_reused_pid_is_not_mistaken_for_the_run_s_process(store):
    exp_id = tracking.connect()
    client = MlflowClient()
    mine = hs.identity()
    reused = fake_run(client, exp_id, mine | {hs.STARTED: "12.000"})  # this pid, an older process's start
    alive = fake_run(client, exp_id, mine)
    lines = hs.recover_orphans(exp_id)
    assert len(lines) == 1 and "is now another process" in lines[0]
    assert client.get_run(reused).info.status == "FAILED" and client.get_run(alive).info.status == "RUNNING"


def test_locked_writes_are_retried_then_fail_with_one_line(monkeypatch):
    calls = []

    @hs.retry_locked
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "written"

    assert flaky() == "written" and len(calls) == 3

    monkeypatch.setattr(hs, "LOCK_WAIT_S", 0.2)

    @hs.retry_locked
    def stuck():
        raise RuntimeError("(sqlite3.OperationalError) database is locked")

    with pytest.raises(hs.StoreLocked) as err:
        stuck()
    assert "\n" not in str(err.value) and "stayed locked" in str(err.value)

    @hs.retry_locked
    def other():
        raise ValueError("not a lock")

    with pytest.raises(ValueError):
        other()
