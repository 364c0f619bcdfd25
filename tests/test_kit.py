"""The GPU-node kit: built here for this Python, installed with no package index into a fresh virtualenv that holds
only a node's own stack (this machine's torch, torchvision, numpy, pandas, scipy), run on the CPU through its
script, and its bundle imported here into the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import venv
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from harness.book import data as D
from harness.cli import main
from harness.machine import env
from harness.store import tags as tag
from harness.store import tracking

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kit"))
import build as kit_build  # noqa: E402  (kit/build.py: a script beside the package)

NODE_STACK = ["torch", "torchvision", "numpy", "pandas", "scipy"]
NODE_STACK_SORTED = sorted(NODE_STACK)
OFFLINE = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": "",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "PIP_CONFIG_FILE": os.devnull}

pytestmark = pytest.mark.skipif(D.find_files()[0] is None, reason="Fashion-MNIST is not installed")


def closure(names: list[str]) -> set[str]:
    """The installed distributions ``names`` need, themselves included."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        dist = distribution(name)
        key = dist.metadata["Name"].lower()
        if key in seen:
            continue
        seen.add(key)
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def node_like(where: Path) -> Path:
    """A fresh virtualenv that sees this machine's torch and numeric stack (linked, not copied) and nothing else."""
    venv.create(where / "venv", with_pip=True)
    stack = where / "stack"
    stack.mkdir()
    for name in closure(NODE_STACK):
        dist = distribution(name)
        base = Path(dist.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in dist.files or []} - {".."}:
            if (base / top).exists() and not (stack / top).exists():
                (stack / top).symlink_to(base / top)
    python = where / "venv" / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "node-stack.pth").write_text(f"{stack}\n")
    return python


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    archive = kit_build.build(out, f"{sys.version_info.major}.{sys.version_info.minor}", set(), [])
    assert archive.stat().st_size < kit_build.LIMIT_MB * 2**20
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out / archive.name.removesuffix(".tar.gz")


def test_the_kit_holds_code_data_wheels_and_a_plan_without_the_nodes_own_stack(kit):
    wheels = {re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower() for w in (kit / "wheels").glob("*.whl")}
    assert {"mlflow-skinny", "sqlalchemy", "alembic", "pydantic", "pyyaml", "rich"} <= wheels
    assert not wheels & {"torch", "torchvision", "numpy", "pandas", "scipy", "mlflow", "matplotlib"}
    assert sorted(p.name for p in (kit / "data" / "fashion-mnist").iterdir()) == sorted(
        p.name for p in D.find_files()[0].values())
    build = (kit / "src" / "BUILD.json").read_text()
    assert env.code_id() in build and (kit / "src" / "harness" / "cli" / "__main__.py").is_file()
    plan = (kit / "plan.json").read_text()
    assert "experiments/modern-alexnet.yaml" in plan and "smoke-alexnet.yaml" not in plan
    assert "experiments/studies/lenet-c3.yaml" in plan  # a study's CUDA half runs on the node too
    assert "experiments/modern-resnet18.yaml" in plan and "experiments/modern-densenet.yaml" in plan
    assert json.loads((kit / "node.json").read_text()) == {"has": NODE_STACK_SORTED, "min_torch": "2.6"}
    assert "mlflow-skinny==" in (kit / "requirements.txt").read_text()


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Path:
    return node_like(tmp_path_factory.mktemp("node"))


def test_the_kit_installs_offline_runs_on_the_cpu_and_its_bundle_fills_the_report(kit, node, tmp_path, store):
    python = node
    lacks = subprocess.run([python, "-c", "import mlflow"], capture_output=True, text=True)
    assert lacks.returncode != 0  # the node has no MLflow: the kit brings it
    out = tmp_path / "out"
    run = subprocess.run([python, str(kit / "run.py"), str(out), "--devices", "cpu", "--only",
                          "worked-convolution.yaml"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "MLFLOW_"))} | OFFLINE,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "kit: installed" in run.stdout and "mlflow" in run.stdout
    assert (kit / "site" / "mlflow").is_dir()
    bundle = out / "only.harness.tgz"
    assert main(["import", str(bundle)]) == 0
    spec = tracking.spec_runs().iloc[0]
    assert spec["tags.harness.spec"] == "worked-convolution" and spec["tags.verdict"] == "reproduced"
    assert spec[f"tags.{tag.CODE_ID}"] == env.code_id()  # the node had no .git: BUILD.json said it
    assert spec["tags.executable"] == str(python)  # it ran in the node's Python
    assert main(["report", "--out", str(tmp_path / "reports")]) == 0
    assert "worked-convolution" in (tmp_path / "reports" / "REPORT.md").read_text()


@pytest.mark.skipif(env.cuda_available(), reason="this machine has a GPU: the kit would run its CUDA half")
def test_the_kit_says_in_one_line_why_a_node_cannot_run_it(kit, node, tmp_path):
    run = subprocess.run([node, str(kit / "run.py"), str(tmp_path / "out")], capture_output=True, text=True,
                         env=os.environ | OFFLINE, timeout=300)
    assert run.returncode == 2 and run.stderr.strip().startswith("kit: no GPU found")
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
