"""The environment fingerprint and the machine's name for benchmark storage."""

from __future__ import annotations

import os
import re

import pytest

from harness.machine import env


def test_machine_slug_is_a_folder_name_with_the_core_count():
    slug = env.machine_slug()
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) and slug.endswith(f"-{os.cpu_count()}cpu")


def test_fingerprint_names_what_makes_runs_comparable():
    fp = env.fingerprint()
    for key in ("git.commit", "torch", "cpu.model", "torch.threads", "gpu.model"):
        assert fp[key], key


def test_the_report_a_run_writes_does_not_make_the_code_dirty():
    """A reproduce rewrites reports/: the next run still ran the same code (same git.dirty, same code.id)."""
    from pathlib import Path

    report = Path(env.__file__).resolve().parents[2] / "reports" / "REPORT.md"
    if not report.is_file() or not env._git("rev-parse", "HEAD"):
        pytest.skip("not a git checkout with a report")
    before = (env.fingerprint()["git.dirty"], env.code_changes("diff", "HEAD"))
    text = report.read_text()
    try:
        report.write_text(text + "\na line a run wrote\n")
        assert env._git("diff", "HEAD", "--", str(report))  # git sees the change ...
        assert (env.fingerprint()["git.dirty"], env.code_changes("diff", "HEAD")) == before  # ... the code does not
    finally:
        report.write_text(text)


def test_on_a_gpu_the_fingerprint_names_it_and_its_memory(monkeypatch):
    import torch

    class Props:
        total_memory = 141 * 2**30

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d=None: Props())
    fp = env.fingerprint.__wrapped__()  # not the cached one: this machine's stays as it is
    assert (fp["gpu.model"], fp["gpu.count"], fp["gpu.memory_gb"]) == ("NVIDIA H200", "1", "141")
    assert env.machine_slug().startswith("nvidia-h200-")
