"""The harness's tag names and run roles are said once, in ``harness.store.tags``."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from harness.store import tags

PACKAGE = Path(tags.__file__).resolve().parents[1]


def test_no_module_but_the_tag_module_spells_a_tag():
    names = {v for k, v in vars(tags).items() if k.isupper() and isinstance(v, str) and v.startswith("harness.")}
    assert {"harness.role", "harness.kind", "harness.devices_ran", "harness.spec"} <= names
    spelled = {}
    for path in PACKAGE.rglob("*.py"):
        if path.resolve() == Path(tags.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                spelled.setdefault(node.value, []).append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert spelled == {}


def test_a_tag_reads_as_text_or_empty():
    row = pd.Series({"tags.harness.kind": "training", "tags.harness.refs": float("nan")})
    assert tags.value(row, tags.KIND) == "training"
    assert tags.value(row, tags.REFS) == "" and tags.value(row, tags.TITLE) == ""
    assert tags.column(tags.ROLE) == "tags.harness.role"
