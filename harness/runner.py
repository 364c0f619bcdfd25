"""Run validated specs: seed, run each (device, seed), judge the references, record it all in MLflow.

A task whose dataset is not found (``harness.data.DataMissing``) is not a failure: that device's references are
judged *skipped* with the loader's one-line message, and the unit's run ends FINISHED, tagged
``harness.skipped=<message>`` with role ``skipped`` (not ``unit``: ``--resume`` and the report read unit runs as
holding measurements, and this one holds none).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness import env, tracking
from harness.data import DataMissing
from harness.rounds import Plan
from harness.schema import Reference
from harness.seeding import seed_everything
from harness.spec import Spec
from harness.tasks import TASKS
from harness.tracking import ROLE, SPEC_NAME, Recorder
from harness.verdict import INCONCLUSIVE, MISSED, REPRODUCED, SKIPPED, STATUSES, Verdict, judge, judge_timing, skipped

NO_GPU = "no GPU found (torch.cuda.is_available() is False)"
SKIPPED_TAG = "harness.skipped"


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


def _timings(spec: Spec) -> dict[str, str]:
    """The metrics the spec's kind measures in rounds, with their units."""
    return TASKS[spec.kind].TIMINGS


def _judge(spec: Spec, ref: Reference, device: str, by_seed: dict[int, dict[str, Any]]) -> Verdict:
    """A timing reference on its rounds' interval, any other on its per-seed values."""
    timings = _timings(spec)
    if ref.metric in timings:
        rounds = {s: by_seed[s].get("rounds", {}).get(ref.metric, []) for s in spec.seeds}
        return judge_timing(ref, device, rounds, unit=timings[ref.metric], confidence=spec.timing.confidence)
    return judge(ref, device, {s: by_seed[s][ref.metric] for s in spec.seeds})


def plan_for(spec: Spec, device: str) -> Plan:
    """The spec's timing references on ``device``, and its timing policy."""
    refs = tuple(r for r in spec.references if r.metric in _timings(spec))
    return Plan(device=device, refs=refs, policy=spec.timing)


def run_unit(spec: Spec, device: str, seed: int, tags: dict[str, str]) -> dict[str, Any]:
    """One (device, seed) of a spec in its own child run: params ``seed``, ``device`` and the settings.

    When the task finds no data, its run ends FINISHED as a skipped unit and the ``DataMissing`` is raised after.
    """
    task = TASKS[spec.kind]
    absent: DataMissing | None = None
    with tracking.recorded_run(unit_name(spec, device, seed), tags=tags, nested=True) as run:
        tracking.log_params({"seed": seed, "device": device}
                            | tracking.flat_params(spec.settings.model_dump(mode="json"), "settings."))
        seed_everything(seed, spec.deterministic)
        try:
            values = task.run(spec.settings, Recorder(run.info.run_id, device, seed, plan_for(spec, device)))
        except DataMissing as exc:  # nothing measured, nothing failed: the run ends FINISHED, marked skipped
            absent = exc
            tracking.set_tags({ROLE: "skipped", SKIPPED_TAG: str(exc)[:5000]})
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


def unit_name(spec: Spec, device: str, seed: int) -> str:
    return f"{spec.name} {device} seed {seed}"


def run_spec(spec: Spec, path: Path, nested: bool = False,
             on_seed: Callable[[str, int, str | None], None] | None = None, resume: bool = False,
             on_skip: Callable[[str, str], None] | None = None) -> list[Verdict]:
    """One spec -> a run holding its verdicts, summary and environment, with one child run per (device, seed).

    With ``resume``, a unit that an earlier run of the same spec, code and environment finished is copied from
    there instead of run again. A device whose task finds no data (``DataMissing``) runs no further seed: its
    references are judged skipped with the loader's message, passed to ``on_skip(device, message)``, and it is
    left out of the run's ``harness.devices_ran``.
    """
    ran = [d for d in spec.devices if d != "cuda" or env.cuda_available()]
    identity = {SPEC_NAME: spec.name, "harness.kind": spec.kind, tracking.SPEC_HASH: spec.hash,
                tracking.CODE_ID: env.code_id(), tracking.ENV_HASH: env.env_hash()}
    tags = {ROLE: "spec", **identity, "harness.title": spec.title, "harness.refs": ",".join(spec.ref_ids),
            "harness.devices_ran": ",".join(ran), "seeds": ",".join(map(str, spec.seeds)), "device": ",".join(ran),
            "mlflow.source.git.commit": env.fingerprint()["git.commit"], **env.fingerprint(),
            "device.models": "; ".join(f"{d}: {env.device_model(d)}" for d in ran)}
    reusable = tracking.finished_units(identity) if resume else {}
    with tracking.recorded_run(spec.name, tags=tags, nested=nested):
        tracking.log_spec(spec, path)
        verdicts: list[Verdict] = []
        measured: dict[str, dict[int, dict[str, Any]]] = {}
        for device in spec.devices:
            if device not in ran:
                verdicts += [skipped(ref, device, NO_GPU) for ref in spec.references]
                continue
            measured[device] = {}
            try:
                for seed in spec.seeds:
                    source = reusable.get((device, seed))
                    if on_seed:
                        on_seed(device, seed, source)
                    unit_tags = {ROLE: "unit", **identity, "device": device, "seed": str(seed),
                                 "device.model": env.device_model(device)}
                    if source:
                        measured[device][seed] = tracking.copy_unit(source, unit_name(spec, device, seed), unit_tags)
                    else:
                        measured[device][seed] = run_unit(spec, device, seed, unit_tags)
            except DataMissing as exc:
                del measured[device]
                verdicts += [skipped(ref, device, str(exc)) for ref in spec.references]
                if on_skip:
                    on_skip(device, str(exc))
                continue
            verdicts += [_judge(spec, ref, device, measured[device]) for ref in spec.references]
        if list(measured) != ran:  # the devices that measured something, as the report reads them
            tracking.set_tags({"harness.devices_ran": ",".join(measured), "device": ",".join(measured)})
        tracking.log_dict(measured, "measured.json")
        tracking.log_dict([v.as_dict() for v in verdicts], "verdicts.json")
        counts = {s: sum(v.status == s for v in verdicts) for s in STATUSES}
        counts["gating_missed"] = sum(v.gating_miss for v in verdicts)
        counts["gating_inconclusive"] = sum(v.gating_inconclusive for v in verdicts)
        tracking.log_metrics({f"verdicts.{k.replace(' ', '_')}": n for k, n in counts.items()})
        overall = (MISSED if counts["gating_missed"] else INCONCLUSIVE if counts["gating_inconclusive"]
                   else SKIPPED if verdicts and counts[SKIPPED] == len(verdicts) else REPRODUCED)
        tracking.set_tags({"verdict": overall, "verdict.counts": json.dumps(counts)})
    return verdicts
