"""The ``harness`` command: run, reproduce, list, show, report, compare, server, export, import.

Exit status: 0 no gating reference was decisively not reproduced; 1 one was (unless --allow-miss) or a run failed;
2 a bad spec or bad arguments; 3 with --strict, a gating timing reference stayed inconclusive; 130 interrupted.
Each command group is a module with ``setup_arguments(subparsers)``, which sets its commands' ``func``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from harness.cli import compare, report, run, specs, store
from harness.cli.options import EXIT_INCONCLUSIVE
from harness.specs.spec import SpecError

GROUPS = (run, specs, report, compare, store)

__all__ = ["EXIT_INCONCLUSIVE", "main", "parser"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
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
    except SpecError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
