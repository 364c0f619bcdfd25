"""D1 task: settings are validated; a tiny run times updates, extrapolates epochs, records and reports.

The run uses small synthetic images in place of Fashion-MNIST (timing an update does not depend on the
pixels); the real loader has its own tests.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from harness.cli import main
from harness.judging.rounds import Plan
from harness.kinds.batch_speed import KIND, measure
from harness.kinds.batch_speed.section import shown, tables
from harness.kinds.batch_speed.settings import Settings
from harness.machine.timing import minor_faults
from harness.reading.markdown import of_seed
from harness.reading.view import RunView
from harness.schema import TimingPolicy
from harness.store import tracking
from tests.conftest import unit_of

SETTINGS = {"batch_sizes": [1, 2, 10, 16], "round_time": 0.02, "warmup_updates": 1, "epoch_examples": 64,
            "full_examples": 96, "full_epoch_batches": [2, 16]}
COLUMNS = ["batch", "update_s", "rel_spread", "round_spread", "others_cpu", "faults_per_update", "updates_timed",
           "examples_per_s", "updates_per_epoch", "epoch_s", "epoch_s_full", "epoch_measured_s",
           "extrapolated_over_real"]
SPEC = {
    "name": "batch-tiny", "title": "tiny batch-speed run", "kind": "batch_speed", "seeds": [0],
    "devices": ["cpu", "cuda"], "deterministic": False, "settings": SETTINGS,
    "timing": {"rounds": 3, "max_rounds": 3, "budget_s": 0},
    "references": [
        # bounds any machine meets: the test checks the plumbing, never a speed
        {"metric": "epoch_ratio_1_over_10", "source": "D1", "basis": "chosen before measuring", "at_least": 0},
        {"metric": "update_time_growth", "source": "D1", "basis": "chosen before measuring", "at_least": 0},
        {"metric": "epoch_s_b1", "source": "D1", "basis": "chosen before measuring", "band": [0, 1e9], "gate": False},
    ],
}


@pytest.fixture
def synthetic(monkeypatch):
    def data(settings, device, rec=None):
        g = torch.Generator().manual_seed(0)
        return torch.rand(128, 1, 28, 28, generator=g).to(device), torch.randint(0, 10, (128,), generator=g).to(device)

    monkeypatch.setattr(measure, "train_data", data)


def test_defaults_span_1_to_1024():
    s = Settings()
    assert s.batch_sizes[0] == 1 and 10 in s.batch_sizes and s.batch_sizes[-1] == 1024
    assert s.epoch_examples == 50_000 and s.full_examples == 60_000 and s.model == "lenet_pad2_avg"


@pytest.mark.parametrize("change,msg", [
    ({"batch_sizes": [2, 10, 16]}, "include 1 and 10"),
    ({"batch_sizes": [1, 2, 16]}, "include 1 and 10"),
    ({"batch_sizes": [1, 10, 10]}, "increasing without repeats"),
    ({"batch_sizes": [10, 1]}, "increasing without repeats"),
    ({"batch_sizes": [0, 1, 10]}, "lie in"),
    ({"batch_sizes": [1, 10, 70_000]}, "lie in"),
    ({"batch_sizes": [1]}, "at least 2"),
    ({"model": "alexnet"}, "Input should be"),
    ({"lr": 0.0}, "greater than 0"),
    ({"round_time": -1.0}, "greater than 0"),
    ({"min_run_time": 1.0}, "Extra inputs"),
    ({"epoch_examples": 70_000}, "less than or equal to 60000"),
    ({"batch_sizes": [1.0, 10]}, "valid integer"),
    ({"full_epoch_batches": [3]}, "not in batch_sizes"),
    ({"rounds": 3}, "Extra inputs"),  # rounds belong to the spec's timing policy
    ({"bogus": True}, "Extra inputs"),
])
def test_bad_settings_rejected(change, msg):
    with pytest.raises(ValidationError, match=msg):
        Settings.model_validate(SETTINGS | change)


def test_tiny_run_records_table_series_and_report(tmp_path, store, synthetic, write_spec):
    path = write_spec(SPEC)
    assert main(["run", str(path)]) == 0
    run = tracking.spec_runs().iloc[0]
    df = tracking.load_table(unit_of(run.run_id), "batch_speed.json")
    assert list(df["batch"]) == [1, 2, 10, 16]
    assert (df["update_s"] > 0).all() and (df["updates_timed"] >= 1).all() and df["extrapolated"].all()
    assert list(df["updates_per_epoch"]) == [64, 32, 7, 4]
    if minor_faults() is not None:
        assert (df["faults_per_update"] >= 0).all()
    for r in df.itertuples():
        assert r.epoch_s == pytest.approx(r.update_s * math.ceil(64 / r.batch), rel=1e-6)
        assert r.epoch_s_full == pytest.approx(r.update_s * math.ceil(96 / r.batch), rel=1e-6)
        assert r.examples_per_s == pytest.approx(r.batch / r.update_s, rel=1e-6)
        if r.batch in (2, 16):
            assert r.epoch_measured_s > 0 and "one whole epoch also run" in r.method
        else:
            assert math.isnan(r.epoch_measured_s)
    measured = tracking.load_json(run.run_id, "measured.json")["cpu"]["0"]
    assert KIND.undeclared([*measured, *measured["rounds"]]) == []  # the metric table covers what run returned
    assert {"best_batch", "batch_max", *KIND.timings} <= set(measured) and set(measured["rounds"]) == set(KIND.timings)
    assert {f"{m}.b{b}" for m in ("update_s", "examples_per_s") for b in (1, 2, 10, 16)} <= set(measured)
    assert measured["batch_max"] == 16 and measured["examples_per_s.b2"] == pytest.approx(2 / measured["update_s.b2"])
    rounds = tracking.load_table(unit_of(run.run_id), "rounds.json")
    assert list(rounds["round"]) == [1, 2, 3] and (df["rounds"] == 3).all()
    for r in rounds.to_dict("records"):  # the page's comparisons are taken within each round
        assert r["epoch_ratio_1_over_10"] == pytest.approx(r["update_s.b1"] * 64 / (r["update_s.b10"] * 7))
        assert r["update_growth_1_to_10"] == pytest.approx(r["update_s.b10"] / r["update_s.b1"])
        assert r["update_time_growth"] == pytest.approx(r["update_s.b16"] / r["update_s.b1"])
    ratios = rounds["epoch_ratio_1_over_10"].tolist()
    assert measured["rounds"]["epoch_ratio_1_over_10"] == pytest.approx(ratios)
    assert measured["epoch_ratio_1_over_10"] == pytest.approx(sorted(ratios)[1])  # the median round
    assert measured["rounds_info"]["rounds"] == 3
    assert measured["best_batch"] in (1, 2, 10, 16)
    logged = tracking.metric_history(unit_of(run.run_id), "round.epoch_ratio_1_over_10")
    assert list(logged["step"]) == [1, 2, 3] and logged["value"].tolist() == pytest.approx(ratios)
    verdict = next(v for v in tracking.load_json(run.run_id, "verdicts.json") if v["metric"] == "update_time_growth")
    assert verdict["status"] == "inconclusive" and verdict["rounds"] == 3  # 3 rounds decide nothing at 95%, and say so
    assert "(no interval: 3 rounds, 8 needed at 95%)" in verdict["measured"]
    curve = tracking.metric_history(unit_of(run.run_id), "examples_per_s")
    assert list(curve["step"]) == [1, 2, 10, 16]

    out = tmp_path / "reports"
    assert main(["report", "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    csv = pd.read_csv(out / "tables" / "batch-tiny-speed-cpu.csv")
    assert list(csv.columns) == COLUMNS + ["seed"] and list(csv["batch"]) == [1, 2, 10, 16]
    assert csv["update_s"].tolist() == pytest.approx(df["update_s"].tolist(), rel=1e-9)
    real = csv.dropna(subset=["epoch_measured_s"])
    assert list(real["batch"]) == [2, 16]
    ratio = real["epoch_s"] / real["epoch_measured_s"]
    assert real["extrapolated_over_real"].tolist() == pytest.approx(ratio.tolist())
    view = RunView(run)
    assert shown(of_seed(tables(view)["speed-cpu"], 0), 64, 96) in text  # the section shows the table it returns
    assert "![examples/s and seconds per update against batch size](figures/batch-tiny-speed-cpu.png)" in text
    assert (out / "figures" / "batch-tiny-speed-cpu.png").stat().st_size > 1000
    if not torch.cuda.is_available():
        assert "no GPU found" in text


def test_the_shown_table_names_the_epochs_from_the_settings():
    table = pd.DataFrame([dict.fromkeys(COLUMNS, 1.0)])
    header = shown(table, 500, 600).splitlines()[0]
    assert "s / epoch of 500 (extrapolated)" in header and "updates / epoch of 600" not in header
    assert "s / epoch of 600 (extrapolated)" in header and "s / update" in header


def test_long_epochs_stay_extrapolated_only(synthetic, memory_recorder):
    settings = Settings.model_validate(SETTINGS | {"full_epoch_max_s": 0.0})
    assert settings.full_epoch_batches == [2, 16]
    x, y = measure.train_data(settings, "cpu")
    rec = memory_recorder(plan=Plan(policy=TimingPolicy(rounds=3, max_rounds=3)))
    rows, rounds = measure.time_batches(x, y, settings, rec)
    row = rows[1]
    assert row["batch"] == 2 and math.isnan(row["epoch_measured_s"]) and row["extrapolated"]
    assert "median s/update x 32 updates" in row["method"] and "whole epoch not run" in row["method"]
    assert row["rounds"] == 3 and row["round_spread"] >= 0 and row["runs"] >= 3 * 3
    assert [n for n, _ in rec.rounds] == [1, 2, 3] and len(rounds.values) == 3
