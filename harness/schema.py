"""The spec's building blocks, below everything that uses them: strict models, references, the strict YAML reader.

``harness.specs.spec`` (the whole spec) and ``harness.specs.references`` (the registry of tutorial results) are built
from these, and so are the kinds in ``harness.kinds`` (their ``Settings`` subclass ``Strict``). This module imports
neither.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Device = Literal["cpu", "cuda"]
REF_ID = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"


class SpecError(ValueError):
    """A spec file that cannot be used; the message is one line: ``file: field: problem``."""


class Strict(BaseModel):
    """Base for every spec model: unknown keys and type coercions are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


FAMILY_ERROR = 0.05  # a spec's family-wise error, and the suite's false discovery rate, unless a spec says otherwise
BASES = ("printed", "derived", "chosen before measuring", "chosen after measuring", "self-check")
COMPARISONS = ("equals", "near", "at_most", "at_least", "band", "draw")


class Reference(Strict):
    """A value to compare one measured metric with, how, and where the value comes from.

    Exactly one comparison: ``equals`` (exact), ``near`` (within atol/rtol), ``at_most``, ``at_least``,
    ``band`` ([lo, hi] widened by ``tol``) or ``draw`` (one printed run of a random experiment: judged inside or
    outside the prediction interval of the seeds, where one more seed would fall). Over several seeds, ``over``
    says whether every seed must hold (``all``), their mean (``mean``), or the t interval of their mean
    (``interval``: reproduced, not reproduced or inconclusive, like a timing). ``gate: false`` marks a reference
    that is judged and recorded but does not decide the exit status; ``gate: [cuda]`` gates on the listed
    devices only. On a timing metric (one the kind measures in rounds) the comparison is judged on the metric's
    interval over rounds. ``useful`` is the largest departure from the claim that still counts as reproducing: a
    random check whose detectable shift exceeds it is marked weak.

    ``basis`` says where the value comes from: ``printed`` by the cited source (``quote`` holds its words, found
    verbatim in the entry's ``printed``), ``derived`` from what it printed (``working`` shows how), ``chosen
    before measuring`` or ``chosen after measuring`` by this project, or a ``self-check`` of the harness's own
    arithmetic (``working`` says why it cannot tell anything about the source).
    """

    metric: str = Field(min_length=1)
    source: str = Field(pattern=REF_ID, description="the id of an entry in references/*.yaml")
    basis: Literal[BASES] = Field(description="printed, derived, chosen before measuring, chosen after measuring "
                                  "or self-check")
    quote: str = Field("", description="printed: the source's words, as its entry's printed text has them")
    working: str = Field("", description="derived or self-check: how the value follows")
    note: str = ""
    equals: Any = None
    near: Any = None
    at_most: float | None = None
    at_least: float | None = None
    band: list[float] | None = Field(default=None, min_length=2, max_length=2)
    draw: float | list[float] | None = Field(None, description="one printed run's value, or its curve: a value per "
                                             "epoch, each judged against the seeds' values of that epoch")
    atol: float = Field(default=0.0, ge=0)
    rtol: float = Field(default=0.0, ge=0)
    tol: float = Field(default=0.0, ge=0)
    over: Literal["all", "mean", "interval"] = "all"
    gate: bool | list[Device] = True
    useful: float | None = Field(None, ge=0, description="the largest departure from the claim that still counts as "
                                 "reproducing: a check that cannot catch it (detectable shift above it) is weak")

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
        given = [k for k in COMPARISONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(COMPARISONS)}"
                             + (f" (got {', '.join(given)})" if given else ""))
        for key in ("equals", "near"):
            value = getattr(self, key)
            if value is not None and not _is_numeric_array(value):
                raise ValueError(f"{key} must be a number or a nested list of numbers")
        if self.band is not None and not self.band[0] <= self.band[1]:
            raise ValueError("band must be [low, high] with low <= high")
        for key in ("at_most", "at_least", "draw"):
            value = getattr(self, key)
            if value is not None and not all(map(math.isfinite, value if isinstance(value, list) else [value])):
                raise ValueError(f"{key} must be finite")
        if isinstance(self.draw, list) and not self.draw:
            raise ValueError("draw must be a number or a non-empty list of numbers (a value per epoch)")
        if self.over == "interval" and given[0] in ("equals", "draw") or self.over == "interval" and (
                isinstance(self.near, list)):
            raise ValueError("over: interval judges the mean of one number per seed: use near (a number), at_least, "
                             "at_most or band")
        return self

    @model_validator(mode="after")
    def _provenance(self) -> Reference:
        if self.basis == "printed" and not self.quote.strip():
            raise ValueError("basis printed needs quote: the source's words for this value, as its entry prints them")
        if self.basis in ("derived", "self-check") and not self.working.strip():
            raise ValueError(f"basis {self.basis} needs working: how the value follows")
        return self

    @property
    def comparison(self) -> str:
        return next(k for k in COMPARISONS if getattr(self, k) is not None)


def quoted(quote: str, printed: str) -> bool:
    """Does the entry's printed text hold the quote, whitespace aside?"""
    squash = " ".join
    return squash(quote.split()) in squash(printed.split())


class TimingPolicy(Strict):
    """How timing metrics are measured and judged: rounds first, then more while a gating claim is undecided."""

    rounds: int = Field(default=10, ge=3, le=1000, description="rounds measured before the first look (an interval "
                        "needs 8 at 95%: harness.judging.stats.min_rounds)")
    max_rounds: int = Field(default=60, ge=3, le=10_000, description="never more rounds than this")
    budget_s: float = Field(default=120.0, ge=0, le=86_400,
                            description="wall seconds that extra rounds may take, per (device, seed)")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="level of every interval and verdict")

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


def _loc(loc: tuple[Any, ...], data: Any = None) -> str:
    """An error's place as the spec writes it: ``settings.model.layers[3]``, a tagged entry with its tag
    (``layers[0] (conv)``). With the spec's data, pydantic's own steps (validators, union branches) are left out."""
    out, here = "", data
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            here = here[part] if isinstance(here, list) and -len(here) <= part < len(here) else None
        elif isinstance(here, dict) and part in here:
            out += ("." if out else "") + str(part)
            here = here[part]
        elif isinstance(here, dict) and here.get("type") == part:
            out += f" ({part})"
        elif data is None or (isinstance(here, dict) and i == len(loc) - 1):
            out += ("." if out else "") + str(part)
            here = None
    return out or "(top level)"


def _first(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error to show: an unknown name before what it leaves missing (a typo is one error, not two)."""
    rank = {"union_tag_invalid": 0, "extra_forbidden": 1}
    return min(errors, key=lambda e: rank.get(e["type"], 2))


def _message(first: dict[str, Any], errors: list[dict[str, Any]]) -> tuple[str, tuple[Any, ...]]:
    """The one-line message for ``first`` and the place it names (an unknown field names its entry)."""
    loc, msg = tuple(first["loc"]), first["msg"].removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid":
        tag, expected = first["ctx"]["tag"], [t.strip(" '") for t in first["ctx"]["expected_tags"].split(",")]
        close = difflib.get_close_matches(tag, expected, n=1)
        what = "layer type" if any(str(p) in ("layers", "shortcut") for p in loc) else "type"
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(expected)})"
        return f"unknown {what} {tag!r}{hint}", loc
    if first["type"] == "extra_forbidden":
        missing = [e["loc"][-1] for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == loc[:-1]]
        close = difflib.get_close_matches(str(loc[-1]), [str(m) for m in missing], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown field {loc[-1]!r}{hint}", loc[:-1]
    if first["type"] == "missing":
        return f"missing field {loc[-1]!r}", loc[:-1]
    return msg, loc


def first_line(err: BaseException, default: str = "") -> str:
    """An error's first line (messages from libraries run to many), ``default`` when it has none."""
    return (str(err).strip().splitlines() or [default])[0]




def distinct(values: list[Any]) -> list[Any]:
    """A list field's validator (``Annotated[list[int], AfterValidator(distinct)]``): every item once."""
    if len(set(values)) != len(values):
        raise ValueError("must not repeat")
    return values


def validation_error(path: Path, err: ValidationError, prefix: tuple[Any, ...] = (), data: Any = None) -> SpecError:
    """One line for a pydantic error: the file, the field as the spec writes it, what is wrong, how many more.

    ``data`` (the validated input, at ``prefix``) lets the place skip pydantic's own steps and name a layer's type.
    """
    errors = err.errors()
    first = _first(errors)
    msg, loc = _message(first, errors)
    got = first.get("input")
    if first["type"] != "missing" and isinstance(got, (str, int, float, bool)) and msg.startswith("Input should"):
        msg += f" (got {str(got)[:40]!r})" if isinstance(got, str) else f" (got {got!r})"
    where = _loc(prefix + tuple(p for p in loc if not str(p).startswith("function-after[")),
                 _nest(prefix, data) if data is not None else None)
    more = len(errors) - 1 - (first["type"] == "extra_forbidden" and "did you mean" in msg)
    extra = f" (+{more} more)" if more > 0 else ""
    return SpecError(f"{path}: {where}: {msg}{extra}")


def _nest(prefix: tuple[Any, ...], data: Any) -> Any:
    """``data`` placed at ``prefix`` in an otherwise empty document, so the place is walked from the top."""
    for part in reversed(prefix):
        data = {part: data} if isinstance(part, str) else [None] * part + [data]
    return data


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


def natural_order(ref_id: str) -> tuple:
    """Sort key for reference ids: A1, A2, ..., A10."""
    head = ref_id.rstrip("0123456789")
    return (head, int(ref_id[len(head):] or 0), ref_id)


def read_yaml(path: Path) -> Any:
    """A YAML file (UTF-8) read with the strict safe loader; any problem is a one-line ``SpecError``."""
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
        return yaml.load(text, Loader=SpecLoader)  # noqa: S506 - SpecLoader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{path}: {where}: invalid YAML: {problem}") from None
