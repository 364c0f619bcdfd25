"""Run the harness's CUDA half on a GPU node, offline, from this kit: ``python3 run.py OUT``.

It checks the node's Python and PyTorch, installs from ``wheels/`` (no package index) what the node's Python lacks
into ``site/`` beside this file (the node's own environment is left as it is), then runs each suite of
``plan.json`` with ``harness reproduce --devices cuda`` into a SQLite store in OUT and writes each suite as a bundle
(``harness export``) into OUT. Back where the report lives: ``harness import OUT/*.harness.tgz``, then
``harness report``. Standard library only: nothing else is installed when it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

KIT = Path(__file__).resolve().parent
MIN_PYTHON = (3, 10)


def fail(message: str, code: int = 2) -> None:
    print(f"kit: {message}", file=sys.stderr)
    sys.exit(code)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("+")[0].split(".")[:2] if p.isdigit())


PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.import_module(name).__version__
    except Exception as exc:
        found[name] = None
import torch
print(json.dumps([found, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available()
                  else "none"]))
"""


def check_node(devices: list[str]) -> str:
    """The node's torch, or a one-line reason why this node cannot run the kit: the packages the kit leaves to
    the node (node.json) must be there, torch new enough, and a GPU where CUDA is asked for."""
    if sys.version_info[:2] < MIN_PYTHON:
        fail(f"Python {sys.version.split()[0]}: the harness needs {'.'.join(map(str, MIN_PYTHON))} or later")
    node = json.loads((KIT / "node.json").read_text())
    out = subprocess.run([sys.executable, "-c", PROBE, *node["has"]], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"{sys.executable}: no usable PyTorch ({(out.stderr.strip().splitlines() or ['?'])[-1]}); the kit uses "
             "the node's own torch and torchvision: run it with the Python that has them")
    found, cuda, gpu = json.loads(out.stdout.strip().splitlines()[-1])
    if missing := [name for name, v in found.items() if v is None]:
        fail(f"{sys.executable} lacks {', '.join(missing)}, which the kit leaves to the node: install them there, or "
             f"build the kit with --bring {','.join(m for m in missing if m not in ('torch', 'torchvision'))}")
    torch_version = found["torch"]
    if version_tuple(torch_version) < version_tuple(node["min_torch"]):
        fail(f"torch {torch_version}: the harness needs {node['min_torch']} or later")
    if "cuda" in devices and not cuda:
        fail(f"no GPU found (torch {torch_version}: torch.cuda.is_available() is False); run on a GPU node, or pass "
             "--devices cpu to try the kit on the CPU")
    print(f"kit: Python {sys.version.split()[0]}, torch {torch_version}, GPU: {gpu}")
    return torch_version


def install(site: Path) -> None:
    """What the node's Python lacks of ``requirements.txt``, from ``wheels/`` only, into ``site``."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    wheels = KIT / "wheels"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        # RunSet against the node's installed packages: the report lists only what is missing or too old.
        out = subprocess.run(pip + ["install", "--dry-run", "--quiet", "--no-index", "--find-links", str(wheels),
                                    "--report", str(report), "-r", str(KIT / "requirements.txt")],
                             capture_output=True, text=True, env=os.environ | {"PIP_BREAK_SYSTEM_PACKAGES": "1"})
        if out.returncode != 0:
            lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
            fail("the node lacks a package the kit does not carry (build the kit with --bring NAME to add it): "
                 + (lines[-1] if lines else "pip could not resolve requirements.txt"))
        todo = [url2pathname(urlparse(item["download_info"]["url"]).path)
                for item in json.loads(report.read_text())["install"]]
    if not todo:
        print("kit: the node has every package the harness needs")
        return
    subprocess.run(pip + ["install", "--quiet", "--no-index", "--no-deps", "--no-compile", "--target", str(site),
                          "--upgrade", *todo], check=True)
    print(f"kit: installed {len(todo)} package(s) into {site}: " + ", ".join(Path(t).name.split("-")[0] for t in todo))


def harness(args: list[str], env: dict[str, str]) -> int:
    print("kit: harness " + " ".join(args), flush=True)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env).returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="where the store and the bundles go")
    p.add_argument("--devices", default="cuda", help="cuda (the default); cpu tries the kit on any machine")
    p.add_argument("--only", help="instead of the plan, one suite of these spec files (comma-separated names under "
                                  "experiments/), e.g. to try the kit on the CPU")
    p.add_argument("--full", action="store_true", help="also the book's full F1-F4 runs, every seed (longer)")
    args = p.parse_args(argv)
    devices = args.devices.split(",")
    check_node(devices)
    site = KIT / "site"
    install(site)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(site), str(KIT / "src")]),
                        "FASHION_MNIST_DIR": str(KIT / "data" / "fashion-mnist"),
                        "MLFLOW_TRACKING_URI": f"sqlite:///{out / 'mlflow.db'}", "PYTHONUNBUFFERED": "1"}
    plan = json.loads((KIT / "plan.json").read_text())
    suites = plan["suites"] + (plan["full"] if args.full else [])
    if args.only:
        suites = [{"name": "only", "specs": [f"experiments/{n}" for n in args.only.split(",")], "args": []}]
    status = 0
    for suite in suites:
        specs = [KIT / "src" / s for s in suite["specs"]]
        if missing := [s for s in specs if not s.is_file()]:
            fail(f"{missing[0]}: no such spec in the kit")
        code = harness(["reproduce", *map(str, specs), "--devices", args.devices, "--no-report", *suite["args"]], env)
        status = max(status, code)
        bundle = out / f"{suite['name']}.harness.tgz"
        if harness(["export", "latest", "--out", str(bundle)], env) != 0:
            fail(f"{suite['name']}: the suite ran but could not be exported", 1)
    print(f"kit: done; bring {out}/*.harness.tgz back and run `harness import` on each, then `harness report`")
    return status


if __name__ == "__main__":
    sys.exit(main())
