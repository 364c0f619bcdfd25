"""The command line's cold start, as a user meets it: a whole process, from the interpreter's start to its exit
(`harness --help`, `harness list` of every spec, a malformed spec rejected). pytest-benchmark's rounds give the
median; the default test run calls each once and checks what it printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = "name: x\nkind: training\n"


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


@pytest.mark.parametrize("command", ["help", "list", "reject"])
def test_bench_cold_start(benchmark, command, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    args = {"help": ["--help"], "list": ["list", "experiments", "experiments/studies", "experiments/peer"],
            "reject": ["list", str(bad)]}[command]
    benchmark.group = "cold start"
    done = benchmark.pedantic(harness, args=args, rounds=5, iterations=1, warmup_rounds=1)
    if command == "reject":
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "bad.yaml" in done.stderr
    else:
        assert done.returncode == 0 and done.stdout
