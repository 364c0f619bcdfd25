"""The ``harness`` command: run, reproduce, list, show, report, compare, check, server, export, import.

Exit status: 0 no gating reference was decisively not reproduced; 1 one was (unless --allow-miss) or a run failed;
2 a bad spec or bad arguments; 3 with --strict, a gating timing reference stayed inconclusive; 4 the store cannot be
reached, read or written; 5 a bundle cannot be read or imported; 70 an unexpected error (a bug); 130 interrupted.
Every error is one line on stderr; ``--debug`` (or ``HARNESS_DEBUG=1``) adds the traceback.
Each command group is a module with ``setup_arguments(subparsers)``, which sets its commands' ``func``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

from harness.cli import check, compare, report, run, specs, store
from harness.cli.options import EXIT_BUNDLE, EXIT_INCONCLUSIVE, EXIT_INTERNAL, EXIT_STORE
from harness.errors import BundleError, StoreError
from harness.schema import first_line
from harness.specs.spec import SpecError

GROUPS = (run, specs, report, compare, check, store)

__all__ = ["EXIT_INCONCLUSIVE", "main", "parser"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="print the traceback of an error (or HARNESS_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.setup_arguments(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "experiment", None):
        os.environ["MLFLOW_EXPERIMENT_NAME"] = args.experiment  # MLflow's own variable, read where runs are made
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error ends in one line and a status; --debug shows the rest
        if args.debug or os.environ.get("HARNESS_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        status, line = _status(exc)
        print(f"harness: error: {line}", file=sys.stderr)
        return status


def _status(exc: Exception) -> tuple[int, str]:
    """The exit status of an error and its one line."""
    first = first_line(exc)
    for kind, status in ((SpecError, 2), (StoreError, EXIT_STORE), (BundleError, EXIT_BUNDLE), (RuntimeError, 1)):
        if isinstance(exc, kind):
            return status, first
    return EXIT_INTERNAL, f"unexpected {type(exc).__name__}: {first} (run with --debug for the traceback)"
