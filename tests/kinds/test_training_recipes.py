"""The train_ch6 recipe (F1-F4) and the smoke tests: the book's recipe in the specs, a tiny run through MLflow, the
CUDA skip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.book import data as D
from harness.cli import main
from harness.kinds.training import KIND
from harness.kinds.training.settings import Settings, grouped
from harness.reading.view import RunView
from harness.reporting.report import write_report
from harness.reporting.tables import table
from harness.specs.spec import load_spec
from harness.store import tracking
from tests.book.test_data import make_dataset

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
BOOK = {"alexnet": ("alexnet", 224, 0.01), "vgg": ("vgg11_small", 224, 0.05), "nin": ("nin", 224, 0.1),
        "googlenet": ("googlenet", 96, 0.1)}

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_recipe_sets_the_books_defaults_and_a_field_set_wins():
    ch6 = Settings.model_validate(grouped({"recipe": "train_ch6", "model": "alexnet", "resize": 224, "lr": 0.01}))
    assert ch6.init == "xavier" and ch6.measure.ceiling and ch6.harness_loop.fold == 1
    assert ch6.optimisation.model_dump() == {"optimizer": "sgd", "lr": 0.01, "batch_size": 128, "epochs": 10}
    short = Settings.model_validate({"recipe": "train_ch6", "model": "nin", "data": {"resize": 96},
                                     "optimisation": {"lr": 0.1, "epochs": 3}})
    assert (short.optimisation.epochs, short.optimisation.batch_size) == (3, 128)
    ch5 = Settings.model_validate(grouped({"model": "lenet_pad2_avg", "optimizer": "sgd", "lr": 0.9, "epochs": 10}))
    assert (ch5.recipe, ch5.init, ch5.optimisation.batch_size, ch5.measure.ceiling, ch5.harness_loop.fold) == (
        "train_ch5", "default", 256, False, None)
    with pytest.raises(ValueError, match="recipe"):
        Settings.model_validate({"recipe": "train_ch7", "model": "alexnet", "optimisation": {"lr": 0.01}})


def test_a_flat_setting_is_refused_with_its_place_today_and_old_records_read_grouped():
    with pytest.raises(ValueError, match="settings are grouped: lr is now optimisation.lr, tutorial_style is now "
                                         "tutorial.style"):
        Settings.model_validate({"model": "lenet_pad2_avg", "lr": 0.9, "tutorial_style": "ch6"})
    old = {"model": "nin", "resize": 96, "lr": 0.1, "optimizer": "sgd", "epochs": 3, "data_dir": "d", "fold": 1}
    assert grouped(old) == {"model": "nin", "data": {"resize": 96, "dir": "d"}, "harness_loop": {"fold": 1},
                            "optimisation": {"lr": 0.1, "optimizer": "sgd", "epochs": 3}}
    today = Settings.model_validate(grouped(old)).model_dump(mode="json")
    assert grouped(today) == today  # a run recorded today reads as it was recorded


@pytest.mark.parametrize("name", sorted(BOOK))
def test_the_book_recipe_runs_on_cuda_only(name):
    spec = load_spec(EXPERIMENTS / f"modern-{name}.yaml")
    s = spec.settings
    assert spec.devices == ["cuda"] and len(spec.seeds) >= 3
    assert (s.model, s.data.resize, s.optimisation.lr) == BOOK[name]
    o = s.optimisation
    assert (o.optimizer, s.init, o.batch_size, o.epochs, s.data.train_examples, s.measure.ceiling) == (
        "sgd", "xavier", 128, 10, None, True)
    assert any(r.gate and r.metric == "test_acc" for r in spec.references)


LATER = {"resnet18": ("resnet18", 0.05), "densenet": ("densenet", 0.1)}  # d2l v2 7.6-7.7: batch 256


@pytest.mark.parametrize("name", sorted(LATER))
def test_resnet_and_densenet_run_the_books_recipe_on_cuda_judged_on_each_printed_draw(name):
    spec = load_spec(EXPERIMENTS / f"modern-{name}.yaml")
    s = spec.settings
    assert spec.devices == ["cuda"] and len(spec.seeds) >= 3
    o = s.optimisation
    assert (s.model, o.lr, s.data.resize, o.batch_size, o.epochs, o.optimizer, s.init) == (*LATER[name], 96, 256, 10,
                                                                                       "sgd", "xavier")
    assert {(r.metric, r.comparison) for r in spec.references if r.gate} == {
        ("test_acc", "draw"), ("train_acc", "draw"), ("loss", "draw")}


@pytest.mark.parametrize("name", sorted(BOOK) + sorted(LATER))
def test_the_smoke_specs_say_what_they_are(name):
    spec = load_spec(EXPERIMENTS / "studies" / f"smoke-{name}.yaml")
    assert spec.devices == ["cpu"] and "not the book's result" in spec.title
    assert spec.settings.model == (BOOK.get(name) or LATER[name])[0] and spec.settings.data.train_examples <= 2000
    assert [(r.metric, r.at_least) for r in spec.references] == [("test_acc", 0.2)]


def test_the_bn_lenet_smoke_is_the_books_recipe_cut_short_and_its_study_the_whole():
    smoke = load_spec(EXPERIMENTS / "studies" / "smoke-bn-lenet.yaml")
    assert "not the book's result" in smoke.title and smoke.settings.optimisation.epochs < 10
    for name, model in (("bn-lenet", "bn_lenet_scratch"), ("bn-lenet-concise", "bn_lenet")):
        study = load_spec(EXPERIMENTS / "studies" / f"{name}.yaml")
        s = study.settings
        o = s.optimisation
        assert (s.model, o.lr, o.batch_size, o.epochs, o.optimizer, s.init) == (model, 1.0, 256, 10, "sgd", "xavier")
        assert len(study.seeds) >= 5 and study.devices == ["cpu"]
    o = smoke.settings.optimisation
    assert smoke.settings.model == "bn_lenet_scratch" and (o.lr, o.batch_size) == (1.0, 256)


def test_a_tiny_run_records_speed_against_the_ceiling(tmp_path, store, monkeypatch, write_spec):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    make_dataset(tmp_path / "idx", monkeypatch, n_train=128, n_test=40)
    D.clear_cache()
    path = write_spec({
        "name": "nin-tiny", "title": "tiny NiN", "kind": "training", "seeds": [0], "devices": ["cpu", "cuda"],
        "settings": {"recipe": "train_ch6", "model": "nin", "progress": False,
                     "data": {"resize": 67, "train_examples": 64, "dir": str(tmp_path / "idx")},
                     "optimisation": {"optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 2}},
        "references": [{"metric": "test_acc", "source": "H2", "basis": "chosen before measuring", "at_least": 0.0}]})
    assert main(["run", str(path)]) == 0
    run = tracking.spec_runs().iloc[0]
    verdicts = tracking.load_json(run.run_id, "verdicts.json")
    on_cuda = "reproduced" if torch.cuda.is_available() else "skipped"  # a GPU machine runs the CUDA half too
    assert {(v["device"], v["status"]) for v in verdicts} == {("cpu", "reproduced"), ("cuda", on_cuda)}
    text = write_report(tmp_path / "reports").read_text()
    speed = table("nin-tiny", "speed")
    assert [c for c in speed.columns if not c.endswith(("_low", "_high", "_rounds"))] == [
        "device", "seeds", "rounds_extra", "harness_examples_per_s", "harness_gflops", "harness_fraction_of_peak",
        "matmul_peak_gflops", "training_flop_per_example", "stopped"]
    measured = tracking.load_json(run.run_id, "measured.json")["cpu"]["0"]
    assert speed["training_flop_per_example"].tolist() == [measured["harness.training_flop_per_example"]]
    assert speed["harness_gflops"].iloc[0] > 0
    (tmp_path / "figures").mkdir()
    assert KIND.section(RunView(run, figures=tmp_path / "figures")) in text  # the report shows the section whole


def test_fold_is_off_by_default():
    s = Settings.model_validate(grouped({"recipe": "train_ch6", "model": "alexnet", "resize": 224, "lr": 0.01}))
    assert s.harness_loop.fold == 1 and s.optimisation.batch_size == 128 and s.optimisation.optimizer == "sgd"
    assert s.input_shape == (1, 224, 224)
