"""The environment fingerprint recorded with every run: code, libraries, device, hardware."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from harness.machine.device import Device, cpu_model


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


NOT_CODE = ":(top,exclude)reports"  # the report a run writes is not the code it ran
BUILD = Path(__file__).resolve().parents[2] / "BUILD.json"  # a GPU-node kit's record of its code (it has no .git)


@cache
def head() -> str:
    """The commit checked out, or "" where there is no git (a kit's copy on a GPU node)."""
    return _git("rev-parse", "HEAD")


@cache
def built() -> dict[str, str]:
    """What a kit's builder recorded about the code it packed (``git.commit``, ``git.dirty``, ``code.id``), or {}."""
    try:
        return json.loads(BUILD.read_text())
    except (OSError, ValueError):
        return {}


def code_changes(*args: str) -> str:
    """``git <args>`` over the repository's tracked files, the generated report apart."""
    return _git(*args, "--", ":(top)", NOT_CODE)


def machine_slug() -> str:
    """The machine's kind as a folder name: its CPU (or GPU) model and core count, e.g. for benchmark storage."""
    model = gpu_model() if cuda_available() else cpu_model()
    words = "".join(c.lower() if c.isalnum() else "-" for c in model).split("-")
    return "-".join(w for w in words if w) + f"-{os.cpu_count()}cpu"


CUDA = Device("cuda")  # the real one: a test's stand-in (harness.machine.device.use) never reaches the fingerprint


def cuda_available() -> bool:
    return CUDA.available()


def gpu_model() -> str:
    return CUDA.model()


def device_model(device: str) -> str:
    return Device(device).model()


def mlflow_version() -> str:
    """MLflow's version: the full package here, its tracking client (mlflow-skinny) on a GPU node."""
    for name in ("mlflow", "mlflow-skinny"):
        try:
            return version(name)
        except PackageNotFoundError:
            pass
    return "none"


LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"


def lock_hash() -> str:
    """The first 12 hex digits of requirements.lock's SHA-256 (the pinned environment), or none without one."""
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12] if LOCK.is_file() else "none"


@cache
def fingerprint() -> dict[str, str]:
    """Everything that decides whether two runs are comparable, as MLflow tag values."""
    commit = head()
    dirty = str(bool(code_changes("status", "--porcelain", "--untracked-files=no"))).lower()
    if not commit:  # no git: a kit's copy says what it is
        commit, dirty = built().get("git.commit", "unknown"), built().get("git.dirty", "false")
    return {
        "git.commit": commit,
        "git.dirty": dirty,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch.cuda": torch.version.cuda or "none",
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none",
        "numpy": np.__version__,
        "scipy": version("scipy"),
        "pandas": version("pandas"),
        "lock": lock_hash(),
        "mlflow": mlflow_version(),
        "platform": platform.platform(),
        "cpu.model": cpu_model(),
        "cpu.count": str(os.cpu_count()),
        "torch.threads": str(torch.get_num_threads()),
        "gpu.model": gpu_model(),
        "gpu.count": str(torch.cuda.device_count() if cuda_available() else 0),
        "gpu.memory_gb": f"{CUDA.total_memory_bytes() / 2**30:.0f}" if cuda_available() else "none",
        "executable": sys.executable,
    }


@cache
def code_id() -> str:
    """The code a run ran: the commit, plus a hash of the uncommitted changes to tracked files when there are any."""
    fp = fingerprint()
    if not head() and built():
        return built()["code.id"]
    if fp["git.dirty"] != "true":
        return fp["git.commit"]
    return fp["git.commit"] + "+" + hashlib.sha256(code_changes("diff", "HEAD").encode()).hexdigest()[:12]


def env_hash() -> str:
    """A hash of the libraries, device and hardware in the fingerprint (the code is ``code_id``'s part)."""
    fp = {k: v for k, v in fingerprint().items() if not k.startswith("git.") and k != "executable"}
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]
