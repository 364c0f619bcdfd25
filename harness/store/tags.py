"""The tags the harness sets on its MLflow runs, and the runs' roles: each named once, read through one accessor."""

from __future__ import annotations

import math
from typing import Any

# a run's role: one suite holds spec runs, a spec run holds one unit run per (device, seed)
ROLE = "harness.role"
SUITE, SPEC, UNIT, SKIPPED_UNIT = "suite", "spec", "unit", "skipped"  # SKIPPED_UNIT: could not run here

# what a spec run is
SPEC_NAME, KIND, TITLE, REFS = "harness.spec", "harness.kind", "harness.title", "harness.refs"
SPEC_HASH, CODE_ID, ENV_HASH = "spec.hash", "code.id", "env.hash"
SEEDS, DEVICE, SEED, SPECS = "seeds", "device", "seed", "specs"  # DEVICE: the devices a run measured, comma-joined
DEVICES_RAN = "harness.devices_ran"
EXECUTOR, JOBS = "harness.executor", "harness.jobs"
SESSION_START = "harness.session_started"  # a suite's: when the command that set it up began (nox, install included)

# how it ended, and where it came from
SKIP_REASON = "harness.skipped"  # why a unit could not run here (no such device)
UNITS_FAILED = "harness.units_failed"
REUSED_FROM = "harness.reused_from"
IMPORTED_FROM = "harness.imported_from"
IMPORTING = "harness.importing"  # set when an imported run is made, deleted when it is whole

# who holds a running run (the store's locks)
HOST, PID, STARTED, HEARTBEAT = "harness.host", "harness.pid", "harness.pid_started", "harness.heartbeat"
ENDED_BY = "harness.ended_by"


def column(name: str) -> str:
    """The column ``mlflow.search_runs`` gives a tag."""
    return f"tags.{name}"


def value(row: Any, name: str) -> str:
    """A tag of a run as ``search_runs`` returned it (a row), or "" where the run lacks it."""
    got = row.get(column(name))
    return "" if got is None or (isinstance(got, float) and math.isnan(got)) else str(got)
