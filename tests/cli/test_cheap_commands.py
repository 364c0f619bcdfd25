"""Cheap commands stay cheap: the command line, the spec schema and every kind's settings import neither torch nor
MLflow (nor pandas or matplotlib), checked in a fresh interpreter, so `harness --help`, `harness list` and
rejecting a bad spec answer at once. The heavy floors load only where a command runs or reads runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "mlflow", "matplotlib", "pandas", "scipy")


def heavy_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_command_line_and_the_schema_loads_nothing_heavy():
    assert heavy_after("import harness.cli, harness.specs.spec\nfrom harness.kinds import registry\n"
                       "[k.settings for k in registry.KINDS.values()]") == []


def test_listing_every_spec_loads_nothing_heavy():
    code = ("from harness.cli import main\n"
            "assert main(['list', 'experiments', 'experiments/studies', 'experiments/peer']) == 0")
    assert heavy_after(code) == []


@pytest.mark.parametrize("text", ["name: x\nkind: training\n", "name: bad\ntitle: t\nkind: training\nseeds: [0]\n"
                                  "settings: {model: lenet_pad2_avg, optimisation: {optimizer: sgd, lr: 0.9, "
                                  "epochs: 1, batch_size: 0}}\nreferences: [{metric: test_acc, source: C2, "
                                  "basis: derived, working: w, at_least: 0.1}]\n"])
@pytest.mark.parametrize("command", ["list", "run", "reproduce", "show"])
def test_rejecting_a_malformed_spec_loads_nothing_heavy(tmp_path, text, command):
    """Every command that takes specs validates them all before it loads the store or torch."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert heavy_after(f"from harness.cli import main\nassert main([{command!r}, {str(bad)!r}]) == 2") == []


def test_help_names_every_command_without_loading_anything_heavy():
    assert heavy_after("from harness.cli import parser\nparser().format_help()") == []


def test_reading_runs_for_a_report_loads_no_torch():
    """A report reads the store and draws: torch (seconds to import) is for the commands that run units."""
    loaded = heavy_after("import harness.reporting.report, harness.reading.figures, harness.cli.report")
    assert "torch" not in loaded and "mlflow" in loaded
