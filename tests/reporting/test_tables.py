"""The report's tables as pandas DataFrames straight from the store, and as the CSVs beside the report."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from harness.reading import results
from harness.reporting import tables


def md_rows(text: str, heading: str) -> list[dict[str, str]]:
    """The first markdown table after ``heading``, as a list of {header: cell}."""
    lines = [line for line in text.split(heading, 1)[1].splitlines() if line.startswith("|")]
    block = []
    for line in lines:
        block.append([c.strip() for c in line.strip("|").split("|")])
        if len(block) > 2 and len(block[-1]) != len(block[0]):
            break
    header = block[0]
    return [dict(zip(header, cells)) for cells in block[2:] if len(cells) == len(header)]


def test_the_throughput_csv_holds_the_reports_numbers(two_suites):
    root, uri = two_suites
    csv = pd.read_csv(root / "reports" / "tables" / "conv-throughput-throughput-cpu.csv")
    assert {"time_s", "gflops", "speedup_over_loop", "fraction_of_peak"} <= set(csv.columns)  # units in the names
    shown = md_rows((root / "reports" / "REPORT.md").read_text(), "### cpu (seed 0): convolution throughput")
    assert len(shown) == len(csv) == 3 * 3
    for (_, row), cells in zip(csv.iterrows(), shown):
        assert cells["shape"] == row["shape"] and cells["impl"].startswith(row["impl"])
        assert cells["GFLOP/s"] == f"{row['gflops']:.3g}"
        assert cells["of peak"] == f"{row['fraction_of_peak']:.2%}"


def test_the_api_returns_the_csv_table(two_suites):
    root, uri = two_suites
    api = tables.table("conv-throughput", "throughput", device="cpu", tracking_uri=uri)
    csv = pd.read_csv(root / "reports" / "tables" / "conv-throughput-throughput-cpu.csv", dtype={"stride": str})
    csv["backend"] = csv["backend"].fillna("")  # an empty cell reads back as NaN
    pd.testing.assert_frame_equal(api.reset_index(drop=True), csv, check_dtype=False, rtol=1e-12)
    assert tables.table("conv-throughput", "throughput", tracking_uri=uri).equals(api)  # one device: implied


def test_a_suite_or_run_picks_an_older_table(two_suites):
    _, uri = two_suites
    first = results.suites(uri)["run_id"].iloc[-1]
    old = tables.table("conv-throughput", "throughput", device="cpu", tracking_uri=uri, suite=first)
    new = tables.table("conv-throughput", "throughput", device="cpu", tracking_uri=uri)
    unfold = (new["impl"] == "unfold").to_numpy()
    assert (new[unfold]["time_s"].to_numpy() > old[unfold]["time_s"].to_numpy()).all()  # the slowed one
    spec_run = results.resolve(first, uri).runs["edge-small"]["run_id"]
    learned = tables.table("edge-small", "learned", tracking_uri=uri, run=spec_run)
    assert list(learned["seed"]) == [0, 1] and learned["final_loss"].lt(learned["initial_loss"]).all()


def test_every_report_table_has_a_csv(two_suites):
    root, _ = two_suites
    names = sorted(p.stem for p in (root / "reports" / "tables").glob("*.csv"))
    assert names == ["conv-throughput-ceiling-cpu", "conv-throughput-throughput-cpu", "conv-throughput-verdicts",
                     "edge-small-learned", "edge-small-verdicts", "report-bases", "report-determinism",
                     "report-devices", "report-drift", "report-environment", "report-history", "report-speedups",
                     "report-summary"]
    text = (root / "reports" / "REPORT.md").read_text()
    tables_in_report = [line for line in text.splitlines() if re.fullmatch(r"\|[-:| ]+\|", line)]
    assert len(tables_in_report) == len(names) - 1  # the ceiling is a sentence in the report, a table in the CSVs
    summary = pd.read_csv(root / "reports" / "tables" / "report-summary.csv")
    assert list(summary["spec"]) == ["edge-small", "conv-throughput"]  # the book's order: 5.1, then the harness's own
    assert summary["verdict"].eq("reproduced").all()


@pytest.mark.parametrize("call, message", [
    (lambda uri: tables.table("conv-throughput", "nope", tracking_uri=uri),
     "has no table 'nope'; it has: verdicts, throughput-cpu, ceiling-cpu"),
    (lambda uri: tables.table("missing", "verdicts", tracking_uri=uri), "holds no finished run of spec 'missing'"),
    (lambda uri: tables.table("edge-small", "learned", tracking_uri=uri, run="abc"),
     r"abc: not a run id \(its first 6 characters or more\)"),
])
def test_what_the_store_lacks_is_one_line(two_suites, call, message):
    _, uri = two_suites
    with pytest.raises(results.ResultsError, match=message) as err:
        call(uri)
    assert "\n" not in str(err.value)
