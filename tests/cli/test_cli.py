"""The command line: list, show, help, and argument errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_list_shows_every_spec(capsys):
    assert main(["list", str(EXPERIMENTS)]) == 0
    out = capsys.readouterr().out
    for path in EXPERIMENTS.glob("*.yaml"):
        assert path.stem in out


def test_list_by_default_shows_the_suite_the_studies_and_the_peer_runs_each_with_its_folder(capsys, monkeypatch):
    monkeypatch.chdir(EXPERIMENTS.parent)
    monkeypatch.setattr("harness.cli.options.console.width", 400)
    assert main(["list"]) == 0
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in capsys.readouterr().out.splitlines()
            if line.count("│") > 3}
    assert rows["lenet-c2"] == "experiments" and rows["lenet-loops"] == "experiments/studies"
    assert rows["peer-d2l-c2"] == "experiments/peer"
    rows.pop("", None)  # a title's second line
    assert len(rows) == sum(1 for _ in EXPERIMENTS.rglob("*.yaml"))  # every spec


def test_show_prints_each_layer_with_shape_parameters_and_flop(capsys):
    relu = EXPERIMENTS / "studies" / "lenet-relu.yaml"
    assert main(["show", str(EXPERIMENTS / "structure-googlenet.yaml"), str(relu)]) == 0
    out = capsys.readouterr().out
    assert "structure-googlenet: googlenet on 1x1x96x96" in out and "1x832x3x3" in out and "5,977,530" in out
    assert "lenet-relu: lenet_pad2_avg, relu on 1x1x28x28" in out and "61,706" in out
    assert "0.24" in out  # the first convolution: 2 x 6 x 28 x 28 x 25 FLOP = 0.24 MFLOP


def test_show_prints_a_block_as_one_row_and_opens_it_with_depth(capsys):
    spec = str(EXPERIMENTS / "structure-resnet18.yaml")
    assert main(["show", spec]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "resnet_block" in line]
    assert len(rows) == 4 and "1x128x28x28" in rows[1] and "525,952" in rows[1]
    assert main(["show", "--depth", "3", spec]) == 0
    out = capsys.readouterr().out
    assert "2.0.shortcut" in out and "2.0.body.0" in out and "residual" in out and "BatchNorm2d" in out
    assert "11,178,378" in out  # the total counts the top rows once


def test_show_without_a_network_is_an_error(capsys):
    assert main(["show", str(EXPERIMENTS / "worked-pooling.yaml")]) == 2
    assert "no spec here defines a network" in capsys.readouterr().err


def test_unknown_command_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_empty_directory_is_an_error(tmp_path, store, capsys):
    assert main(["run", str(tmp_path)]) == 2
    assert "no spec files found" in capsys.readouterr().err


def test_a_cpu_run_prints_nothing_on_stderr_but_its_own_lines(tmp_path, write_spec):
    """A CPU run's stderr holds only the harness's own lines: no library warning, no progress-bar residue.

    The throughput kind imports torch.utils.benchmark and torch.compile (both pull in torch's C++ extension module,
    which logs a CUDA_HOME notice on machines with nvcc but no GPU); the LeNet kind runs the book's DataLoader with
    4 workers on the real data, where it is installed.
    """
    import os
    import subprocess
    import sys

    from harness.book import data as D
    from tests.kinds.test_conv_throughput import SPEC as CONV

    paths = [write_spec(CONV | {"timing": {"rounds": 3, "max_rounds": 3, "budget_s": 0}})]
    if D.DEBIAN_DIR.is_dir() or os.environ.get(D.ENV_DIR):
        paths.append(write_spec({
            "name": "lenet-one-epoch", "title": "one epoch of each loop", "kind": "training", "seeds": [0],
            "settings": {"model": "lenet_nopad_max", "optimisation": {"optimizer": "adam", "lr": 0.001, "epochs": 1},
                         "loops": ["harness", "tutorial"]},
            "references": [{"metric": "test_acc", "source": "C1", "basis": "chosen before measuring", "at_least": 0}]}))
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    env.pop("PYTEST_CURRENT_TEST", None)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", *map(str, paths)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    foreign = [line for line in done.stderr.splitlines() if not line.startswith("harness:")]
    assert foreign == []


def test_the_experiment_comes_from_mlflows_variable_or_the_option(store, write_spec, monkeypatch):
    import mlflow

    from tests import flaky

    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "x")
    assert main(["reproduce", str(write_spec(flaky.spec([0]))), "--no-report"]) == 0
    assert main(["run", "--experiment", "y", str(write_spec(flaky.spec([1], name="flaky-y")))]) == 0
    for experiment, spec in (("x", "flaky"), ("y", "flaky-y")):
        runs = mlflow.search_runs([mlflow.get_experiment_by_name(experiment).experiment_id],
                                  filter_string="tags.`harness.role` = 'spec'")
        assert list(runs["tags.harness.spec"]) == [spec]
    assert mlflow.get_experiment_by_name("d2l-cnn-chapter") is None


def test_an_unexpected_error_is_one_line_with_its_own_status_and_debug_shows_the_traceback(monkeypatch, capsys):
    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr("harness.cli.specs.cmd_list", broken)
    assert main(["list"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected KeyError: 'boom' (run with --debug" in err
    assert main(["--debug", "list"]) == 70
    assert "Traceback (most recent call last)" in capsys.readouterr().err
