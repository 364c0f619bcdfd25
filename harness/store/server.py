"""A team's store: MLflow's tracking server on loopback, backed by PostgreSQL, serving its artifacts itself.

PostgreSQL (Debian's package) and ``mlflow server`` run as child processes on a folder of the project (``.server/``),
with no system service and no TCP listener for the database; both die with this process and stop in order on Ctrl-C
or SIGTERM. docs/internals.md ("Executors, servers and bundles") says how.
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

DB, USER = "mlflow", "harness"
START_WAIT_S = 120.0


WATCHDOG = """
import os, signal, sys, time
parent, group = int(sys.argv[1]), int(sys.argv[2])
while True:
    time.sleep(1)
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        sys.exit()
    if os.getppid() != parent:  # reparented: the server process died
        os.killpg(group, signal.SIGTERM)
        sys.exit()
"""


class ServerError(RuntimeError):
    """The server cannot start; the message is one line that says what to do."""


def pg_bin(name: str) -> str:
    """A PostgreSQL program: on PATH, else the newest of Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   key=lambda p: int(Path(p).parts[4]), reverse=True)), None)
    if not found:
        raise ServerError(f"PostgreSQL's {name} was not found: install it (apt-get install postgresql)")
    return found


def _owner() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as: ``postgres`` when we are root (it refuses root), else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ServerError("running as root, but there is no postgres user to run PostgreSQL as "
                          "(apt-get install postgresql makes one)") from None


def _child_setup(user: pwd.struct_passwd | None):
    """For Popen: become ``user`` (if any), then die (SIGTERM) when this process does."""

    def setup() -> None:
        if user is not None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG, after setuid

    return setup


@dataclass
class Server:
    """PostgreSQL and MLflow's server over ``folder``; ``start()``, then ``uri``, then ``stop()``."""

    folder: Path
    port: int = 5000
    workers: int = 2
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sockets(self) -> Path:
        return self.folder / "run"

    @property
    def backend(self) -> str:
        return f"postgresql+psycopg://{USER}@/{DB}?host={self.sockets}"

    def _log(self, name: str):
        return open(self.folder / f"{name}.log", "ab")

    def init(self, user: pwd.struct_passwd | None) -> None:
        """The cluster and its folders, made once; owned by the user PostgreSQL runs as."""
        data = self.folder / "pgdata"
        for d in (self.folder, self.sockets, self.folder / "artifacts"):
            d.mkdir(parents=True, exist_ok=True)
        if user is not None:
            for d in (self.folder, self.sockets):
                os.chown(d, user.pw_uid, user.pw_gid)
        if (data / "PG_VERSION").is_file():
            return
        with self._log("initdb") as log:
            done = subprocess.run([pg_bin("initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8",
                                   "--locale=C"], stdout=log, stderr=log, preexec_fn=_child_setup(user))
        if done.returncode:
            raise ServerError(f"initdb failed in {data}: see {self.folder / 'initdb.log'}")

    def _spawn(self, name: str, argv: list[str], user: pwd.struct_passwd | None = None) -> subprocess.Popen:
        with self._log(name) as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    preexec_fn=_child_setup(user), start_new_session=True)
        self.procs.append(proc)
        return proc

    def _wait(self, name: str, proc: subprocess.Popen, ready) -> None:
        deadline = time.monotonic() + START_WAIT_S
        while not ready():
            if proc.poll() is not None:
                raise ServerError(f"{name} exited with status {proc.returncode}: see {self.folder / name}.log")
            if time.monotonic() > deadline:
                raise ServerError(f"{name} did not answer within {START_WAIT_S:.0f} s: see {self.folder / name}.log")
            time.sleep(0.2)

    def _database(self) -> bool:
        """Is PostgreSQL up? Makes the ``mlflow`` database the first time it is."""
        import psycopg

        try:
            with psycopg.connect(host=str(self.sockets), user=USER, dbname="postgres", autocommit=True) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone() is None:
                    conn.execute(f"CREATE DATABASE {DB}")
            return True
        except psycopg.OperationalError:
            return False

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def start(self) -> Server:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ServerError("the PostgreSQL driver is missing: pip install -e '.[postgres]'") from None
        user = _owner()
        self.init(user)
        try:
            pg = self._spawn("postgres", [pg_bin("postgres"), "-D", str(self.folder / "pgdata"), "-k",
                                          str(self.sockets), "-c", "listen_addresses="], user)
            self._wait("postgres", pg, self._database)
            mlflow = self._spawn("mlflow", [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                                            self.backend, "--serve-artifacts", "--artifacts-destination",
                                            str(self.folder / "artifacts"), "--host", "127.0.0.1",
                                            "--port", str(self.port), "--workers", str(self.workers)])
            self._watch(mlflow)
            self._wait("mlflow", mlflow, self._healthy)
        except BaseException:
            self.stop()
            raise
        return self

    def _watch(self, proc: subprocess.Popen) -> None:
        """A watchdog that ends ``proc``'s process group if this process dies without stopping it: the death
        signal reaches ``mlflow server`` but not the uvicorn workers it started."""
        subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(proc.pid)],
                         stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        """MLflow's server first (its whole process group), then PostgreSQL (fast shutdown: SIGINT)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGINT if proc is self.procs[0] else signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def serve(folder: Path, port: int) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM; 0 on a clean stop, 1 if a part died."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in the background (SIG_IGN)
    server = Server(folder.resolve(), port)
    server.start()
    print(f"MLflow tracking server on PostgreSQL ({folder}/pgdata), artifacts served from {folder}/artifacts\n"
          f"  runs:   harness reproduce --tracking-uri {server.uri}   (or export MLFLOW_TRACKING_URI={server.uri})\n"
          f"  UI:     {server.uri}\n"
          "Ctrl-C stops it.", flush=True)
    try:
        while server.alive():
            time.sleep(1)
        print(f"harness: error: the server stopped by itself: see {folder}/mlflow.log and postgres.log",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping the MLflow server and PostgreSQL", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.stop()


def add_arguments(parser) -> None:
    """The server's options, for ``harness server`` and ``python -m harness.store.server`` alike."""
    parser.add_argument("--dir", default=".server", help="its folder: database cluster, artifacts, logs (.server)")
    parser.add_argument("--port", type=int, default=5000, help="the port on 127.0.0.1 (default: 5000)")


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.store.server``: ``harness server`` for a machine with MLflow and psycopg only."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m harness.store.server", description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return serve(Path(args.dir), args.port)
    except ServerError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
