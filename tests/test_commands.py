"""Every nox session's entry point starts, and every command line the README shows runs here: ``--help`` for the
long ones, the real thing for the short ones."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHORT = {"list": ["experiments"], "show": ["experiments/lenet-c1.yaml"]}  # run for real: under a few seconds


def _noxfile(monkeypatch) -> tuple[object, list[str]]:
    """noxfile.py, loaded with a stand-in for nox (which lives outside the sessions' venvs), and its sessions."""
    sessions: list[str] = []
    stub = types.SimpleNamespace(options=types.SimpleNamespace(), Session=object,
                                 session=lambda f: sessions.append(f.__name__) or f)
    monkeypatch.setitem(sys.modules, "nox", stub)
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, sessions


class Session:
    """What a nox session asks for, recorded: its installs and its commands (``--help`` as the posargs)."""

    venv_backend = "uv"

    def __init__(self, tmp: Path):
        self.posargs, self.env, self.installed, self.commands, self._tmp = ["--help"], {}, [], [], tmp

    def install(self, *args, **kwargs):
        self.installed += args

    def run(self, *args, external=False, silent=False, **kwargs):
        if not external:
            self.commands.append(list(args))
        if silent:
            return _run(list(args)).stdout

    def create_tmp(self):
        return str(self._tmp)

    def error(self, message):
        raise AssertionError(message)

    def warn(self, message):
        pass


def _run(args: list[str]) -> subprocess.CompletedProcess:
    program = sys.executable if args[0] == "python" else str(BIN / args[0])
    return subprocess.run([program, *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)


SESSIONS = ["tests", "reproduce", "scale", "server", "ui", "bench", "gpu_kit", "lock", "lint"]


@pytest.mark.parametrize("name", SESSIONS, ids=[f"nox-{n}" for n in SESSIONS])
def test_each_nox_session_starts(name, tmp_path, monkeypatch):
    noxfile, sessions = _noxfile(monkeypatch)
    assert sorted(sessions) == sorted(SESSIONS)  # a new session is added here, and so tested
    (tmp_path / "mlflow.db").touch()  # the ui session looks for the store nox -s reproduce leaves
    monkeypatch.chdir(tmp_path)
    session = Session(tmp_path)
    getattr(noxfile, name)(session)
    assert session.commands, f"nox -s {name} runs nothing"
    for command in session.commands:
        if not (BIN / command[0]).exists() and command[0] != "python":
            tool = {"pip-compile": "pip-tools"}[command[0]]  # a tool the session installs for itself alone
            assert any(str(i).startswith(tool) for i in session.installed), f"{command[0]} is installed by nobody"
            continue
        done = _run(command)
        assert done.returncode == 0, f"nox -s {name}: {shlex.join(command)} -> {done.returncode}: {done.stderr[-500:]}"


def _readme_commands() -> set[str]:
    """The subcommands of the ``harness ...`` lines in the README's code blocks."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    return {line.split()[1] for block in blocks for line in block.splitlines() if line.startswith("harness ")}


@pytest.mark.parametrize("sub", sorted(_readme_commands()))
def test_each_harness_command_in_the_readme_runs(sub):
    assert _run(["harness", sub, "--help"]).returncode == 0
    if sub in SHORT:
        done = _run(["harness", sub, *SHORT[sub]])
        assert done.returncode == 0, done.stderr[-500:]


def test_the_readme_shows_the_commands():
    assert {"run", "reproduce", "report", "check", "compare", "list", "show", "server"} <= _readme_commands()


def test_reproduce_with_studies_runs_the_suite_then_each_study_then_the_report(tmp_path, monkeypatch):
    noxfile, _ = _noxfile(monkeypatch)
    session = Session(tmp_path)
    session.posargs = ["--studies", "--seeds", "0"]
    noxfile.reproduce(session)
    assert session.commands[-3:] == [
        ["harness", "reproduce", "experiments", "--no-report", "--allow-miss", "--seeds", "0"],
        ["harness", "run", "experiments/studies", "--allow-miss", "--seeds", "0"], ["harness", "report"]]
    assert float(session.env["HARNESS_SESSION_START"]) > 0  # the suite records when nox began: install included
