"""The command line: list, help, and argument errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_list_shows_every_spec(capsys):
    assert main(["list", str(EXPERIMENTS)]) == 0
    out = capsys.readouterr().out
    for path in EXPERIMENTS.glob("*.yaml"):
        assert path.stem in out


def test_unknown_command_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_empty_directory_is_an_error(tmp_path, store, capsys):
    assert main(["run", str(tmp_path)]) == 2
    assert "no spec files found" in capsys.readouterr().err
