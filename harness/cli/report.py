"""``harness report``: REPORT.md, its figures and tables, from the runs recorded in the store."""

from __future__ import annotations

from pathlib import Path

from harness.cli.options import console, store_option


def cmd_report(args) -> int:
    from harness.reporting.report import write_report  # MLflow and matplotlib: only when a report is written

    path = write_report(Path(args.out), args.tracking_uri)
    console.print(f"report written: {path}")
    return 0


def out_option(sp) -> None:
    sp.add_argument("--out", default="reports", help="report directory (default: reports)")


def setup_arguments(sub) -> None:
    rp = sub.add_parser("report", help="write REPORT.md from the runs recorded in MLflow")
    store_option(rp)
    out_option(rp)
    rp.set_defaults(func=cmd_report)
