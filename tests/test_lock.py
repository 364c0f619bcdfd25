"""requirements.lock: every dependency pyproject.toml names, pinned with hashes, at a version its bounds allow."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from harness.machine import env

tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = {"torch", "torchvision"}  # pinned by noxfile.py to this machine's builds, not locked


def pinned(text: str) -> dict[str, tuple[Version, int]]:
    """Each locked package: its version and how many hashes it carries."""
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        found = re.match(r"([A-Za-z0-9_.\-]+)==([^\s\\;]+)", block)
        if found:
            name = canonicalize_name(found.group(1))
            assert name not in out, f"{name} is pinned twice"
            out[name] = (Version(found.group(2)), block.count("--hash=sha256:"))
    return out


def wanted() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def test_the_lock_pins_every_dependency_within_its_bounds_with_hashes():
    lock = pinned((ROOT / "requirements.lock").read_text())
    assert lock and all(hashes > 0 for _, hashes in lock.values())
    for req in wanted():
        name = canonicalize_name(req.name)
        if name in OUTSIDE:
            assert name not in lock
            continue
        assert name in lock, f"{req} is in pyproject.toml but not in requirements.lock: run nox -s lock"
        assert req.specifier.contains(lock[name][0], prereleases=True), (
            f"requirements.lock pins {name}=={lock[name][0]}, outside pyproject's {req}: run nox -s lock")


def test_the_fingerprint_names_the_lock():
    assert env.lock_hash() == hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()[:12]
    assert env.fingerprint()["lock"] == env.lock_hash()
