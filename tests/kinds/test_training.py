"""C1-C3 kind: settings, the shipped specs, and a whole spec run (both loops) through MLflow into the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from pydantic import ValidationError

from harness.book import data as D
from harness.cli import main
from harness.kinds import registry
from harness.kinds.training import KIND
from harness.kinds.training import measure as lenet
from harness.kinds.training.settings import grouped
from harness.reading.view import RunView
from harness.reporting.report import write_report
from harness.reporting.tables import table
from harness.specs.spec import SpecError, load_spec, parse_spec
from harness.store import tracking
from tests.book.test_data import make_dataset
from tests.conftest import unit_of

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
BASE = {"model": "lenet_nopad_max", "optimizer": "adam", "lr": 0.001, "epochs": 5}  # flat: grouped by settings_of


def settings_of(flat: dict) -> lenet.Settings:
    """Settings from their flat names (``lr``), grouped as a spec writes them (``optimisation.lr``)."""
    return lenet.Settings.model_validate(grouped(flat))


pytestmark = pytest.mark.usefixtures("one_thread")


def test_registered_and_read_under_its_former_names():
    assert registry.get("lenet") is registry.get("modern_cnn") is registry.get("training") is KIND  # older stores
    assert {"test_acc", "speedup", "early_test_acc_max"} <= set(KIND.names)


def test_the_metric_table_names_each_loop():
    assert {"harness.test_acc", "tutorial.test_acc_per_epoch", "harness.examples_per_s"} <= set(KIND.names)
    assert KIND.timings == {"examples_per_s": " ex/s", "harness.examples_per_s": " ex/s",
                            "tutorial.examples_per_s": " ex/s", "d2l.examples_per_s": " ex/s", "speedup": "x",
                            "harness.gflops": " GFLOP/s", "harness.fraction_of_peak": "%"}
    assert KIND.metric("speedup").sign == 1 and KIND.metric("tutorial.loss").sign == -1
    assert KIND.metric("test_acc_gap").sign == 0 and KIND.headlines == []
    assert KIND.curves == ("loss", "train_acc", "test_acc", "harness.loss", "harness.train_acc", "harness.test_acc",
                           "tutorial.loss", "tutorial.train_acc", "tutorial.test_acc", "d2l.loss", "d2l.train_acc",
                           "d2l.test_acc")


def test_settings_are_strict():
    s = settings_of(BASE)
    assert s.optimisation.batch_size == 256 and s.loops == ["harness"] and s.tutorial.workers == 4
    assert s.harness_loop.channels_last and s.harness_loop.fold is None  # default: folded on the CPU, not on CUDA
    for bad in ({"fold": 0}, {"fold": 65}, {"model": "alexnet"}, {"optimizer": "rmsprop"}, {"lr": 0}, {"epochs": 0},
                {"batch_size": 0}, {"loops": []}, {"loops": ["harness", "harness"]}, {"unknown": 1}, {"epochs": "5"},
                {"eval_first_batches": 300}, {"eval_first_batches": 10, "chance_batches": 15},
                {"loops": ["tutorial"], "eval_first_batches": 5, "chance_batches": 5},
                {"same_order": True},  # replaying the tutorial's order needs the tutorial loop
                {"loops": ["tutorial", "d2l"]}):  # two loops: the harness loop and another
        with pytest.raises(ValidationError):
            settings_of(BASE | bad)
    with pytest.raises(ValidationError, match="init: xavier and optimisation.optimizer: sgd"):  # train_ch6's own
        settings_of(BASE | {"loops": ["harness", "d2l"]})
    with pytest.raises(ValidationError, match="the d2l loop reads the whole Fashion-MNIST"):
        settings_of(BASE | {"loops": ["harness", "d2l"], "optimizer": "sgd", "init": "xavier",
                                              "resize": 32})
    assert settings_of(BASE | {"loops": ["harness", "d2l"], "optimizer": "sgd",
                                                 "init": "xavier"}).loops == ["harness", "d2l"]


SHIPPED = sorted([*EXPERIMENTS.glob("lenet-*.yaml"), *(EXPERIMENTS / "studies" / f"lenet-{name}.yaml" for name in
                                                       ("c3", "relu", "loops", "c2-same-order"))])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_specs_load(path):
    spec = load_spec(path)
    assert spec.kind == "training" and "cuda" in spec.devices
    if path.stem in ("lenet-c1", "lenet-c3"):
        assert len(spec.seeds) >= 3
        assert any(r.gate and r.over == "mean" and r.band for r in spec.references)
    if path.stem == "lenet-c2":  # the book sets no seed: each edition's printed draw against the seeds' spread
        assert len(spec.seeds) >= 3
        gating = [r for r in spec.references if r.gate]
        assert {r.metric for r in gating} == {"test_acc", "train_acc", "loss"}
        assert all(r.draw is not None and r.basis == "printed" for r in gating)
    if path.stem == "lenet-c2-same-order":  # H3: both loops on the book's order, every epoch compared
        assert spec.settings.tutorial.same_order and spec.settings.loops == ["harness", "tutorial"]
        assert {r.metric for r in spec.references if r.gates_on("cpu")} == {f"{m}_gap_max" for m in lenet.GAPS}
    for ref in spec.references:
        assert ref.note


def test_tutorial_optimisation_in_the_specs():
    c1, c2, c3 = (load_spec(EXPERIMENTS / f"{c}.yaml").settings
                  for c in ("lenet-c1", "lenet-c2", "studies/lenet-c3"))
    def recipe(s):
        o = s.optimisation
        return s.model, o.optimizer, o.lr, o.batch_size, o.epochs, s.init

    assert recipe(c1) == ("lenet_nopad_max", "adam", 0.001, 256, 5, "default")
    assert recipe(c2) == ("lenet_pad2_avg", "sgd", 0.9, 256, 10, "xavier")
    assert recipe(c3) == ("lenet_pad2_max", "adam", 0.001, 256, 5, "default")
    assert c3.measure.eval_first_batches >= c3.measure.chance_batches == 14  # the lines the notebook printed whole
    loops = load_spec(EXPERIMENTS / "studies" / "lenet-loops.yaml").settings
    assert loops.loops == ["harness", "tutorial"] and loops.tutorial.workers == 4


def test_unknown_metric_is_a_spec_error(tmp_path):
    data = {"name": "x", "title": "x", "kind": "training", "seeds": [0], "settings": grouped(BASE),
            "references": [{"metric": "accuracy", "source": "C1", "basis": "chosen before measuring", "at_least": 0.5}]}
    with pytest.raises(SpecError, match="unknown metric 'accuracy'"):
        parse_spec(data, tmp_path / "x.yaml")


def test_whole_spec_with_both_loops_runs_records_and_reports(tmp_path, store, monkeypatch, write_spec):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    make_dataset(tmp_path / "idx", monkeypatch, n_train=256, n_test=100)
    D.clear_cache()
    spec = {
        "name": "lenet-tiny", "title": "tiny LeNet", "kind": "training", "seeds": [0, 1], "devices": ["cpu", "cuda"],
        "settings": grouped({"model": "lenet_nopad_max", "optimizer": "adam", "lr": 0.003, "batch_size": 32,
                             "epochs": 2, "loops": ["harness", "tutorial"], "tutorial_workers": 0,
                             "eval_first_batches": 3, "chance_batches": 2, "data_dir": str(tmp_path / "idx"),
                             "progress": False, "profile": True}),
        "references": [
            {"metric": "test_acc", "source": "C1", "basis": "chosen before measuring", "band": [0.0, 1.0],
             "over": "mean"},
            {"metric": "test_acc_per_epoch", "source": "C1", "basis": "chosen before measuring", "near": [0.5, 0.6],
             "atol": 1, "gate": False},
            {"metric": "early_test_acc_max", "source": "C3", "basis": "chosen before measuring", "at_most": 1.0},
            {"metric": "speedup", "source": "C1", "basis": "chosen before measuring", "at_least": 0.0, "gate": False},
        ],
    }
    path = write_spec(spec)
    assert main(["run", str(path)]) == 0
    text = write_report(tmp_path / "reports").read_text()
    run = tracking.spec_runs().iloc[0]
    measured = tracking.load_json(run.run_id, "measured.json")["cpu"]
    digest = D.files_digest(D.locate(tmp_path / "idx"))
    for _, unit in tracking.unit_runs(run.run_id).iterrows():  # the data each unit read, as its MLflow input
        (used,) = MlflowClient().get_run(unit["run_id"]).inputs.dataset_inputs
        assert (used.dataset.name, used.dataset.digest) == ("fashion-mnist", digest) and len(digest) == 16
        assert json.loads(used.dataset.profile) == {"train_examples": 256, "test_examples": 100}
        assert [(tag.key, tag.value) for tag in used.tags] == [("mlflow.data.context", "training")]
    seeds = table("lenet-tiny", "seeds")
    assert list(seeds.columns) == ["device", "seed", "loop", "epochs", "loss", "train_acc", "test_acc", "converged",
                                   "epoch_s", "examples_per_s"]
    assert len(seeds) == 4 and set(seeds["epochs"]) == {2} and seeds["converged"].all()
    for _, row in seeds.iterrows():
        assert row["test_acc"] == measured[str(row["seed"])][f"{row['loop']}.test_acc"]
        assert row["examples_per_s"] == measured[str(row["seed"])][f"{row['loop']}.examples_per_s"]
    speed = table("lenet-tiny", "speed")
    assert [c for c in speed.columns if not c.endswith(("_low", "_high", "_rounds"))] == [
        "device", "seeds", "rounds_extra", "harness_examples_per_s", "tutorial_examples_per_s", "speedup", "stopped"]
    assert speed["rounds_extra"].tolist() == ["10 (0), 10 (0)"] and speed["speedup_rounds"].tolist() == [20]
    assert (tmp_path / "reports" / "tables" / "lenet-tiny-speed.csv").is_file()
    view = RunView(run, figures=tmp_path / "figures")
    (tmp_path / "figures").mkdir()
    assert KIND.section(view) in text  # the report shows the kind's section whole
    for stem in ("accuracy", "first-batches", "speedup-rounds"):
        assert (tmp_path / "reports" / "figures" / f"lenet-tiny-{stem}.png").is_file()
    epochs = tracking.load_table(unit_of(run.run_id), "epochs.json")
    assert epochs.groupby("loop").size().to_dict() == {"harness": 2, "tutorial": 2}  # trained and evaluated
    profile = tracking.load_table(unit_of(run.run_id), "profile.json")  # one more epoch, operator by operator
    assert list(profile.columns) == ["op", "input_shapes", "calls", "self_s", "share"] and len(profile) == 13
    assert profile["share"].sum() == pytest.approx(1) and "aten::convolution_backward" in set(profile["op"])
    assert "### Where an epoch of the harness loop goes" in text and "shares are upper bounds" in text
    rounds = tracking.load_table(unit_of(run.run_id), "rounds.json")
    # a timing is judged, so the policy's 10 rounds run: 2 that train and evaluate, 8 that train on for timing
    assert list(rounds["round"]) == list(range(1, 11))
    assert rounds["speedup"].tolist() == pytest.approx(
        (rounds["harness.examples_per_s"] / rounds["tutorial.examples_per_s"]).tolist())
    verdict = next(v for v in tracking.load_json(run.run_id, "verdicts.json") if v["metric"] == "speedup")
    assert verdict["rounds"] == 20 and "rounds of 2 seeds pooled" in verdict["detail"]
    first = measured["0"]
    assert first["test_acc_gap"] == pytest.approx(first["harness.test_acc"] - first["tutorial.test_acc"])
    assert first["loss_gap"] == pytest.approx(first["harness.loss"] - first["tutorial.loss"])


def test_a_network_written_in_the_spec(tmp_path):
    relu = settings_of(BASE | {"model": {"from": "lenet_pad2_avg", "activation": "relu"}})
    assert relu.input_shape == (1, 28, 28)
    data = {"name": "x", "title": "x", "kind": "training", "seeds": [0], "settings": grouped(BASE | {"model": {
        "input": [1, 28, 28], "layers": [{"type": "conv", "channels": 16, "kernel": 5}, {"type": "relu"},
                                         {"type": "flatten"},
                                         {"type": "linear", "features": 10, "in_features": 400}]}}),
        "references": [{"metric": "test_acc", "source": "C1", "basis": "chosen before measuring", "at_least": 0.5}]}
    with pytest.raises(SpecError) as err:
        parse_spec(data, tmp_path / "x.yaml")
    assert str(err.value) == (f"{tmp_path / 'x.yaml'}: settings: model.layers[3]: linear expects 400 inputs, gets "
                              "9216 (on 28x28 images)")


def test_subsets_are_taken_once_in_memory_and_batches_resized_as_drawn(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    make_dataset(tmp_path / "idx", monkeypatch, n_train=64, n_test=20)
    D.clear_cache()
    settings = settings_of(BASE | {"model": "lenet_pad2_avg", "resize": 32, "train_examples": 50,
                                                     "test_examples": 10, "data_dir": str(tmp_path / "idx")})
    data = lenet.prepared(settings, "cpu")
    assert data.train_x.shape == (50, 1, 28, 28) and data.test_x.shape == (10, 1, 28, 28)  # kept at 28x28
    assert data.train_y.shape == (50,) and data.test_y.shape == (10,)
    assert lenet.resizer(settings)(data.train_x[:8]).shape == (8, 1, 32, 32)
    for bad, why in zip(({"loops": ["tutorial"], "resize": 32}, {"dataset": "mnist", "loops": ["harness", "tutorial"]},
                {"fold": 4, "model": {"input": [1, 28, 28], "layers": [
                    {"type": "conv", "channels": 6, "kernel": 5}, {"type": "batchnorm", "impl": "scratch"},
                    {"type": "flatten"},
                    {"type": "linear", "features": 10}]}}), ("tutorial loop", "tutorial loop", "fold needs")):
        with pytest.raises(ValidationError, match=why):
            settings_of(BASE | bad)


def test_same_order_makes_the_two_loops_agree_epoch_by_epoch(tmp_path, monkeypatch, memory_recorder):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    make_dataset(tmp_path / "idx", monkeypatch, n_train=256, n_test=100)
    D.clear_cache()
    settings = settings_of(BASE | {
        "model": "lenet_pad2_avg", "init": "xavier", "optimizer": "sgd", "lr": 0.9, "batch_size": 32, "epochs": 3,
        "loops": ["harness", "tutorial"], "tutorial_style": "ch6", "tutorial_workers": 0, "same_order": True,
        "data_dir": str(tmp_path / "idx"), "progress": False})
    rec = memory_recorder()
    out = KIND.run(settings, rec)  # raises where run returns a metric its table does not declare
    logged = [*rec.series, *(name for _, values in rec.rounds for name in values)]
    assert KIND.undeclared(logged) == [] and {"epoch_s", "tutorial.examples_per_s"} <= set(rec.series)
    assert list(rec.tables["epochs"].columns) == ["loop", "epoch", "loss", "train_acc", "test_acc", "epoch_s",
                                                  "train_s", "examples_per_s"]
    assert out["test_acc_gap_max"] == out["train_acc_gap_max"] == 0 and out["loss_gap_max"] < 1e-5
    assert out["test_acc"] == out["harness.test_acc"] == out["tutorial.test_acc"]  # the first loop listed: harness


def test_the_first_batch_norm_s_gamma_and_beta_are_averaged_over_its_channels():
    """The pages print net[1].gamma and .beta; a channel's index means nothing across seeds, their mean does."""
    import torch

    from harness.book.modern import BatchNorm

    scratch = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), BatchNorm(3, num_dims=4), BatchNorm(3, num_dims=4))
    with torch.no_grad():
        scratch[1].gamma.copy_(torch.tensor([1.0, 2.0, 6.0]).view(1, 3, 1, 1))
        scratch[1].beta.copy_(torch.tensor([-1.0, 0.0, 4.0]).view(1, 3, 1, 1))
    assert lenet.batch_norm_means(scratch) == {"bn_gamma_mean": 3.0, "bn_beta_mean": 1.0}
    library = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2, affine=False),
                                  torch.nn.BatchNorm2d(2))
    with torch.no_grad():
        library[2].weight.copy_(torch.tensor([0.5, 1.5]))
    assert lenet.batch_norm_means(library) == {"bn_gamma_mean": 1.0, "bn_beta_mean": 0.0}
    assert lenet.batch_norm_means(torch.nn.Sequential(torch.nn.Linear(2, 2))) == {}
