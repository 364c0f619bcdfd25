"""Experiment specs: YAML files loaded safely into strict pydantic models.

A spec names its kind of experiment (``harness.kinds.registry``), its seeds, devices, settings (validated by that
kind's own model), the results it compares with (each citing an entry of ``references/``) and, optionally, the
headline figures the report's History follows. Any problem is a ``SpecError`` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, ValidationError, field_validator

from harness.kinds import registry
from harness.schema import (
    FAMILY_ERROR,
    TIMING_COMPARISONS,
    Device,
    Reference,
    SpecError,
    Strict,
    TimingPolicy,
    distinct,
    natural_order,
    quoted,
    read_yaml,
    validation_error,
)
from harness.specs import references

__all__ = ["Spec", "SpecError", "load_spec", "load_specs", "parse_spec", "spec_paths"]


class Spec(Strict):
    """One tutorial result: what to run, on which seeds and devices, and what to compare with."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    kind: str
    section: str | None = Field(None, pattern=r"^5\.([1-9]|1[0-2])$", description="the chapter's section it "
                                "reproduces, 5.1 to 5.12 (as the port numbers them; quote it: \"5.10\"); none for the "
                                "harness's own checks")
    smoke: bool = Field(False, description="a smoke test: the code runs and learns, not the book's result")
    description: str = ""
    seeds: list[int] = Field(min_length=1)
    devices: Annotated[list[Device], AfterValidator(distinct)] = Field(default=["cpu"], min_length=1)
    deterministic: bool = True
    threads: int | None = Field(None, ge=1, le=1024, description="torch's CPU threads for every unit of this spec, "
                                "where its curves are meant to match that count; default: the executor's (one in a "
                                "suite's pool, all cores for a timing spec)")
    settings: Any = None
    timing: TimingPolicy = Field(default_factory=TimingPolicy)
    family_error: float = Field(FAMILY_ERROR, gt=0, lt=0.5, description="the chance that the spec is called not "
                                "reproduced on a device while every claim holds there (Holm over its claims judged at "
                                "a level)")
    references: list[Reference] = Field(min_length=1)
    headlines: list[str] | None = Field(None, description="metrics the History follows (default: the kind's)")
    _cited: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)  # the cited entries, set by parse_spec

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if any(s < 0 or s >= 2**32 for s in seeds):
            raise ValueError("seeds must lie in [0, 2**32)")
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must not repeat")
        return seeds

    def resolved(self) -> dict[str, Any]:
        """The spec as plain JSON-able data, settings defaults filled in."""
        return self.model_dump(mode="json")

    @property
    def hash(self) -> str:
        """sha256 of the resolved spec: the identity of what was run."""
        blob = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def ref_ids(self) -> list[str]:
        return sorted({r.source for r in self.references}, key=natural_order)

    @property
    def cited(self) -> dict[str, dict[str, Any]]:
        """The references entries this spec cites, by id, as plain data (recorded with every run)."""
        return self._cited


def parse_spec(data: Any, path: Path) -> Spec:
    """Validate already-loaded YAML data; settings by the kind's own model, sources by the references registry."""
    if data is None:
        raise SpecError(f"{path}: (top level): the file holds no spec, only comments or an empty document")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: (top level): a spec must be a mapping, got {type(data).__name__}")
    try:
        spec = Spec.model_validate(data)
    except ValidationError as err:
        raise validation_error(path, err, data=data) from None
    try:
        task = registry.get(spec.kind)
    except KeyError as err:
        raise SpecError(f"{path}: kind: {err.args[0]}") from None
    try:
        settings = task.settings.model_validate(spec.settings if spec.settings is not None else {})
    except ValidationError as err:
        raise validation_error(path, err, ("settings",), data=spec.settings) from None
    timings = task.timings
    for i, ref in enumerate(spec.references):
        if task.metric(ref.metric) is None:
            raise SpecError(
                f"{path}: references[{i}].metric: unknown metric {ref.metric!r} for kind {spec.kind!r}"
                f" (known: {', '.join(sorted(task.names))})"
            )
        if ref.metric in timings and (ref.comparison not in TIMING_COMPARISONS or isinstance(ref.near, list)):
            raise SpecError(
                f"{path}: references[{i}].{ref.comparison}: {ref.metric!r} is a timing, judged on its interval:"
                " use at_least, at_most, band or a scalar near"
            )
        if ref.metric in timings and ref.over != "all":
            raise SpecError(f"{path}: references[{i}].over: {ref.metric!r} is a timing, judged on the interval of "
                            "its rounds: leave over out")
    for i, name in enumerate(spec.headlines or []):
        if task.metric(name) is None:
            raise SpecError(f"{path}: headlines[{i}]: unknown metric {name!r} for kind {spec.kind!r}")
    known = references.for_spec(path)
    for i, ref in enumerate(spec.references):
        if ref.source not in known:
            listed = ", ".join(sorted(known, key=natural_order)[:12]) + (", ..." if len(known) > 12 else "")
            where = ", ".join(str(d) for d in references.directories(path)) or "no references/ folder found"
            raise SpecError(f"{path}: references[{i}].source: unknown reference id {ref.source!r} (known: "
                            f"{listed or 'none'}; read from {where})")
        entry, entry_path = known[ref.source]
        if ref.basis == "printed" and not quoted(ref.quote, entry.printed):
            raise SpecError(f"{path}: references[{i}].quote: {ref.quote.strip()[:60]!r} is not in what "
                            f"{ref.source} printed ({entry_path}): quote the entry's printed text word for word")
    out = spec.model_copy(update={"settings": settings})
    out._cited = {r.source: known[r.source][0].model_dump(mode="json") for r in spec.references}
    return out


def load_spec(path: str | Path) -> Spec:
    """Read one spec file (UTF-8) with the strict safe loader and validate it."""
    path = Path(path)
    return parse_spec(read_yaml(path), path)


def spec_paths(args: list[str]) -> list[Path]:
    """Expand files and directories into the spec files they name, in a stable order."""
    out: list[Path] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            out.extend(sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")))
        else:
            out.append(p)
    return out


def load_specs(args: list[str]) -> list[Spec]:
    """Load every spec before anything runs, so one bad file stops the batch early."""
    specs = [load_spec(p) for p in spec_paths(args)]
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"{spec_paths(args)[names.index(dup[0])]}: name: {dup[0]!r} is used by more than one spec")
    return specs
