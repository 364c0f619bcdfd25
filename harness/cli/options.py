"""What the command groups share: the consoles, the exit status of an inconclusive run, common options."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line
EXIT_INCONCLUSIVE = 3
EXIT_STORE = 4  # the store cannot be reached, read or written
EXIT_BUNDLE = 5  # a bundle cannot be read or imported
EXIT_INTERNAL = 70  # a bug: an error the harness does not expect (EX_SOFTWARE)


def store_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    sp.add_argument("--experiment", metavar="NAME", help="MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME, "
                    "else d2l-cnn-chapter)")


def specs_argument(sp: argparse.ArgumentParser, default: list[str] | None = None) -> None:
    sp.add_argument("specs", nargs="*" if default else "+", default=default, metavar="SPEC",
                    help="spec files or directories of them")
