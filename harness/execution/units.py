"""One (spec, device, seed) unit: seeded, run by its kind, recorded as a child run of the spec's run.

A unit is the thing an executor (``harness.execution.executors``) places: in this process, or as a Ray task on another
process or machine. It carries the spec itself (not its file), so it runs wherever the package is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.book.data import DataMissing
from harness.judging import family
from harness.judging.rounds import Plan
from harness.kinds import registry
from harness.machine import PEAK_MEMORY, env
from harness.machine import device as devices
from harness.machine.seeding import seed_everything
from harness.specs.spec import Spec
from harness.store import tags as tag
from harness.store import tracking
from harness.store.tracking import Recorder

UNIT_ENV = ("cpu.model", "gpu.model", "torch", "torch.threads", "platform", "python")


@dataclass(frozen=True)
class Unit:
    """One seed of a spec on one device, with the tags its child run gets."""

    spec: Spec
    device: str
    seed: int
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.spec.name} {self.device} seed {self.seed}"

    @property
    def key(self) -> tuple[str, int]:
        return self.device, self.seed

    @property
    def timed(self) -> bool:
        """Does the unit measure a timing claim? Then it should have its machine to itself."""
        return bool(plan_for(self.spec, self.device).refs)


def plan_for(spec: Spec, device: str) -> Plan:
    """The spec's timing references on ``device``, its timing policy, and the family they are judged in."""
    timed = set(registry.get(spec.kind).timings)
    size, two_sided = family.sizes(spec.references, device, timed)
    return Plan(device=device, refs=tuple(r for r in spec.references if r.metric in timed), policy=spec.timing,
                family=size, two_sided=two_sided, error=spec.family_error)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _log_scalars(values: dict[str, Any]) -> None:
    """A unit's scalar measurements become metrics ``measured.<name>`` too, so the UI can chart and compare them."""
    metrics = {tracking.safe_key(f"measured.{name}"): float(v) for name, v in values.items()
               if tracking.is_finite_number(v)}
    if metrics:
        tracking.log_metrics(metrics)


def where_it_ran(device: str) -> dict[str, str]:
    """The machine a unit ran on, as tags of its own run (a Ray unit may run far from its spec's run)."""
    fp = env.fingerprint() | {"torch.threads": str(torch.get_num_threads())}  # an executor may have set them
    return {"device.model": devices.get(device).model()} | {k: fp[k] for k in UNIT_ENV}


def run_unit(unit: Unit, run_id: str | None = None) -> dict[str, Any]:
    """Run ``unit`` in a child run of the active run, or in the existing run ``run_id`` (an executor made it).

    Params: ``seed``, ``device`` and the settings; metric ``device.peak_memory_mb`` on CUDA (the most torch's
    allocator held). When the task finds no data, the run ends FINISHED as a skipped unit and the ``DataMissing`` is
    raised after; any other error ends it FAILED and is raised. A fake device (tests) is refused before any run.
    """
    spec, kind, dev = unit.spec, registry.get(unit.spec.kind), devices.get(unit.device)
    devices.assert_real(unit.device)
    absent: DataMissing | None = None
    tags = unit.tags | where_it_ran(unit.device)
    with tracking.recorded_run(unit.name, tags=tags, nested=run_id is None, run_id=run_id) as run:
        tracking.log_params({"seed": unit.seed, "device": unit.device}
                            | tracking.flat_params(spec.settings.model_dump(mode="json"), "settings."))
        seed_everything(unit.seed, spec.deterministic, on=unit.device)
        tracking.set_tags({f"device.{k}": str(v).lower() for k, v in dev.switches().items()})
        dev.reset_peak_memory()
        try:
            values = kind.run(spec.settings, Recorder(run.info.run_id, unit.device, unit.seed,
                                                      plan_for(spec, unit.device)))
            if (peak := dev.peak_memory_bytes()) is not None:
                tracking.log_metrics({PEAK_MEMORY: peak / 2**20})
        except DataMissing as exc:  # nothing measured, nothing failed: the run ends FINISHED, marked skipped
            absent = exc
            tracking.set_tags({tag.ROLE: tag.SKIPPED_UNIT, tag.SKIP_REASON: str(exc)[:5000]})
        else:
            missing = sorted({r.metric for r in spec.references} - set(values))
            if missing:
                raise RuntimeError(f"{spec.kind} produced no value for {', '.join(missing)}")
            values = _jsonable(values)
            tracking.log_dict(values, "measured.json")
            _log_scalars(values)
    if absent is not None:
        raise absent
    return values
