"""Run validated specs: seed, run each (device, seed), judge the references, record it all in MLflow.

A task whose dataset is not found (``harness.book.data.DataMissing``) is not a failure: that device's references are
judged *skipped* with the loader's one-line message, and the unit's run ends FINISHED, tagged
``harness.skipped=<message>`` with role ``skipped`` (not ``unit``: ``--resume`` and the report read unit runs as
holding measurements, and this one holds none).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.execution.executors import Local, Outcome, Ray
from harness.execution.units import Unit, where_it_ran
from harness.judging import family
from harness.judging.verdict import (
    INCONCLUSIVE,
    STATUSES,
    Verdict,
    judge,
    judge_draws,
    judge_timing,
    overall,
    skipped,
)
from harness.kinds import registry
from harness.machine import env
from harness.specs.spec import Spec
from harness.store import tags as tag
from harness.store import tracking

Executor = Local | Ray


def _judge_device(spec: Spec, device: str, by_seed: dict[int, dict[str, Any]], failed: dict[int, str]) -> list[Verdict]:
    """Every reference on one device, on the seeds that finished, and the pooled draws of one run; then the family's
    statuses (Holm at the spec's ``family_error``). A failed unit is named in each verdict."""
    if not by_seed:
        why = "; ".join(f"seed {s}: {e}" for s, e in failed.items())
        return [replace(judge(ref, device, {}), status=INCONCLUSIVE, detail=f"no unit finished ({why})")
                for ref in spec.references]
    timings = registry.get(spec.kind).timings
    size, _ = family.sizes(spec.references, device, set(timings))
    confidence, level = spec.timing.confidence, spec.family_error / max(size, 1)
    placed: list[tuple[tuple[int, int], Verdict]] = []  # a pool of draws goes after its last draw
    for i, ref in enumerate(spec.references):
        member = ref.gates_on(device) and family.member(ref, ref.metric in timings)
        at = level if member else None
        if ref.metric in timings:
            rounds = {s: m.get("rounds", {}).get(ref.metric, []) for s, m in by_seed.items()}
            v = judge_timing(ref, device, rounds, unit=timings[ref.metric], confidence=confidence, level=at)
        else:
            v = judge(ref, device, {s: m[ref.metric] for s, m in by_seed.items()}, confidence, level=at)
        placed.append(((i, 0), replace(v, family=size if member else 0)))
    for group in family.pools(spec.references, device):
        values = [by_seed[s][group[0].metric] for s in sorted(by_seed)]
        last = max(i for i, ref in enumerate(spec.references) if ref in group)
        placed.append(((last, 1), replace(judge_draws(group, device, values, confidence, level), family=size)))
    verdicts = family.adjust([v for _, v in sorted(placed, key=lambda kv: kv[0])], spec.family_error)
    if failed:
        missing = "missing " + ", ".join(f"seed {s} ({e})" for s, e in failed.items())
        verdicts = [replace(v, detail=f"{v.detail}; {missing}") for v in verdicts]
    return verdicts


def _copy(unit: Unit, source: str, progress: Progress | None) -> Outcome:
    """A unit an earlier run finished (``--resume``), copied under this spec run."""
    if progress:
        progress(unit.device, unit.seed, source)
    values = tracking.copy_unit(source, unit.name, unit.tags | where_it_ran(unit.device))
    return Outcome(values=values, model=env.device_model(unit.device))


def _record(verdicts: list[Verdict], measured: dict[str, dict[int, Any]], outcomes: dict[tuple[str, int], Outcome]):
    """The spec run's results: what each device measured, the verdicts and their counts, the failed units.

    A run with a failed unit is recorded whole but ends FAILED, so reports keep the last complete run.
    """
    models = {d: o.model for (d, _), o in outcomes.items() if d in measured and o.model}
    tracking.set_tags({tag.DEVICES_RAN: ",".join(measured), tag.DEVICE: ",".join(measured),
                       "device.models": "; ".join(f"{d}: {m}" for d, m in models.items())})
    missing = [f"{d} seed {s}: {o.error}" for (d, s), o in sorted(outcomes.items()) if o.error]
    if missing:
        tracking.set_tags({tag.UNITS_FAILED: "; ".join(missing)[:5000]})
        tracking.end_incomplete()
    tracking.log_dict(measured, "measured.json")
    tracking.log_dict([v.as_dict() for v in verdicts], "verdicts.json")
    counts = {s: sum(v.status == s for v in verdicts) for s in STATUSES}
    counts["gating_missed"] = sum(v.gating_miss for v in verdicts)
    counts["gating_inconclusive"] = sum(v.gating_inconclusive for v in verdicts)
    counts["units_failed"] = len(missing)
    tracking.log_metrics({f"verdicts.{k.replace(' ', '_')}": n for k, n in counts.items()})
    tracking.set_tags({"verdict": overall(verdicts), "verdict.counts": json.dumps(counts)})


@dataclass
class SpecResult:
    """What became of one spec run: its verdicts and time, the devices its data was missing on, its failed units, or
    the error that stopped it (set by the caller that caught it; the run is recorded FAILED)."""

    path: Path
    spec: Spec
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0
    absent: dict[str, list[str]] = field(default_factory=dict)  # a data set's not-found message -> its devices
    broken: list[str] = field(default_factory=list)  # "on cpu, seed 1: why" of each failed unit
    error: str = ""

    @property
    def missed(self) -> int:
        return sum(v.gating_miss for v in self.verdicts)

    @property
    def inconclusive(self) -> int:
        return sum(v.gating_inconclusive for v in self.verdicts)

    @property
    def failed(self) -> bool:
        return bool(self.error or self.broken)


Progress = Callable[[str, int, str | None], None]  # (device, seed, the run it is reused from or None), as each starts


def run_spec(spec: Spec, path: Path, nested: bool = False, executor: Executor | None = None,
             progress: Progress | None = None, resume: bool = False, only: Collection[str] | None = None,
             parent: str = "") -> SpecResult:
    """One spec -> a run holding its verdicts, summary and environment, with one child run per (device, seed).

    The units run on ``executor`` (default: in this process, one after another). With ``resume``, a unit that an
    earlier run of the same spec, code and environment finished is copied from there instead of run again. A
    device whose task finds no data (``DataMissing``) is judged skipped with the loader's message (``absent``), and
    left out of ``harness.devices_ran``. A unit that fails is named in ``broken``; the verdicts are judged on the
    seeds that finished and name the missing. ``only`` names the devices to run (``--devices``): the spec's others
    are judged skipped, saying so. ``parent``: the run to record under where it is not active in this process (a
    suite's pool worker).
    """
    result, start = SpecResult(path, spec), time.perf_counter()
    executor = executor or Local()
    asked = [d for d in spec.devices if only is None or d in only]
    ran = [d for d in asked if d != "cuda" or executor.cuda()]
    identity = {tag.SPEC_NAME: spec.name, tag.KIND: spec.kind, tag.SPEC_HASH: spec.hash,
                tag.CODE_ID: env.code_id(), tag.ENV_HASH: env.env_hash()}
    tags = {tag.ROLE: tag.SPEC, **identity, tag.TITLE: spec.title, tag.REFS: ",".join(spec.ref_ids),
            tag.DEVICES_RAN: ",".join(ran), tag.SEEDS: ",".join(map(str, spec.seeds)), tag.DEVICE: ",".join(ran),
            "mlflow.source.git.commit": env.fingerprint()["git.commit"], **env.fingerprint(),
            tag.EXECUTOR: executor.name}
    reusable = tracking.finished_units(identity) if resume else {}
    if parent:  # a pool's worker: the suite's run is the driver's, not active here
        tags["mlflow.parentRunId"] = parent
    with tracking.recorded_run(spec.name, tags=tags, nested=nested):
        tracking.log_spec(spec, path)
        units = [Unit(spec, d, seed, {tag.ROLE: tag.UNIT, **identity, tag.DEVICE: d, tag.SEED: str(seed)})
                 for d in ran for seed in spec.seeds]
        outcomes = {u.key: _copy(u, reusable[u.key], progress) for u in units if u.key in reusable}
        todo = [u for u in units if u.key not in reusable]
        outcomes |= executor.run(todo, lambda u: progress and progress(u.device, u.seed, None))
        verdicts: list[Verdict] = []
        measured: dict[str, dict[int, dict[str, Any]]] = {}
        for device in spec.devices:
            got = {seed: outcomes[(device, seed)] for seed in spec.seeds if (device, seed) in outcomes}
            absent = (next((o.skipped for o in got.values() if o.skipped), "") if device in ran
                      else executor.no_gpu if device in asked else f"not asked for here (--devices {','.join(only)})")
            if absent:
                verdicts += [skipped(ref, device, absent) for ref in spec.references]
                if device in ran:
                    result.absent.setdefault(absent, []).append(device)
                continue
            failed = {seed: o.error for seed, o in got.items() if o.error}
            result.broken += [f"on {device}, seed {seed}: {error}" for seed, error in failed.items()]
            done = {seed: o.values for seed, o in got.items() if o.values is not None}
            if done:
                measured[device] = done
            verdicts += _judge_device(spec, device, done, failed)
        _record(verdicts, measured, outcomes)
    result.verdicts, result.seconds = verdicts, time.perf_counter() - start
    return result
