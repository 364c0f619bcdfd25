"""Sessions: tests (default), reproduce (the main job), bench, lint.

Each session installs the project into its own virtualenv (reused between runs: torch is
large). torch/torchvision come from the pinned builds this machine keeps on disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def install(session: nox.Session) -> None:
    session.install("torch==2.14.1", "torchvision==0.29.1")
    session.install("-e", ".[test]")


def ensure_fashion_mnist(session: nox.Session) -> None:
    """Install Debian's dataset-fashion-mnist when it is missing and we may (root with apt-get)."""
    if FASHION_MNIST.is_dir() or os.environ.get("FASHION_MNIST_DIR"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "dataset-fashion-mnist", external=True)
    else:
        session.warn("Fashion-MNIST not found: install Debian's dataset-fashion-mnist or set FASHION_MNIST_DIR")


@nox.session
def tests(session: nox.Session) -> None:
    """The default test run: fast tests; long runs and benchmarks are skipped."""
    install(session)
    ensure_fashion_mnist(session)
    session.run("pytest", *session.posargs)


@nox.session
def reproduce(session: nox.Session) -> None:
    """Run every spec in experiments/ as one MLflow suite, then write reports/REPORT.md."""
    install(session)
    ensure_fashion_mnist(session)
    session.run("harness", "reproduce", "experiments", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark suite; results saved as JSON under reports/."""
    install(session)
    ensure_fashion_mnist(session)
    Path("reports").mkdir(exist_ok=True)
    session.run("pytest", "--benchmark-only", "tests/bench", "--benchmark-json", "reports/benchmarks.json",
                *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and import-linter's layer contract (pyproject.toml): no import cycle inside harness/."""
    session.install("ruff", "import-linter")
    session.install("-e", ".", "--no-deps")
    session.run("ruff", "check", "harness", "tests", "noxfile.py")
    session.run("lint-imports")
