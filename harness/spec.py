"""Experiment specs: YAML files loaded safely into strict pydantic models.

A spec names its kind of experiment (a module in ``harness.tasks``), its seeds,
devices, settings (validated by that kind's own ``Settings`` model) and the
tutorial references to compare with. Any problem becomes a ``SpecError`` whose
one-line message names the file and the field path.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PAGES = ("000", "001", "002", "003", "004")
Device = Literal["cpu", "cuda"]


class SpecError(ValueError):
    """A spec file that cannot be used; the message is one line: ``file: field: problem``."""


class Strict(BaseModel):
    """Base for every spec model: unknown keys and type coercions are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Source(Strict):
    """Where a reference value was printed: the seed page and its REFERENCES.md id."""

    page: Literal[PAGES]  # type: ignore[valid-type]
    ref: str = Field(pattern=r"^[A-E][0-9]{1,2}$")


class Reference(Strict):
    """A tutorial value to compare one measured metric with, and how.

    Exactly one comparison: ``equals`` (exact), ``near`` (within atol/rtol),
    ``at_most``, ``at_least`` or ``band`` ([lo, hi] widened by ``tol``).
    Over several seeds, ``over`` says whether every seed must hold (``all``)
    or their mean (``mean``). ``gate: false`` marks a reference that is judged and
    recorded but does not decide the exit status: a single printed draw of a random
    initialisation, shown beside the claims it illustrates. ``gate: [cuda]`` gates on
    the listed devices only (a claim a 2-core CPU cannot decide, say).
    On a timing metric (one the kind measures in rounds) the comparison is judged on the
    metric's confidence interval: reproduced, not reproduced or inconclusive.
    """

    metric: str = Field(min_length=1)
    source: Source
    note: str = ""
    equals: Any = None
    near: Any = None
    at_most: float | None = None
    at_least: float | None = None
    band: list[float] | None = Field(default=None, min_length=2, max_length=2)
    atol: float = Field(default=0.0, ge=0)
    rtol: float = Field(default=0.0, ge=0)
    tol: float = Field(default=0.0, ge=0)
    over: Literal["all", "mean"] = "all"
    gate: bool | list[Device] = True

    @field_validator("gate", mode="before")
    @classmethod
    def _gate(cls, gate: Any) -> Any:
        devices = Device.__args__
        ok = isinstance(gate, bool) or (isinstance(gate, list) and gate and all(d in devices for d in gate)
                                        and len(set(gate)) == len(gate))
        if not ok:
            raise ValueError(f"gate must be true, false or a list of distinct devices from {', '.join(devices)} "
                             f"(got {gate!r:.40})")
        return gate

    def gates_on(self, device: str) -> bool:
        """Does this reference decide the exit status on ``device``? (``gate: [cuda]`` gates on CUDA only.)"""
        return self.gate if isinstance(self.gate, bool) else device in self.gate

    @model_validator(mode="after")
    def _one_comparison(self) -> Reference:
        given = [k for k in ("equals", "near", "at_most", "at_least", "band") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of equals, near, at_most, at_least, band"
                + (f" (got {', '.join(given)})" if given else "")
            )
        for key in ("equals", "near"):
            value = getattr(self, key)
            if value is not None and not _is_numeric_array(value):
                raise ValueError(f"{key} must be a number or a nested list of numbers")
        if self.band is not None and not self.band[0] <= self.band[1]:
            raise ValueError("band must be [low, high] with low <= high")
        for key in ("at_most", "at_least"):
            value = getattr(self, key)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{key} must be finite")
        return self

    @property
    def comparison(self) -> str:
        return next(k for k in ("equals", "near", "at_most", "at_least", "band") if getattr(self, k) is not None)


class TimingPolicy(Strict):
    """How timing metrics are measured and judged: rounds first, then more while a gating claim is undecided."""

    rounds: int = Field(default=6, ge=3, le=1000, description="rounds measured before the first look")
    max_rounds: int = Field(default=60, ge=3, le=10_000, description="never more rounds than this")
    budget_s: float = Field(default=120.0, ge=0, le=86_400,
                            description="wall seconds that extra rounds may take, per (device, seed)")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="level of the bootstrap interval")

    @model_validator(mode="after")
    def _order(self) -> TimingPolicy:
        if self.max_rounds < self.rounds:
            raise ValueError(f"max_rounds ({self.max_rounds}) must not be below rounds ({self.rounds})")
        return self


TIMING_COMPARISONS = ("near", "at_most", "at_least", "band")


def _is_numeric_array(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if isinstance(value, list) and value:
        return all(_is_numeric_array(v) for v in value)
    return False


class Spec(Strict):
    """One tutorial result: what to run, on which seeds and devices, and what to compare with."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    kind: str
    description: str = ""
    seeds: list[int] = Field(min_length=1)
    devices: list[Device] = Field(default=["cpu"], min_length=1)
    deterministic: bool = True
    settings: Any = None
    timing: TimingPolicy = Field(default_factory=TimingPolicy)
    references: list[Reference] = Field(min_length=1)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if any(s < 0 or s >= 2**32 for s in seeds):
            raise ValueError("seeds must lie in [0, 2**32)")
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must not repeat")
        return seeds

    @field_validator("devices")
    @classmethod
    def _devices(cls, devices: list[str]) -> list[str]:
        if len(set(devices)) != len(devices):
            raise ValueError("devices must not repeat")
        return devices

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
        return sorted({r.source.ref for r in self.references}, key=lambda r: (r[0], int(r[1:])))


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _first_error(path: Path, err: ValidationError, prefix: tuple[Any, ...] = ()) -> SpecError:
    first = err.errors()[0]
    loc = prefix + tuple(p for p in first["loc"] if p not in ("function-after[_one_comparison()]",))
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    if first["type"] != "missing" and isinstance(got, (str, int, float, bool)) and msg.startswith("Input should"):
        msg += f" (got {str(got)[:40]!r})" if isinstance(got, str) else f" (got {got!r})"
    more = len(err.errors()) - 1
    extra = f" (+{more} more)" if more else ""
    return SpecError(f"{path}: {_loc(loc)}: {msg}{extra}")


def parse_spec(data: Any, path: Path) -> Spec:
    """Validate already-loaded YAML data; settings by the kind's own model."""
    from harness.tasks import TASKS  # tasks import spec; import here to avoid a cycle

    if data is None:
        raise SpecError(f"{path}: (top level): the file holds no spec, only comments or an empty document")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: (top level): a spec must be a mapping, got {type(data).__name__}")
    try:
        spec = Spec.model_validate(data)
    except ValidationError as err:
        raise _first_error(path, err) from None
    task = TASKS.get(spec.kind)
    if task is None:
        raise SpecError(f"{path}: kind: unknown kind {spec.kind!r} (known: {', '.join(sorted(TASKS))})")
    try:
        settings = task.Settings.model_validate(spec.settings if spec.settings is not None else {})
    except ValidationError as err:
        raise _first_error(path, err, ("settings",)) from None
    timings = getattr(task, "TIMINGS", {})
    for i, ref in enumerate(spec.references):
        if ref.metric not in task.METRICS:
            raise SpecError(
                f"{path}: references[{i}].metric: unknown metric {ref.metric!r} for kind {spec.kind!r}"
                f" (known: {', '.join(sorted(task.METRICS))})"
            )
        if ref.metric in timings and (ref.comparison not in TIMING_COMPARISONS or isinstance(ref.near, list)):
            raise SpecError(
                f"{path}: references[{i}].{ref.comparison}: {ref.metric!r} is a timing, judged on its interval:"
                " use at_least, at_most, band or a scalar near"
            )
    return spec.model_copy(update={"settings": settings})


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stricter: a key given twice in one mapping, or an alias (``*name``), is an error.

    Aliases are refused because a spec never needs them, and nested ones expand exponentially (an alias bomb).
    """

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in a spec",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _unique_keys(loader: SpecLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


SpecLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)


def load_spec(path: str | Path) -> Spec:
    """Read one spec file (UTF-8) with the strict safe loader and validate it."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise SpecError(f"{path}: (file): cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: (file): not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
                        f"{err.start})") from None
    if not text.strip():
        raise SpecError(f"{path}: (file): the file is empty")
    try:
        data = yaml.load(text, Loader=SpecLoader)  # noqa: S506 - SpecLoader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{path}: {where}: invalid YAML: {problem}") from None
    return parse_spec(data, path)


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
