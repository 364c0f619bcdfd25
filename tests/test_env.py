"""The environment fingerprint and the machine's name for benchmark storage."""

from __future__ import annotations

import os
import re

from harness import env


def test_machine_slug_is_a_folder_name_with_the_core_count():
    slug = env.machine_slug()
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) and slug.endswith(f"-{os.cpu_count()}cpu")


def test_fingerprint_names_what_makes_runs_comparable():
    fp = env.fingerprint()
    for key in ("git.commit", "torch", "cpu.model", "torch.threads", "gpu.model"):
        assert fp[key], key
