"""Sessions: tests (default), reproduce (the main job; `-- --studies` adds the long checks), scale (Ray and
PostgreSQL tests), server, ui, bench, lint, lock (re-resolve requirements.lock), gpu_kit (the CUDA half packed for a
GPU node).

Each session installs requirements.lock (every dependency and extra, pinned with hashes), then torch and torchvision
at the pinned builds this machine keeps on disk, then the project without dependencies, into its own virtualenv:
made and filled by uv where nox finds it (`pip install 'nox[uv]'`), else by virtualenv and pip.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "uv|virtualenv"

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
STARTED = time.time()  # when nox began: the suite's run records it, and the report states the time install included


LOCK = "requirements.lock"
TORCH = ("torch==2.14.1", "torchvision==0.29.1")  # outside the lock: the builds on this machine's disk
D2L = "d2l==1.0.3"  # the book's own package, the peer of `nox -s bench`: outside the lock, its own pins are too old


def install(session: nox.Session, peer: bool = False, byte_compile: bool = True) -> None:
    """The locked environment: the same versions of everything on every machine (with ``peer``, the book's package
    too, without its dependencies: the lock holds what it needs beside it). ``byte_compile=False`` skips the
    byte-compiling of every installed file (torch's thousands among them): Python compiles what a run imports, when
    it imports it."""
    uv = session.venv_backend == "uv"
    if uv:
        options = [*sources(session), *(["--compile-bytecode"] if byte_compile else [])]  # uv compiles only if asked
    else:
        options = [] if byte_compile else ["--no-compile"]
    session.install(*options, "-r", LOCK)
    session.install(*options, *TORCH, *(["pip"] if uv else []))  # pip too: the GPU kit's build calls pip download
    session.install(*options, "--no-deps", "-e", ".", *([D2L] if peer else []))


PIP_SOURCES = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
               "constraint": "--constraint"}


def sources(session: nox.Session) -> list[str]:
    """For uv, options naming the places pip is configured to install from (``pip config list``: a machine's mirror
    or wheel folder lives there, and uv reads none of pip's configuration), choosing as pip does among indexes: the
    best version on any of them; pip's certificate bundle, if set, becomes uv's ``SSL_CERT_FILE``. For pip, none."""
    if session.venv_backend != "uv":
        return []
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    options = ["--index-strategy", "unsafe-best-match"]
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        name, value = key.rsplit(".", 1)[-1], value.strip("'\"")
        if name == "cert" and value:
            session.env.setdefault("SSL_CERT_FILE", value)
        for item in value.split() if name in PIP_SOURCES else ():
            if item not in options:
                options += [PIP_SOURCES[name], item]
    return options


def apt_install(session: nox.Session, package: str, why: str) -> None:
    """Install a Debian package when we may (root with apt-get); otherwise say what is missing and why."""
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", package, external=True)
    else:
        session.warn(f"{package} is not installed: {why}")


def ensure_fashion_mnist(session: nox.Session) -> None:
    """Debian's dataset-fashion-mnist, unless Fashion-MNIST is already there."""
    if not (FASHION_MNIST.is_dir() or os.environ.get("FASHION_MNIST_DIR")):
        apt_install(session, "dataset-fashion-mnist", "install it, or set FASHION_MNIST_DIR to the idx files")


def ensure_chromium(session: nox.Session) -> None:
    """Debian's chromium, for the browser test of MLflow's UI (Playwright drives it; it downloads no browser)."""
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        apt_install(session, "chromium", "the browser test of MLflow's UI is skipped without it")


def ensure_postgres(session: nox.Session) -> None:
    """Debian's postgresql (initdb and postgres), for the team's tracking server and its test."""
    if not (shutil.which("postgres") or glob.glob("/usr/lib/postgresql/*/bin/postgres")):
        apt_install(session, "postgresql", "the tracking server needs PostgreSQL")


@nox.session
def tests(session: nox.Session) -> None:
    """The default test run: fast tests, every benchmark body once and untimed (its checks run); long runs skipped."""
    install(session, peer=True)
    ensure_fashion_mnist(session)
    ensure_chromium(session)
    session.run("pytest", "--benchmark-disable", *session.posargs)


@nox.session
def reproduce(session: nox.Session) -> None:
    """Run every spec in experiments/ as one MLflow suite, then write reports/REPORT.md. `-- --studies` then runs
    experiments/studies/ too (the checks kept out of the suite's 8 minutes), each spec on its own, and writes the
    report again. Installed without byte-compiling: one process imports a fraction of what the lock installs."""
    session.env["HARNESS_SESSION_START"] = f"{STARTED:.0f}"
    studies = "--studies" in session.posargs
    args = [a for a in session.posargs if a != "--studies"]
    install(session, byte_compile=False)
    ensure_fashion_mnist(session)
    if not studies:
        session.run("harness", "reproduce", "experiments", *args)
        return
    session.run("harness", "reproduce", "experiments", "--no-report", "--allow-miss", *args)  # a miss is a verdict:
    session.run("harness", "run", "experiments/studies", "--allow-miss", *args)  # the report says which, not exit 1
    session.run("harness", "report")


@nox.session
def scale(session: nox.Session) -> None:
    """The tests marked scale: one suite on a local Ray cluster against the local executor, a dying Ray worker,
    and four runners at once against MLflow's server on PostgreSQL."""
    install(session)
    ensure_fashion_mnist(session)
    ensure_postgres(session)
    session.run("pytest", "--run-scale", "-m", "scale", *session.posargs)


@nox.session
def server(session: nox.Session) -> None:
    """A team's MLflow tracking server on 127.0.0.1:5000, backed by PostgreSQL in .server/; Ctrl-C stops it.
    `nox -s server -- --port 5001` passes options on."""
    where = sources(session)
    session.install(*where, "mlflow>=2.14", "psycopg[binary]>=3.1")  # no torch: it runs no experiment
    session.install(*where, "-e", ".", "--no-deps")
    ensure_postgres(session)
    session.run("python", "-m", "harness.store.server", *session.posargs)


@nox.session
def ui(session: nox.Session) -> None:
    """MLflow's UI on the store `nox -s reproduce` left here, in headless chromium: the suite, its specs, and
    lenet-c2's three seeds overlaid on one test_acc chart; the screenshot goes to reports/."""
    install(session)
    ensure_chromium(session)
    store = Path("mlflow.db").resolve()
    if not store.is_file():
        session.error("no mlflow.db here: run `nox -s reproduce` first")
    session.run("pytest", "tests/store/test_ui.py", "-k", "reproduce_store", "-rs", *session.posargs,
                env={"HARNESS_UI_STORE": f"sqlite:///{store}"})


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark suite. Each run is saved (--benchmark-autosave, with torch and device info) under
    .benchmarks/<CPU model>-<cores>, so `nox -s bench -- --benchmark-compare` compares with this machine's
    last run (add --benchmark-compare-fail=median:10% to fail on a slowdown); the JSON also goes to reports/.
    The peer benchmark runs the book's own package (d2l 1.0.3) against the harness loop."""
    install(session, peer=True)
    ensure_fashion_mnist(session)
    Path("reports").mkdir(exist_ok=True)
    machine = session.run("python", "-c", "from harness.machine.env import machine_slug; print(machine_slug())",
                          silent=True).strip()
    session.run("pytest", "--benchmark-only", "tests/bench",
                "--benchmark-json", "reports/benchmarks.json", "--benchmark-autosave",
                f"--benchmark-storage=file://.benchmarks/{machine}", *session.posargs)


@nox.session
def gpu_kit(session: nox.Session) -> None:
    """dist/d2l-cnn-kit-*.tar.gz: the code, the wheels a PyTorch node lacks (for Python 3.12; `-- --python 3.11`
    for another), Fashion-MNIST and run.py. On the node: `tar xzf` it, then `python3 <kit>/run.py OUT`."""
    install(session)
    ensure_fashion_mnist(session)
    session.run("python", "kit/build.py", *session.posargs)


@nox.session
def lock(session: nox.Session) -> None:
    """Re-resolve requirements.lock from pyproject.toml (pip-tools, with hashes; torch and torchvision stay out:
    they are pinned above). `nox -s lock -- --upgrade` takes the newest versions the bounds allow."""
    session.install(*sources(session), "pip-tools>=7.4")
    pins = Path(session.create_tmp()) / "torch.txt"  # resolved against the pinned torch, then left out
    pins.write_text("\n".join(TORCH) + "\n")
    session.run("pip-compile", "--quiet", "--generate-hashes", "--all-extras", "--strip-extras", "--no-emit-index-url",
                "--no-emit-find-links", "--unsafe-package", "torch", "--unsafe-package", "torchvision",
                "-c", str(pins), "-o", LOCK, "pyproject.toml", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and import-linter's layer contract (pyproject.toml): no import cycle inside harness/."""
    where = sources(session)
    session.install(*where, "ruff", "import-linter")
    session.install(*where, "-e", ".", "--no-deps")
    session.run("ruff", "check", "harness", "tests", "kit", "noxfile.py")
    session.run("lint-imports")
