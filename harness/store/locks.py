"""The MLflow store under load and after crashes: one creator at a time, patient writes, no run left RUNNING.

A SQLite store is created under a file lock beside it; a write that meets ``database is locked`` is retried for up
to ``LOCK_WAIT_S`` seconds; every run records its host, pid and a heartbeat, and a RUNNING run whose process is gone
is ended FAILED by the next command that opens the store (docs/internals.md, "Crowds and crashes").
"""

from __future__ import annotations

import errno
import functools
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import psutil
from filelock import FileLock, Timeout
from mlflow import MlflowClient

from harness.errors import StoreError
from harness.store.tags import ENDED_BY, HEARTBEAT, HOST, PID, STARTED

LOCK_WAIT_S = 120.0  # how long a write may keep meeting a locked database before it gives up
CREATE_WAIT_S = 600.0  # how long a runner waits for another to create or upgrade the store
HEARTBEAT_S = 30.0
STALE_S = 600.0  # a run on another host with no heartbeat for this long has lost its process

F = TypeVar("F", bound=Callable[..., Any])


class StoreLocked(StoreError):
    """The store stayed locked past the bound; the message is one line."""


def _is_locked(err: BaseException) -> bool:
    return "database is locked" in str(err)


BROKEN = {  # what SQLite says -> what it means to the user
    "database or disk is full": "the disk is full",
    "attempt to write a readonly database": "the store is read-only",
    "unable to open database file": "the database file cannot be opened",
    "disk I/O error": "the disk failed a read or write",
    "file is not a database": "not an MLflow store",
    "database disk image is malformed": "not an MLflow store",
}
OS_BROKEN = {errno.ENOSPC: "the disk is full", errno.EROFS: "the store is read-only",
             errno.EDQUOT: "the disk quota is used up"}


def failure(err: BaseException) -> str | None:
    """What a failed store operation means (``the disk is full (<SQLite's words>)``); None for any other error."""
    if isinstance(err, OSError) and err.errno in OS_BROKEN:
        return f"{OS_BROKEN[err.errno]} ({err.strerror}: {err.filename})"
    text = str(err)
    for words, meaning in BROKEN.items():
        if words in text:
            return f"{meaning} ({words})"
    if "API request to" in text:  # MLflow's REST client, once its own retries are spent
        return f"the MLflow server failed or stopped answering ({text.splitlines()[0][:300]})"
    return None


def store_name(uri: str | None = None) -> str:
    """The store as a user names it: a SQLite store's file, any other's URI (default: the one MLflow points at)."""
    uri = uri or mlflow.get_tracking_uri()
    return str(sqlite_path(uri) or uri)


def retry_locked(fn: F) -> F:
    """Retry ``fn`` with exponential backoff while SQLite says ``database is locked``, up to ``LOCK_WAIT_S``.

    MLflow rolls a failed write back, so a retried write is applied once. A store that cannot be written (a full
    disk, a read-only file, a server gone) raises ``StoreError``, one line naming the store.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        delay, waited = 0.05, 0.0
        while True:
            try:
                return fn(*args, **kwargs)
            except StoreError:
                raise
            except Exception as err:
                if not _is_locked(err):
                    why = failure(err)
                    if why is None:
                        raise
                    raise StoreError(f"{store_name()}: {why}") from err
                if waited >= LOCK_WAIT_S:
                    raise StoreLocked(f"the MLflow store stayed locked for {waited:.0f} s ({fn.__name__}): another "
                                      "process holds it; try again when it is done") from None
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)

    return wrapper  # type: ignore[return-value]


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()


def creation_lock(uri: str):
    """A lock held while a SQLite store is created or upgraded (a no-op for servers, which do their own)."""
    path = sqlite_path(uri)
    if path is None:
        return nullcontext()
    lock = FileLock(f"{path}.lock", timeout=CREATE_WAIT_S)

    @contextmanager
    def held() -> Iterator[None]:
        try:
            with lock:
                yield
        except Timeout:
            raise StoreLocked(f"{path}: another runner has been creating this MLflow store for over "
                              f"{CREATE_WAIT_S:.0f} s ({path}.lock)") from None

    return held()


def identity() -> dict[str, str]:
    """Where this process's runs live: host, pid and the process's start time (to tell a reused pid apart)."""
    proc = psutil.Process()
    return {HOST: socket.gethostname(), PID: str(proc.pid), STARTED: f"{proc.create_time():.3f}"}


def _gone(tags: dict[str, str], start_ms: int, now: float) -> str | None:
    """Why the process of a RUNNING run is gone, or None while it may still be running."""
    if tags.get(HOST) == socket.gethostname():
        pid = int(tags.get(PID, "0") or 0)
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return f"pid {pid} on {tags[HOST]} has exited"
            if abs(proc.create_time() - float(tags.get(STARTED, "nan"))) > 1.0:
                return f"pid {pid} on {tags[HOST]} is now another process"
            return None
        except (psutil.NoSuchProcess, ValueError):
            return f"pid {pid} on {tags[HOST]} is gone"
        except psutil.AccessDenied:
            return None
    last = float(tags.get(HEARTBEAT) or start_ms / 1000)
    if now - last > STALE_S:
        return f"no heartbeat from {tags.get(HOST)} for {(now - last) / 60:.0f} min (pid {tags.get(PID)})"
    return None


def end_run_as(client: MlflowClient, run_id: str, status: str, why: str) -> None:
    """End a run whose own process cannot (it vanished, or never started) as ``status``, saying why."""
    client.set_tag(run_id, ENDED_BY, why[:5000])
    client.set_terminated(run_id, status)


@retry_locked
def recover_orphans(experiment_id: str) -> list[str]:
    """End as FAILED every RUNNING (or SCHEDULED) harness run whose process is gone; one line each, on stderr."""
    client, now, lines = MlflowClient(), time.time(), []
    open_runs = [run for status in ("RUNNING", "SCHEDULED")
                 for run in client.search_runs([experiment_id], filter_string=f"attributes.status = '{status}'",
                                               max_results=1000)]
    for run in open_runs:
        tags = run.data.tags
        if HOST not in tags:
            continue  # not a run this harness can vouch for
        why = _gone(tags, run.info.start_time, now)
        if why is None:
            continue
        end_run_as(client, run.info.run_id, "FAILED", f"process vanished: {why}")
        line = (f"harness: run {run.info.run_id[:8]} ({run.info.run_name}) was left {run.info.status} and its process "
                f"vanished ({why}): ended as FAILED")
        print(line, file=sys.stderr)
        lines.append(line)
    return lines


class Heartbeat:
    """A daemon thread that stamps ``harness.heartbeat`` on this process's running runs every ``HEARTBEAT_S``."""

    def __init__(self) -> None:
        self.runs: set[str] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, run_id: str) -> None:
        with self.lock:
            self.runs.add(run_id)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._beat, name="harness-heartbeat", daemon=True)
                self.thread.start()

    def remove(self, run_id: str) -> None:
        with self.lock:
            self.runs.discard(run_id)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self.lock:
                runs = sorted(self.runs)
            for run_id in runs:
                try:
                    MlflowClient().set_tag(run_id, HEARTBEAT, f"{time.time():.0f}")
                except Exception:  # noqa: BLE001 - a missed beat is not an error; the next one comes
                    pass


HEARTBEATS = Heartbeat()
