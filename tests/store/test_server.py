"""A team's store: PostgreSQL and MLflow's server started in a temp folder, four runners at once, a report."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest

from harness.store import server as srv

ROOT = Path(__file__).resolve().parents[2]
RUNNERS = [["edge-kernel-nn-conv2d.yaml", "worked-convolution.yaml"],  # curves, tables and figures through it
           ["structure-nin.yaml", "worked-pooling.yaml"],
           ["worked-batch-norm.yaml", "worked-lenet-shapes.yaml"],
           ["structure-alexnet.yaml", "worked-skip-blocks.yaml"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_missing_postgres_is_one_line(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(srv.glob, "glob", lambda pattern: [])
    with pytest.raises(srv.ServerError, match=r"^PostgreSQL's initdb was not found: install it \(apt-get"):
        srv.pg_bin("initdb")


@pytest.fixture(scope="module")
def server():
    """The server over a fresh folder in /tmp (PostgreSQL's user must reach it), stopped and removed after."""
    pytest.importorskip("psycopg")
    try:
        srv.pg_bin("postgres")
    except srv.ServerError as exc:
        pytest.skip(str(exc))
    folder = Path(tempfile.mkdtemp(prefix="harness-server-"))
    folder.chmod(0o755)
    running = srv.Server(folder, port=free_port()).start()
    yield running
    running.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.scale
def test_four_runners_at_once(server, tmp_path):
    env = os.environ | {"MLFLOW_TRACKING_URI": server.uri, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *(str(ROOT / "experiments" / f)
                                                                             for f in files)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for files in RUNNERS]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
    assert all("error" not in err for _, err in outs)

    mlflow.set_tracking_uri(server.uri)
    runs = mlflow.search_runs(search_all_experiments=True)
    specs = runs[runs["tags.harness.role"] == "spec"]
    assert sorted(specs["tags.harness.spec"]) == sorted(f.removesuffix(".yaml") for r in RUNNERS for f in r)
    assert set(runs["status"]) == {"FINISHED"}
    units = runs[runs["tags.harness.role"] == "unit"]
    assert len(units) == sum(len(s.split(",")) for s in specs["tags.seeds"])
    # artifacts went through the server (mlflow-artifacts:/), not a shared disk
    assert mlflow.get_experiment(specs["experiment_id"].iloc[0]).artifact_location.startswith("mlflow-artifacts:")
    assert len(list((server.folder / "artifacts").rglob("verdicts.json"))) == len(specs)

    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "report", "--tracking-uri", server.uri, "--out",
                           str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = (out / "REPORT.md").read_text()
    assert f"MLflow store `{server.uri}`" in report
    for files in RUNNERS:
        for f in files:
            assert f'<a id="{f.removesuffix(".yaml")}"></a>' in report


@pytest.mark.scale
def test_harness_server_prints_its_uri_and_stops_on_ctrl_c(tmp_path):
    pytest.importorskip("psycopg")
    folder = Path(tempfile.mkdtemp(prefix="harness-server-"))
    folder.chmod(0o755)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "server", "--dir", str(folder), "--port", str(port)],
                            cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        assert f"--tracking-uri http://127.0.0.1:{port}" in lines[1]
        assert srv.Server(folder, port)._healthy()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not srv.Server(folder, port)._healthy()
        assert not (folder / "pgdata" / "postmaster.pid").exists()  # PostgreSQL shut down cleanly
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
