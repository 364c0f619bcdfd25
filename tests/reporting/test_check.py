"""harness check: a notebook's line against the seeds of the spec's newest run, as the reproduction's own draws."""

from __future__ import annotations

import dataclasses
import json

import pytest

from harness.cli import EXIT_INCONCLUSIVE, main
from harness.kinds import registry
from harness.kinds.training import KIND as TRAINING

FINALS = {0: (0.46, 0.822, 0.79), 1: (0.47, 0.828, 0.81), 2: (0.465, 0.825, 0.80)}  # loss, train acc, test acc
SPEC = {"name": "c2-small", "title": "C2's printed lines against scripted seeds", "kind": "training",
        "seeds": [0, 1, 2], "devices": ["cpu"],
        "settings": {"model": "lenet_pad2_avg", "init": "xavier",
                     "optimisation": {"optimizer": "sgd", "lr": 0.9, "epochs": 2}},
        "references": [{"metric": "test_acc", "source": "C2", "basis": "printed", "draw": 0.779,
                        "quote": "loss 0.469, train acc 0.823, test acc 0.779"}]}


def scripted(settings, rec):
    """A LeNet run's values without training: the seed's final loss and accuracies, a curve of two epochs."""
    loss, train, test = FINALS[rec.seed]
    return {"loss": loss, "train_acc": train, "test_acc": test, "examples_per_s": 20_000.0 + rec.seed,
            "loss_per_epoch": [1.0, loss], "train_acc_per_epoch": [0.6 + rec.seed / 100, train],
            "test_acc_per_epoch": [0.7 + rec.seed / 100, test]}


@pytest.fixture
def recorded(store, write_spec, monkeypatch):
    monkeypatch.setitem(registry.KINDS, "training", dataclasses.replace(TRAINING, measure=scripted))

    def record(seeds=(0, 1, 2)):
        path = write_spec(SPEC | {"seeds": list(seeds)})
        assert main(["run", str(path)]) == 0
        return path

    return record


def test_the_books_line_is_consistent_and_named_beside_the_seeds(recorded, capsys):
    path = recorded()
    capsys.readouterr()
    assert main(["check", str(path), "--line", "loss 0.469, train acc 0.823, test acc 0.779"]) == 0
    out = capsys.readouterr().out
    assert "consistent with the reproduction" in out and "0.779 (C2)" in out  # the book's own value beside it


def test_a_line_far_outside_is_not_and_the_json_says_so(recorded, capsys):
    path = recorded()
    capsys.readouterr()
    assert main(["check", str(path), "--line", "loss 0.9, train acc 0.5, test acc 0.4", "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["verdict"] == "not consistent" and answer["family_error"] == 0.05
    test = next(v for v in answer["values"] if v["quantity"] == "test_acc")
    assert test["verdict"] == "not consistent" and test["adjusted_p"] <= 0.05 and test["seeds"] == 3
    assert test["low"] < 0.79 < test["high"] and test["detectable_shift"] > 0


def test_an_earlier_epoch_and_a_throughput(recorded, capsys, tmp_path):
    path = recorded()
    pasted = tmp_path / "out.txt"
    pasted.write_text("training on  cuda\nepoch 1, loss 0.0072, train acc 0.61, test acc 0.71, time 3.7 sec\n"
                      "66920.4 examples/sec on cuda:0\n")
    capsys.readouterr()
    assert main(["check", str(path), "--from", str(pasted), "--json"]) == 0
    values = {v["quantity"]: v for v in json.loads(capsys.readouterr().out)["values"]}
    assert values["test_acc_per_epoch[0]"]["value"] == 0.71  # epoch 1 of 2: the curve's first point
    assert values["loss"]["verdict"].startswith("not compared: train_ch5 printed its loss on two scales")
    assert values["examples_per_s"]["verdict"] == "information"


def test_two_seeds_say_how_little_they_can_tell(recorded, capsys):
    """With two seeds the line is still judged, but the detectable shift says what that is worth; with one, no
    interval: too few seeds to say."""
    path = recorded(seeds=(0, 1))
    capsys.readouterr()
    assert main(["check", str(path), "--line", "loss 0.469, train acc 0.823, test acc 0.779", "--json"]) == 0
    test = next(v for v in json.loads(capsys.readouterr().out)["values"] if v["quantity"] == "test_acc")
    assert test["seeds"] == 2 and test["detectable_shift"] > 0.5  # it could not catch even a large departure
    path = recorded(seeds=(0,))
    assert main(["check", str(path), "--line", "loss 0.469, train acc 0.823, test acc 0.779"]) == EXIT_INCONCLUSIVE


def test_a_line_not_understood_is_exit_2_and_no_run_says_so(recorded, capsys, write_spec):
    path = recorded()
    capsys.readouterr()
    assert main(["check", str(path), "--line", "accuracy 0.8"]) == 2
    assert "not a line the books print: 'accuracy 0.8'" in capsys.readouterr().err
    other = write_spec(SPEC | {"name": "never-run"})
    assert main(["check", str(other), "--line", "loss 0.469, train acc 0.823, test acc 0.779"]) == 1
    assert "holds no finished run of never-run: add --run" in capsys.readouterr().err
