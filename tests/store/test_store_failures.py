"""Every store a user can break ends in one line and status 4, and the store keeps what it held (issue 26).

A file that is no database, a folder, a missing folder, a URI MLflow does not know, a server that is down, not
MLflow or failing; a full disk or a read-only store in the middle of a run (simulated: the tests run as root, where
chmod stops no write).
"""

from __future__ import annotations

import errno
import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
import sqlalchemy.exc
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from harness.cli import main
from harness.store import opening, tracking
from harness.store.locks import StoreError, failure

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "experiments" / "worked-pooling.yaml")
COMMANDS = {"report": ["report"], "run": ["run", SPEC], "compare": ["compare", "latest", "latest~1"]}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow store with the harness's experiment and no runs (made once; tests copy it)."""
    path = tmp_path_factory.mktemp("empty") / "mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_EXPERIMENT_NAME", "")
        tracking.connect(f"sqlite:///{path}")
    return path


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``folder``, lock files aside: what a store holds."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*")) if not p.name.endswith(".lock")}


def one_error_line(err: str, *names: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), err
    assert all(name in lines[0] for name in names), (names, lines[0])
    return lines[0]


class Handler(http.server.BaseHTTPRequestHandler):
    """A server on loopback that is not a working MLflow: ``status`` and ``body`` for every GET."""

    status, body = 404, b"<html>Not Found</html>"

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def serve(status: int, body: bytes):
    """A running HTTP server answering ``status`` and ``body``; its URI."""
    handler = type("Answer", (Handler,), {"status": status, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_file(tmp, _):
    (tmp / "mlflow.db").write_text("my notes, not a database\n")
    return "mlflow.db", str(tmp / "mlflow.db")


def random_bytes(tmp, _):
    (tmp / "mlflow.db").write_bytes(os.urandom(8192))
    return "mlflow.db", str(tmp / "mlflow.db")


def truncated(tmp, empty):
    (tmp / "mlflow.db").write_bytes(empty.read_bytes()[:100])  # SQLite's header, then nothing
    return "mlflow.db", str(tmp / "mlflow.db")


def cut_short(tmp, empty):
    (tmp / "mlflow.db").write_bytes(empty.read_bytes()[:50_000])
    return "mlflow.db", str(tmp / "mlflow.db")


def another_database(tmp, _):
    with sqlite3.connect(tmp / "mlflow.db") as db:
        db.execute("create table notes (body text)")
    return "mlflow.db", str(tmp / "mlflow.db")


def a_folder(tmp, _):
    (tmp / "mlflow.db").mkdir()
    return "mlflow.db", str(tmp / "mlflow.db")


def no_such_folder(tmp, _):
    return "nowhere/x.db", str(tmp / "nowhere" / "x.db")


def unknown_scheme(tmp, _):
    return "foo://bar/mlflow", "foo://bar/mlflow"


def nothing_listens(tmp, _):
    uri = f"http://127.0.0.1:{closed_port()}"
    return uri, uri


BROKEN = {  # a store a user can break -> (its URI relative to tmp_path or whole, the name the error line gives)
    "text file": (text_file, "not an MLflow store"),
    "random bytes": (random_bytes, "not an MLflow store"),
    "truncated after the header": (truncated, "not an MLflow store"),
    "cut short": (cut_short, "not an MLflow store"),
    "another program's SQLite": (another_database, "not an MLflow store"),
    "a folder": (a_folder, "not an MLflow store"),
    "a missing folder": (no_such_folder, "does not exist"),
    "an unknown scheme": (unknown_scheme, "not a store MLflow knows"),
    "nothing listening": (nothing_listens, "no MLflow server answers (connection refused)"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_store_is_one_line_status_4_and_left_as_it_was(case, command, tmp_path, store, empty_store, capsys):
    make, words = BROKEN[case]
    where, name = make(tmp_path, empty_store)
    uri = where if "://" in where else f"sqlite:///{tmp_path / where}"
    before = snapshot(tmp_path)
    start = time.perf_counter()
    assert main([*COMMANDS[command], "--tracking-uri", uri]) == 4
    assert time.perf_counter() - start < 10  # no retries for two minutes
    one_error_line(capsys.readouterr().err, name, words)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("status,body,words", [
    (404, b"<html>Not Found</html>", "a server answers, but not MLflow's API (HTTP 404"),
    (200, b"hello", "a server answers, but not MLflow's API (HTTP 200"),
    (500, json.dumps({"error_code": "INTERNAL_ERROR", "message": "db down"}).encode(),
     "the MLflow server fails (HTTP 500"),
])
def test_a_server_that_is_not_a_working_mlflow_is_one_line(status, body, words, tmp_path, store, capsys):
    server, uri = serve(status, body)
    try:
        start = time.perf_counter()
        assert main(["run", SPEC, "--tracking-uri", uri]) == 4
        assert time.perf_counter() - start < 10
    finally:
        server.shutdown()
        server.server_close()
    one_error_line(capsys.readouterr().err, uri, words)
    assert snapshot(tmp_path) == {}


def test_a_server_that_never_answers_is_given_up_within_seconds(tmp_path, store, capsys, monkeypatch):
    monkeypatch.setattr(opening, "CONNECT_S", 1.0)
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.perf_counter()
        assert main(["report", "--tracking-uri", uri]) == 4
        assert time.perf_counter() - start < 10
    one_error_line(capsys.readouterr().err, uri, "no MLflow server answers (no answer within 1 s)")


@pytest.mark.parametrize("command,status", [("report", 1), ("compare", 2)])
def test_reading_a_store_that_is_not_there_makes_none(command, status, tmp_path, store, capsys):
    """An empty file is an empty SQLite database; a reading command leaves it empty and makes no store."""
    (tmp_path / "empty.db").touch()
    for uri in (f"sqlite:///{tmp_path / 'empty.db'}", f"sqlite:///{tmp_path / 'absent.db'}"):
        assert main([*COMMANDS[command], "--tracking-uri", uri]) == status
        one_error_line(capsys.readouterr().err, uri.removeprefix("sqlite:///"))
    assert snapshot(tmp_path) == {"empty.db": b""}


def test_a_folder_or_store_that_cannot_be_written_is_refused_before_a_run(tmp_path, store, empty_store, capsys,
                                                                          monkeypatch):
    """As root chmod stops nothing, so the answer of ``os.access`` stands in for a read-only folder."""
    monkeypatch.setattr(opening.os, "access", lambda path, mode: False)
    assert main(["run", SPEC]) == 4
    one_error_line(capsys.readouterr().err, str(tmp_path), "is not writable")
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    before = snapshot(tmp_path)
    assert main(["run", SPEC]) == 4
    one_error_line(capsys.readouterr().err, str(tmp_path / "mlflow.db"), "the store is read-only")
    assert snapshot(tmp_path) == before


# ---- the store fails in the middle of a run ---------------------------------------------------------------


_log_batch, _log_artifact = SqlAlchemyStore.log_batch, LocalArtifactRepository.log_artifact


def full_on_metrics(self, run_id, metrics=(), params=(), tags=()):
    """SQLite fills up when a unit logs its first metrics (its params went in)."""
    if metrics:
        raise sqlalchemy.exc.OperationalError("INSERT INTO metrics", {}, sqlite3.OperationalError(
            "database or disk is full"))
    return _log_batch(self, run_id, metrics, params, tags)


def no_space_for_measured(self, local_file, artifact_path=None):
    """The artifacts' disk fills up when a unit writes ``measured.json``, its last artifact."""
    if Path(local_file).name == "measured.json":
        raise OSError(errno.ENOSPC, "No space left on device", "/store/mlartifacts/measured.json")
    return _log_artifact(self, local_file, artifact_path)


def read_only(self, run_id, metrics=(), params=(), tags=()):
    raise sqlite3.OperationalError("attempt to write a readonly database")


MID_RUN = {  # what fails -> (the method replaced, by what, the words of the line, the runs it leaves)
    "SQLite is full": ((SqlAlchemyStore, "log_batch"), full_on_metrics,
                       "the disk is full (database or disk is full)", {"spec", "unit"}),
    "the artifacts' disk is full": ((LocalArtifactRepository, "log_artifact"), no_space_for_measured,
                                    "the disk is full (No space left on device: /store/mlartifacts/measured.json)",
                                    {"spec", "unit"}),
    "the store turned read-only": ((SqlAlchemyStore, "log_batch"), read_only,
                                   "the store is read-only (attempt to write a readonly database)", {"spec"}),
}


def runs(uri: str):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(search_all_experiments=True)


@pytest.mark.parametrize("case", MID_RUN)
@pytest.mark.parametrize("command", ["run", "reproduce"])
def test_a_store_that_fails_mid_run_ends_the_run_failed_in_one_line(case, command, tmp_path, store, capsys,
                                                                     monkeypatch):
    (owner, method), replacement, words, roles = MID_RUN[case]
    monkeypatch.setattr(owner, method, replacement)
    args = [command, SPEC, "--out", str(tmp_path / "reports")] if command == "reproduce" else [command, SPEC]
    assert main(args) == 4
    line = one_error_line(capsys.readouterr().err, str(tmp_path / "mlflow.db"), words)
    assert line.endswith("; the run was ended FAILED")
    monkeypatch.undo()
    df = runs(store)
    assert set(df["status"]) == {"FAILED"}  # nothing left RUNNING, nothing FINISHED that is not whole
    assert set(df["tags.harness.role"]) == roles | ({"suite"} if command == "reproduce" else set())
    assert len(df[df["tags.harness.role"] == "unit"]) <= 1  # the suite stopped at the failure
    assert not (tmp_path / "reports").exists()  # no report of a suite half recorded


CHILD = """
import sqlite3, sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from harness.cli import main

def full(*args, **kwargs):
    raise sqlite3.OperationalError("database or disk is full")

for method in ("log_batch", "set_tag", "update_run_info", "log_param", "log_metric"):
    setattr(SqlAlchemyStore, method, full)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command,open_runs", [("run", 1), ("reproduce", 2)])
def test_a_run_the_store_cannot_end_is_left_running_and_the_next_command_ends_it(command, open_runs, tmp_path, store,
                                                                                capsys):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    child = subprocess.run([sys.executable, "-c", CHILD, command, SPEC], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 4, child.stderr
    line = one_error_line(child.stderr, str(tmp_path / "mlflow.db"), "the disk is full")
    assert "; the run is left RUNNING (worked-pooling" in line
    assert line.endswith("); the next command that opens the store ends it FAILED")
    assert list(runs(store)["status"]) == ["RUNNING"] * open_runs
    assert main(["report"]) == 1  # no finished runs; the runs left open are ended on the way
    assert capsys.readouterr().err.count("vanished") == open_runs
    assert list(runs(store)["status"]) == ["FAILED"] * open_runs
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("err,words", [
    (sqlite3.OperationalError("database or disk is full"), "the disk is full"),
    (sqlalchemy.exc.OperationalError("UPDATE runs", {}, sqlite3.OperationalError("attempt to write a readonly "
                                                                                 "database")), "read-only"),
    (OSError(errno.EROFS, "Read-only file system", "/x"), "read-only"),
    (RuntimeError("API request to http://h/api/2.0/mlflow/runs/log-batch failed with exception Max retries"),
     "the MLflow server failed or stopped answering"),
    (ValueError("a bug"), None),
    (OSError(errno.ENOENT, "No such file", "/x"), None),
])
def test_store_failures_are_told_from_other_errors(err, words):
    why = failure(err)
    assert (why is None) if words is None else (words in why)


def test_a_recording_failure_is_a_store_error_that_says_what_became_of_the_run():
    assert str(tracking.RecordingFailed("x: the disk is full")) == "x: the disk is full; the run was ended FAILED"
    assert issubclass(tracking.RecordingFailed, StoreError)
