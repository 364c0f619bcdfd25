"""A new kind is one folder and one registry line: the tiny example kind gets a report section, a History figure and
compare's directions, from its metric table alone."""

from __future__ import annotations

import yaml

from harness.cli import main
from harness.kinds import registry
from harness.reading import results
from harness.reporting import compare
from harness.store import tracking
from tests.kinds import tiny


def tiny_spec(center: float, score: float) -> dict:
    return {"name": "tiny-spec", "title": "the tiny example kind", "kind": "tiny", "seeds": [0, 1],
            "devices": ["cpu"], "timing": {"rounds": 10, "max_rounds": 10},
            "settings": {"center": center, "score": score},
            "references": [{"metric": "speedup", "source": "C1", "basis": "chosen before measuring",
                            "at_least": 1.5}]}


def test_a_kind_added_by_its_folder_and_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.KINDS, "tiny", tiny.KIND)  # the one registry line
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    specs = tmp_path / "specs"
    specs.mkdir()
    for center, score in ((2.0, 0.5), (3.0, 0.9)):  # the second suite: faster, and a better score
        (specs / "tiny-spec.yaml").write_text(yaml.safe_dump(tiny_spec(center, score), sort_keys=False))
        assert main(["reproduce", str(specs), "--out", str(tmp_path / "reports")]) == 0

    report = (tmp_path / "reports" / "REPORT.md").read_text()
    assert "### The tiny kind's own section" in report  # its section, placed by the engine
    assert "tiny-spec: speedup (x)" in report  # its headline metric in the History table
    assert (tmp_path / "reports" / "figures" / "report-history.png").stat().st_size > 0
    csv = (tmp_path / "reports" / "tables" / "tiny-spec-tiny.csv").read_text().splitlines()
    assert csv[0] == "round,speedup_x,device,seed" and len(csv) == 1 + 2 * 10

    suite = results.resolve("latest", uri).row["run_id"]  # the suite run carries the report it wrote
    held = set(tracking.artifact_paths(suite, "report"))
    assert {"report/REPORT.md", "report/figures/report-history.png", "report/tables/tiny-spec-tiny.csv"} <= held

    df = compare.compare(results.resolve("latest~1", uri), results.resolve("latest", uri)).set_index("metric")
    assert df.loc["speedup", "verdict"] == "faster"  # x, higher is better, timed: a speed
    assert df.loc["score", "verdict"] == "better"  # fraction, higher is better: not a speed
    assert df.loc["wait_s", "verdict"] == "no change"
    assert compare.direction("tiny", "wait_s", False) == compare.Direction(-1, "slower", "faster")
