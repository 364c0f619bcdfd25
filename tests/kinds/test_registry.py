"""The registry and the metric tables: every kind declares what it measures, one name per quantity."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest
import yaml

from harness.kinds import registry
from harness.kinds.base import Kind, Metric
from harness.schema import Strict

ROOT = Path(__file__).resolve().parents[2]
BOOK_WORDS = {"parameters"}  # a column of the book's layer table (harness show) as well as a structure metric
ENGINE = ("cli", "execution", "judging", "machine", "reading", "reporting", "specs", "store")
UNIT_WORDS = {"s": {"s"}, "ex/s": {"per", "s"}, "GFLOP/s": {"gflops"}}


def declared() -> list[tuple[str, Metric]]:
    return [(kind.name, m) for kind in registry.KINDS.values() for m in kind.metrics]


def test_every_kind_declares_a_table_of_metrics():
    for kind in registry.KINDS.values():
        assert isinstance(kind, Kind) and kind.metrics, kind.name
        assert all(m.meaning and m.better in ("higher", "lower", "none") for m in kind.metrics), kind.name


@pytest.mark.parametrize(("kind", "metric"), [(k, m) for k, m in declared() if m.unit in UNIT_WORDS],
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_a_metric_with_a_unit_names_it(kind, metric):
    words = set(re.split(r"[._{}]", metric.name))
    assert UNIT_WORDS[metric.unit] <= words, f"{kind}: {metric.name} is in {metric.unit}: name its unit"


SYNONYMS = {"seconds": "s", "second": "s", "secs": "s", "sec": "s", "time": "s", "sizes": "size", "accuracy": "acc",
            "flops": "flop", "throughput": "per_s"}


def canonical(name: str) -> str:
    """A name as a quantity: placeholders alike, unit spellings and plurals alike, separators dropped."""
    words = re.split(r"[._]+", re.sub(r"\{[a-z_]+\}", "*", name.lower()))
    return "".join(SYNONYMS.get(w, w) for w in words)


def test_no_two_names_for_one_quantity():
    """Names that differ only in how they spell a unit, a plural or a separator are one quantity named twice."""
    names = sorted({m.name for _, m in declared()})
    clashes = [(a, b) for a, b in itertools.combinations(names, 2) if canonical(a) == canonical(b)]
    assert not clashes
    assert canonical("examples_per_sec") == canonical("examples_per_s")
    assert canonical("epoch_seconds") == canonical("epoch_s") != canonical("epoch_s_b1")


def test_run_returning_an_undeclared_metric_is_an_error():
    class S(Strict):
        pass

    kind = Kind("k", S, (Metric("a_s", "s", "lower", "a time"), Metric("b.{x}", "", "none", "a family")),
                lambda settings, rec: {"a_s": 1.0, "b.one": 2, "c": 3, "rounds": {"d": [1.0]}},
                lambda view: {}, lambda view: "")
    with pytest.raises(RuntimeError, match="kind k returned metrics its table does not declare: c, d"):
        kind.run(S(), None)


def _strings(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


def test_the_engine_names_no_spec_and_no_kind_metric():
    specs = {yaml.safe_load(p.read_text())["name"] for p in (ROOT / "experiments").rglob("*.yaml")}
    metrics = {m.name for _, m in declared() if not m.family and len(m.name) > 4} - BOOK_WORDS
    found = {}
    for floor in ENGINE:
        for path in (ROOT / "harness" / floor).rglob("*.py"):
            if path.name == "renames.py":  # the one table of former names, as stores written before hold them
                continue
            named = _strings(path) & (specs | metrics)
            if named:
                found[str(path.relative_to(ROOT))] = sorted(named)
    assert not found
