"""Build the GPU-node kit: this project's code and specs, the wheels a PyTorch node may lack, Fashion-MNIST, and
``run.py``, in one archive (``nox -s gpu_kit``).

A node keeps its own PyTorch (often not the version pinned here) and has no package index. The kit carries every
package the harness needs to run and record there, pinned to the versions installed here, except those a PyTorch
node has: torch, torchvision and the numeric stack (``NODE_HAS``; ``--bring`` adds any of them). It records to a
SQLite file with MLflow's tracking client (``mlflow-skinny`` with SQLAlchemy and Alembic: MLflow's server and UI
stay here), and it writes no report there (matplotlib stays here too). Run it with the harness installed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from harness.book import data
from harness.machine import env
from harness.specs.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
NODE_HAS = {"torch", "torchvision", "numpy", "pandas", "scipy"}  # a PyTorch node's own (numpy: torchvision's)
RUN_HERE = {"matplotlib", "tabulate"}  # the report's: it is written back here
RECORDING = ["mlflow-skinny", "sqlalchemy", "alembic"]  # MLflow's tracking client and its SQLite store
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
LIMIT_MB = 60
CODE = ["harness", "experiments", "references", "pyproject.toml", "README.md"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(bring: set[str]) -> list[str]:
    """What the node needs beside its own stack, pinned to the versions installed here."""
    from importlib.metadata import requires

    names = [re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0] for r in requires("d2l-cnn-harness") or []
             if "extra ==" not in r]
    wanted = [n for n in names if canonical(n) not in NODE_HAS - bring and canonical(n) not in RUN_HERE]
    wanted = [n for n in wanted if canonical(n) != "mlflow"] + RECORDING
    out = []
    for name in wanted:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


def download(reqs: list[str], wheels: Path, python: str, pip_args: list[str]) -> None:
    """Binary wheels of ``reqs`` and everything they need, for CPython ``python`` on x86-64 Linux."""
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    "--only-binary=:all:", "--implementation", "cp", "--python-version", python, *platforms,
                    "--dest", str(wheels), *pip_args, *reqs], check=True)


def drop_node_stack(wheels: Path, bring: set[str]) -> list[str]:
    """Remove the wheels of packages the node has (pulled in as others' dependencies)."""
    dropped = []
    for wheel in wheels.glob("*.whl"):
        name = canonical(wheel.name.split("-")[0])
        if name in NODE_HAS - bring or name.startswith("nvidia-") or name == "triton":
            wheel.unlink()
            dropped.append(name)
    return sorted(dropped)


def copy_code(dest: Path) -> None:
    """The files of ``CODE`` git keeps or would (not ignored), as they are in the working tree; what the code is."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *CODE], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    for rel in listed.stdout.split():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    fp = env.fingerprint()
    (dest / "BUILD.json").write_text(json.dumps({"git.commit": fp["git.commit"], "git.dirty": fp["git.dirty"],
                                                 "code.id": env.code_id()}, indent=1))


def plan(specs_dir: Path) -> dict[str, list[dict]]:
    """The suites the node runs: every spec's CUDA half, the studies' too (seconds each on a GPU); one repeat of a
    LeNet spec (are its CUDA curves the same twice?); the book's F1-F4 on one seed (``full``: every seed, longer)."""
    specs = {p: load_spec(p) for folder in (specs_dir, specs_dir / "studies") for p in folder.glob("*.yaml")}
    cuda = sorted(p for p, spec in specs.items() if "cuda" in spec.devices)
    data = {p: getattr(specs[p].settings, "data", None) for p in cuda}  # a training spec's data settings
    modern = [p for p in cuda if getattr(data[p], "resize", None)]  # 5.6-5.12's networks, resized
    rel = [str(p.relative_to(specs_dir.parent)) for p in cuda if p not in modern]
    book = [str(p.relative_to(specs_dir.parent)) for p in modern]
    return {"suites": [{"name": "cuda", "specs": rel, "args": []},
                       {"name": "cuda-repeat", "specs": ["experiments/lenet-c1.yaml"], "args": []},
                       {"name": "cuda-modern-one-seed", "specs": book, "args": ["--seeds", "0"]}],
            "full": [{"name": "cuda-modern", "specs": book, "args": []}]}


def build(out: Path, python: str, bring: set[str], pip_args: list[str]) -> Path:
    found, places, _ = data.find_files()
    if found is None:
        raise SystemExit(f"gpu_kit: Fashion-MNIST not found (looked in {', '.join(map(str, places))})")
    name = f"d2l-cnn-kit-{env.code_id()[:12]}-py{python.replace('.', '')}"
    with tempfile.TemporaryDirectory() as tmp:
        kit = Path(tmp) / name
        copy_code(kit / "src")
        reqs = requirements(bring)
        download(reqs, kit / "wheels", python, pip_args)
        dropped = drop_node_stack(kit / "wheels", bring)
        (kit / "requirements.txt").write_text("\n".join(reqs) + "\n")
        (kit / "node.json").write_text(json.dumps({"has": sorted(NODE_HAS - bring), "min_torch": "2.6"}))
        (kit / "data" / "fashion-mnist").mkdir(parents=True)
        for path in found.values():
            shutil.copy2(path, kit / "data" / "fashion-mnist" / path.name)
        (kit / "plan.json").write_text(json.dumps(plan(ROOT / "experiments"), indent=1))
        shutil.copy2(Path(__file__).with_name("run.py"), kit / "run.py")
        out.mkdir(parents=True, exist_ok=True)
        archive = out / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(kit, arcname=name)
    mb = archive.stat().st_size / 2**20
    print(f"gpu_kit: {archive} ({mb:.1f} MB, Python {python}; {len(reqs)} pinned requirements; "
          f"left to the node: {', '.join(sorted(NODE_HAS - bring))}" + (f"; dropped {', '.join(dropped)}" if dropped
                                                                       else "") + ")")
    if mb > LIMIT_MB:
        print(f"gpu_kit: warning: {mb:.1f} MB is over {LIMIT_MB} MB", file=sys.stderr)
    return archive


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default="3.12", help="the node's Python version (default 3.12)")
    p.add_argument("--bring", default="", help=f"also carry these of {', '.join(sorted(NODE_HAS - {'torch'}))}")
    p.add_argument("--out", type=Path, default=ROOT / "dist", help="where the archive goes (default dist/)")
    p.add_argument("pip_args", nargs="*", help="passed to pip download after --, e.g. -- --no-index --find-links D")
    args = p.parse_args(argv)
    bring = {canonical(b) for b in args.bring.split(",") if b}
    if bring - (NODE_HAS - {"torch", "torchvision"}):
        p.error(f"--bring: only {', '.join(sorted(NODE_HAS - {'torch', 'torchvision'}))} (torch is the node's own)")
    build(args.out, args.python, bring, args.pip_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
