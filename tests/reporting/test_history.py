"""The report's history: headline figures over the suites in the store, once there are two."""

from __future__ import annotations

import math
import re

import pandas as pd
import yaml

from harness.reporting import history
from tests.conftest import TINY_EDGE


def test_history_has_a_point_per_suite_with_its_interval(two_suites):
    _, uri = two_suites
    df = history.history(uri)
    assert df["suite"].nunique() == 2 and df["started"].is_monotonic_increasing  # oldest first
    d2 = df[df["headline"] == "conv-throughput: library_over_loop_claim (x)"]
    assert len(d2) == 2 and (d2["basis"] == "rounds").all() and (d2["n"] == 10).all()
    assert (d2["low"] <= d2["estimate"]).all() and (d2["estimate"] <= d2["high"]).all()
    gflops = df[df["headline"] == "conv-throughput: gflops.library.lenet_c1 (GFLOP/s)"]
    assert len(gflops) == 2 and gflops["estimate"].gt(0).all() and gflops["low"].le(gflops["estimate"]).all()
    assert set(df["machine"]) == {df["machine"].iloc[0]} and df["machine"].iloc[0] != "unknown"
    assert set(df["headline"]) == set(d2["headline"]) | set(gflops["headline"])  # the spec's two, no other


def test_the_report_shows_history_from_two_suites_on(two_suites):
    root, _ = two_suites
    first = (root / "first" / "REPORT.md").read_text()
    assert "## History" not in first and not (root / "first" / "tables" / "report-history.csv").exists()
    text = (root / "reports" / "REPORT.md").read_text()
    assert "## History" in text and "![headline figures over the last suites](figures/report-history.png)" in text
    assert re.search(r"From the suite run `[0-9a-f]{8}` \(\d{4}-\d\d-\d\d \d\d:\d\d UTC, \d+\.\d minutes\) at "
                     r"commit", text)
    assert (root / "reports" / "figures" / "report-history.png").stat().st_size > 5000
    csv = pd.read_csv(root / "reports" / "tables" / "report-history.csv")
    assert set(csv.columns) >= {"suite", "commit", "machine", "device", "headline", "estimate", "low", "high", "n"}
    assert all(math.isfinite(v) for v in csv["estimate"])


def test_the_report_shows_drift_between_two_suites_of_the_same_code(two_suites):
    """The fixture's two suites ran the same code on this machine: the report counts the changes each threshold
    calls between them (here the slowed unfold is a real change, so no threshold up to 50% hides it)."""
    root, _ = two_suites
    assert "## Drift" not in (root / "first" / "REPORT.md").read_text()
    text = (root / "reports" / "REPORT.md").read_text()
    assert "## Drift" in text and "No threshold up to 50% keeps the calls within 5%" in text
    drift = pd.read_csv(root / "reports" / "tables" / "report-drift.csv")
    timed = drift[drift["compared"] == "timings"]
    assert list(timed["threshold"]) == [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]
    assert timed["called"].is_monotonic_decreasing and (timed["called"] >= 3).all()


def test_a_spec_run_outside_a_suite_shows_its_last_runs_side_by_side(tmp_path, monkeypatch):
    """`harness run` twice, outside any suite: the spec's section lists both runs' headlines, each with its own
    interval (the History covers suites only); a spec with one run gets no such table."""
    from harness.cli import main

    spec = tmp_path / "edge-small.yaml"
    spec.write_text(yaml.safe_dump(TINY_EDGE | {"headlines": ["loss_drop_orders"]}, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["run", str(spec)]) == 0
    assert main(["report", "--out", str(tmp_path / "once")]) == 0
    assert "### Runs of this spec" not in (tmp_path / "once" / "REPORT.md").read_text()
    assert main(["run", str(spec)]) == 0
    assert main(["report", "--out", str(tmp_path / "twice")]) == 0
    text = (tmp_path / "twice" / "REPORT.md").read_text()
    section = text[text.index("### Runs of this spec"):]
    assert "its last 2 finished runs in this store, oldest first" in section
    runs = pd.read_csv(tmp_path / "twice" / "tables" / "edge-small-runs.csv")
    assert runs["suite"].nunique() == 2 and runs["started"].is_monotonic_increasing
    assert (runs["basis"] == "seeds").all() and (runs["n"] == 2).all()
    assert runs.groupby("headline")["estimate"].nunique().eq(1).all()  # the same spec and seeds: the same values
    assert list(runs["headline"].unique()) == ["edge-small: loss_drop_orders"]
    assert section.count("| cpu ") == 2 and "edge-small: loss_drop_orders" in section


def test_suite_specs_get_no_runs_table(two_suites):
    root, _ = two_suites
    assert "### Runs of this spec" not in (root / "reports" / "REPORT.md").read_text()
    assert not list((root / "reports" / "tables").glob("*-runs.csv"))
