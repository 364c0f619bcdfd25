"""The report's invariants, read from a generated report of a small store: the first screen answers within 40 lines,
the counts agree with the verdicts, rows and sections go in the book's order, and prose quotes its tables' figures."""

from __future__ import annotations

import re

import pandas as pd

from harness.judging.verdict import overall

STATUS_COLUMNS = {"reproduced": "reproduced", "not reproduced": "not_reproduced", "inconclusive": "inconclusive",
                  "skipped": "skipped"}


def report(two_suites) -> tuple[str, dict[str, pd.DataFrame]]:
    root, _ = two_suites
    folder = root / "reports" / "tables"
    return (root / "reports" / "REPORT.md").read_text(), {p.stem: pd.read_csv(p) for p in folder.glob("*.csv")}


def test_the_first_screen_answers_both_questions_within_40_lines(two_suites):
    text, _ = report(two_suites)
    screen = text.split('<a id="contents"></a>')[0].rstrip().splitlines()
    assert len(screen) <= 40, len(screen)
    body = "\n".join(screen)
    assert "## Does the chapter reproduce?" in body and "| cpu " in body and "| cuda " in body
    assert "## How fast is it against the book's own code?" in body
    assert re.search(r"\d+(\.\d+)?x \(95% CI [\d.,]+-[\d.,]+x?, \d+ rounds\)", body)  # a ratio and its interval
    assert "figures/report-speedups.png" in body and (two_suites[0] / "reports" / "figures" /
                                                      "report-speedups.png").stat().st_size > 1000
    assert re.search(r"From the suite run `[0-9a-f]{8}` .* at commit `[0-9a-f]+` on ", body)  # where from
    assert "false discovery rate" in body  # the suite's error
    assert text.index("## Contents") < text.index("## Summary")


def test_counts_agree_with_the_verdicts(two_suites):
    _, tables = report(two_suites)
    summary = tables["report-summary"]
    assert {"section", "info"} <= set(summary.columns)
    for row in summary.itertuples():
        rows = [type("Row", (), {"status": s, "gate": True}) for s, c in STATUS_COLUMNS.items()
                for _ in range(getattr(row, c))] + [type("Row", (), {"status": "reproduced", "gate": False})] * row.info
        assert overall(rows) == row.verdict or (row.info and row.verdict == "info only")
        verdicts = tables[f"{row.spec}-verdicts"]
        gating = verdicts[verdicts["gate"]]
        assert [getattr(row, c) for c in STATUS_COLUMNS.values()] == [int((gating["status"] == s).sum())
                                                                     for s in STATUS_COLUMNS]
        assert row.info == int((~verdicts["gate"]).sum())
    devices = tables["report-devices"].set_index("device")
    assert devices["reproduced"].sum() == summary["reproduced"].sum()
    assert devices["not_run"].sum() == summary["skipped"].sum()


def test_rows_and_sections_go_in_the_books_order(two_suites):
    text, tables = report(two_suites)
    summary = tables["report-summary"]
    keys = [tuple(map(int, s.split("."))) if s != "-" else (99, 0) for s in summary["section"].astype(str)]
    assert keys == sorted(keys)
    anchors = [m for m in re.findall(r'<a id="([a-z0-9-]+)"></a>\n\n## ', text) if m in set(summary["spec"])]
    assert anchors == list(summary["spec"])


def test_the_prose_quotes_the_tables_figure(two_suites):
    """conv-throughput: the ratio its prose quotes for unfold is the claim shape's `x loop` cell of its table."""
    text, tables = report(two_suites)
    section = text.split('<a id="conv-throughput"></a>')[1]
    quoted = re.search(r"unfold is \*\*([\d.,]+)x", section).group(1)
    throughput = tables["conv-throughput-throughput-cpu"]
    row = throughput[(throughput["shape"] == "small") & (throughput["impl"] == "unfold")].iloc[0]
    from harness.judging.stats import number

    assert number(row["speedup_over_loop"]) == quoted
    assert f"| {quoted}x " in section  # and the table's markdown shows the same figure


def test_provenance_states_the_suites_time_and_with_the_install_where_nox_said_when_it_began():
    from harness.reporting.first_screen import provenance

    suite = dict({"run_id": "0123456789abcdef", "start_time": pd.Timestamp("2026-12-04 10:00:00", tz="UTC"),
                       "end_time": pd.Timestamp("2026-12-04 10:06:30", tz="UTC"), "tags.git.commit": "abcdef1234567",
                       "tags.cpu.model": "Some CPU", "tags.cpu.count": "2"})
    plain = provenance(pd.Series(suite), [])
    assert "(2026-12-04 10:00 UTC, 6.5 minutes) at commit `abcdef1234`" in plain and "install" not in plain
    began = pd.Timestamp("2026-12-04 09:59:00", tz="UTC").timestamp()
    timed = provenance(pd.Series(suite | {"tags.harness.session_started": f"{began:.0f}"}), [])
    assert "6.5 minutes; 7.5 from the start of `nox -s reproduce`, its install included)" in timed
    assert "install" not in provenance(pd.Series(suite | {"tags.harness.session_started": "soon"}), [])
