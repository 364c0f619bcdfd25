"""A recorded run read back: what an older harness recorded under former metric names reads by today's."""

from __future__ import annotations

import pandas as pd

from harness.reading import renames
from harness.reading import view as view_module
from harness.reading.view import RunView


def test_a_former_name_reads_as_todays_part_by_part():
    assert renames.current("examples_per_sec") == "examples_per_s"
    assert renames.current("tutorial.examples_per_sec") == "tutorial.examples_per_s"
    assert renames.current("seconds_per_epoch") == renames.current("epoch_seconds") == "epoch_s"
    assert renames.current("test_acc") == "test_acc"
    assert renames.former("tutorial.epoch_s") == ["tutorial.epoch_s", "tutorial.seconds_per_epoch",
                                                  "tutorial.epoch_seconds"]
    assert renames.former("test_acc") == ["test_acc"]  # nothing renamed


def test_former_names_read_as_todays(monkeypatch):
    measured = {"cpu": {"0": {"examples_per_sec": 10.0, "tutorial.examples_per_sec": 4.0, "test_acc": 0.8,
                              "rounds": {"examples_per_sec": [9.0, 11.0]}}}}
    curves = {("u0", "epoch_seconds"): pd.DataFrame({"step": [1, 2], "value": [3.0, 2.5]})}
    monkeypatch.setattr(view_module.tracking, "load_json", lambda run, name: measured)
    monkeypatch.setattr(view_module.tracking, "metric_history",
                        lambda run, key: curves.get((run, key), pd.DataFrame({"step": [], "value": []})))
    view = RunView(pd.Series({"run_id": "r"}))
    view.__dict__["units"] = {("cpu", "0"): "u0"}

    m = view.measured["cpu"]["0"]
    assert m == {"examples_per_s": 10.0, "tutorial.examples_per_s": 4.0, "test_acc": 0.8,
                 "rounds": {"examples_per_s": [9.0, 11.0]}}
    assert view.series("epoch_s", "cpu", 0)["value"].tolist() == [3.0, 2.5]  # logged as epoch_seconds
    assert view.series("loss", "cpu", 0).empty  # never logged under any name
