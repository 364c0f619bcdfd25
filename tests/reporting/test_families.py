"""A spec run judged as a family end to end: the rows a run records, and what the report and its CSVs say of the
family and of the suite."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.cli import main
from harness.judging.verdict import MISSED, REPRODUCED
from harness.kinds.edge_kernel import KIND as EDGE_KERNEL
from tests.execution.test_runner import patch_measure

LOSSES = {0: 0.9, 1: 1.0, 2: 1.1}  # mean 1, sd 0.1: one more seed falls within 1 +- 0.497 95% of the time


def scripted(settings, rec):
    """The edge kernel's own run, its final loss set by seed and its loss drop fixed."""
    return EDGE_KERNEL.measure(settings, rec) | {"final_loss": LOSSES[rec.seed], "loss_drop_orders": 3.0}


def draw(value: float, **kw) -> dict:
    return {"metric": "final_loss", "source": "B1", "basis": "chosen before measuring", "draw": value, **kw}


SPEC = {"name": "edge-draws", "title": "three printed draws of one run", "kind": "edge_kernel", "seeds": [0, 1, 2],
        "devices": ["cpu"],
        "settings": {"layer": "handwritten", "init": "randn", "lr": 0.01, "steps": 5, "checkpoints": [5]},
        "references": [draw(1.0), draw(1.05), draw(1.52, useful=0.1),
                       {"metric": "loss_drop_orders", "source": "B1", "basis": "chosen before measuring",
                        "at_least": 2}]}


@pytest.fixture
def recorded(tmp_path, store, write_spec, monkeypatch):
    patch_measure(monkeypatch, scripted)
    spec = write_spec(SPEC)
    assert main(["run", str(spec)]) == 0
    out = tmp_path / "reports"
    assert main(["report", "--out", str(out)]) == 0
    return out


def test_a_chance_miss_stands_reproduced_in_its_family_and_the_rows_say_why(recorded):
    rows = pd.read_csv(recorded / "tables" / "edge-draws-verdicts.csv")
    draws = rows[rows["metric"] == "final_loss"]
    assert len(draws) == 4 and draws["family"].tolist() == [4, 4, 4, 4]  # three draws and their mean
    chance = draws.iloc[2]
    assert chance["own_status"] == MISSED and chance["status"] == REPRODUCED
    assert "not reproduced on its own interval; reproduced after Holm over 4 claims at 5%" in chance["detail"]
    assert chance["adjusted_p"] == pytest.approx(4 * chance["p_value"])
    assert draws.iloc[3]["expected"].startswith("1.19 (mean of 3 printed draws")
    assert draws["detectable_shift"].notna().all() and bool(chance["weak"])  # it cannot catch 0.1 with 3 seeds
    point = rows[rows["metric"] == "loss_drop_orders"].iloc[0]
    assert point["family"] == 0 and point["detectable_shift"] == 0  # no spread: any departure fails every seed


def test_the_report_states_the_family_and_the_suites_error(recorded):
    text = (recorded / "REPORT.md").read_text()
    assert "| detectable shift |" in text.replace("  ", " ").replace("  ", " ")
    assert "**cpu**: 4 gating claims judged at a level share the family's 5% by Holm" in text
    assert "at most 5%); 1 exact or point check decides by its own rule." in text
    assert ("Weak (detectable shift above the spec's `useful`): B1 final_loss 1.52 (one printed draw), B1 final_loss "
            "1.19 (mean of 3 printed draws: 1, 1.05, 1.52).") in text  # the pool keeps its members' useful
    assert "- **cpu**: 1 specs judged, 0 not reproduced at their own family error;" in text
    assert "- **cuda**: no spec was judged here." in text
    summary = pd.read_csv(recorded / "tables" / "report-summary.csv")
    assert summary["weak"].tolist() == [2]


def test_a_real_miss_survives_the_family_and_the_suite(tmp_path, store, write_spec, monkeypatch):
    patch_measure(monkeypatch, scripted)
    spec = write_spec(SPEC | {"references": [draw(1.0), draw(5.0)]})
    assert main(["run", str(spec)]) == 1
    out = tmp_path / "reports"
    assert main(["report", "--out", str(out)]) == 0
    rows = pd.read_csv(out / "tables" / "edge-draws-verdicts.csv")
    assert rows["status"].tolist() == [REPRODUCED, MISSED, MISSED]  # the draw at 5 and the two draws' mean
    text = (out / "REPORT.md").read_text()
    assert "keeps 1 as not reproduced at a 5% false discovery rate" in text
    assert "cpu: 1 of 1 specs not reproduced, 1 kept at the suite's 5% false discovery rate." in text  # first screen
