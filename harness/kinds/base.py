"""What a kind of experiment is: its settings, its measurement, its metric table and its report section.

The engine (the runner, ``harness compare``, the history, the report) knows a kind only through this: it names no
kind and no metric of its own.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from harness.schema import Strict

if TYPE_CHECKING:
    import pandas as pd

    from harness.reading.view import RunView
    from harness.store.tracking import Recorder

Better = Literal["higher", "lower", "none"]
ROUNDS_KEYS = ("rounds", "rounds_info")  # what ``Rounds.measured`` adds beside the metrics: the rule's record
UNITS = ("s", "x", "ex/s", "GFLOP/s", "GFLOP", "FLOP", "fraction", "MB", "")  # "": a count, a name, a shape


@dataclass(frozen=True)
class Metric:
    """One quantity a kind measures, as MLflow, its tables and the report name it.

    ``name`` is a metric, or a family with ``{placeholders}`` (``update_s.b{batch}``: one metric per batch size).
    ``timed``: measured in rounds and judged on their interval. ``derived_from``: computed from another metric's
    values (``harness compare`` judges that one instead). ``headline``: a figure the report's History follows when
    a spec names none. A former name is read as today's in ``harness.reading.renames``, nowhere here.
    """

    name: str
    unit: str
    better: Better
    meaning: str
    timed: bool = False
    derived_from: str = ""
    headline: bool = False

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"metric {self.name}: unit {self.unit!r} is not one of {UNITS}")
        if self.better not in ("higher", "lower", "none"):
            raise ValueError(f"metric {self.name}: better must be higher, lower or none")

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The names this entry covers: itself, or its family (a placeholder stands for one dotted part)."""
        parts = re.split(r"\{[a-z_]+\}", self.name)
        return re.compile("[^.]+".join(re.escape(p) for p in parts) + r"\Z")

    @property
    def family(self) -> bool:
        return "{" in self.name

    def covers(self, name: str) -> bool:
        return bool(self.pattern.match(name))

    @property
    def text_unit(self) -> str:
        """The unit as an interval's text prints it: ``x`` and ``%`` glued to the number, others after a space."""
        return {"x": "x", "fraction": "%", "": ""}.get(self.unit, f" {self.unit}")

    @property
    def sign(self) -> int:
        """+1 where higher is better, -1 where lower is, 0 where a change is neither."""
        return {"higher": 1, "lower": -1, "none": 0}[self.better]

    @property
    def speed(self) -> bool:
        """A speed (a time, a rate or a ratio of either): its changes read *faster* and *slower*."""
        return self.timed or self.unit in ("s", "ex/s", "GFLOP/s")


def lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported when first called: a kind's measurement code (torch and all) loads only when a unit
    runs, so listing and validating specs, and reading runs, stay cheap."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = f"{module}.{name}"
    return call


def parts(package: str, *extra: str) -> dict[str, Callable[..., Any]]:
    """A kind's code, each piece imported when first called: ``measure`` (its ``measure.run``), ``tables``,
    ``section`` and the ``extra`` functions of its ``section`` module (``derive``, ``speedups``)."""
    return {"measure": lazy(f"{package}.measure", "run"),
            **{name: lazy(f"{package}.section", name) for name in ("tables", "section", *extra)}}


def timings_of(metrics: Iterable[Metric]) -> dict[str, str]:
    """The timed metrics of a table (plain names), with the unit their intervals print with."""
    return {m.name: m.text_unit for m in metrics if m.timed and not m.family}


def _no_derived(view: RunView, samples: pd.DataFrame) -> pd.DataFrame:
    return samples


def _no_speedups(view: RunView) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Located:
    """Where a printed number sits among a run's measurements (``Kind.locate``): the metric (``test_acc``,
    ``test_acc_per_epoch[3]``), each seed's value of it, whether it is for information only (a throughput: machines
    differ), or why it is not compared at all (``why``, with no values)."""

    metric: str
    values: tuple[float, ...] = ()
    info: bool = False
    why: str = ""


def _nowhere(view: RunView, device: str, label: str, at: int | None, form: str) -> Located | None:
    return None


@dataclass(frozen=True)
class Kind:
    """A kind of experiment: what a spec's ``settings`` hold, how one (device, seed) is measured, what it measures
    (its metric table), and how a recorded run reads back as tables and as its report section.

    ``measure(settings, rec)`` returns the measured values by metric name (a timing's per-round values under
    ``rounds``); ``tables(view)`` gives a recorded run's tables (numbers, snake_case columns with their units);
    ``section(view)`` its markdown. ``curves`` are the metric histories two runs of one seed must repeat bit for bit;
    ``derive(view, samples)`` may add samples computed from recorded ones (old stores included).
    ``speedups(view)`` names the metrics of a recorded run that are speed-ups against a baseline, each with what it
    divides by what: the report's first screen shows those its spec names among its headlines.
    ``locate(view, device, label, at, format)`` says where a number a book's line printed (``harness check``)
    sits among a recorded run's measurements, or None where the kind measures no such thing.
    """

    name: str
    settings: type[Strict]
    metrics: tuple[Metric, ...]
    measure: Callable[[Any, Recorder], dict[str, Any]]
    tables: Callable[[RunView], dict[str, pd.DataFrame]]
    section: Callable[[RunView], str]
    curves: tuple[str, ...] = ()
    derive: Callable[[RunView, pd.DataFrame], pd.DataFrame] = field(default=_no_derived)
    speedups: Callable[[RunView], dict[str, str]] = field(default=_no_speedups)
    locate: Callable[[RunView, str, str, int | None, str], Located | None] = field(default=_nowhere)

    def __post_init__(self) -> None:
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"kind {self.name}: a metric is declared twice")

    def metric(self, name: str) -> Metric | None:
        """The entry that covers ``name``: a plain name first, then a family."""
        exact = {m.name: m for m in self.metrics}
        if name in exact:
            return exact[name]
        return next((m for m in self.metrics if m.family and m.covers(name)), None)

    @property
    def names(self) -> list[str]:
        """The plain (not family) names: what a spec's references and headlines may use."""
        return [m.name for m in self.metrics if not m.family]

    @property
    def timings(self) -> dict[str, str]:
        """The timed metrics a reference may judge, with the unit their intervals print with."""
        return timings_of(self.metrics)

    @property
    def headlines(self) -> list[str]:
        return [m.name for m in self.metrics if m.headline]

    def undeclared(self, names: Iterable[str]) -> list[str]:
        """The names the metric table does not cover (the timing rule's own ``rounds`` and ``rounds_info`` aside)."""
        return sorted(n for n in names if n not in ROUNDS_KEYS and self.metric(n) is None)

    def run(self, settings: Any, rec: Recorder) -> dict[str, Any]:
        """``measure``, then a check that every value it returned, and every timing's rounds, is declared."""
        values = self.measure(settings, rec)
        extra = self.undeclared([*values, *values.get("rounds", {})])
        if extra:
            raise RuntimeError(f"kind {self.name} returned metrics its table does not declare: {', '.join(extra)}")
        return values

