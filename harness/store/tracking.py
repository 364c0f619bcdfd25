"""MLflow, both ways: write runs and read them back for reports.

A suite run (one ``reproduce``) is the parent of one run per spec (the resolved spec, the verdicts, the environment),
itself the parent of one run per (device, seed) unit (params ``seed`` and ``device``, plain metric names, the unit's
tables). The default store is ``mlflow.db`` in the working directory; ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``
points elsewhere. docs/internals.md ("What a run records") has the whole layout.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from harness.judging.rounds import Plan
from harness.judging.stats import is_finite_number
from harness.store import opening
from harness.store import tags as tag
from harness.store.locks import (
    HEARTBEATS,
    StoreError,
    creation_lock,
    end_run_as,
    identity,
    recover_orphans,
    retry_locked,
    sqlite_path,
)

EXPERIMENT = "d2l-cnn-chapter"
DEFAULT_DB = "mlflow.db"
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # MLflow 3: open on runs, not GenAI traces

for _name in ("mlflow", "alembic", "mlflow.store.db.utils"):
    logging.getLogger(_name).setLevel(logging.WARNING)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def experiment_name() -> str:
    """The experiment runs go to: ``$MLFLOW_EXPERIMENT_NAME`` (``--experiment`` sets it), else the harness's own."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT


def tracking_uri(explicit: str | None = None) -> str:
    """The store to use: the flag, else MLFLOW_TRACKING_URI, else ./mlflow.db (SQLite)."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


@retry_locked
def _experiment(uri: str, create: bool) -> str | None:
    """The harness's experiment in the store (created when missing and ``create``); the store's first touch."""
    name = experiment_name()
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        if exp.tags.get(EXPERIMENT_KIND[0]) is None:  # a store made before the kind was set
            mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
        return exp.experiment_id
    if not create:
        return None
    path = sqlite_path(uri)
    location = (path.parent / "mlartifacts").as_uri() if path is not None else None
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=dict([EXPERIMENT_KIND]))
    except Exception:  # a server's runners race to create it (SQLite's are serialised by creation_lock)
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def connect(explicit: str | None = None, create: bool = True) -> str | None:
    """Point MLflow at the store and the harness's experiment; returns the experiment id.

    The store is checked first (``opening.check``: a store that is none, or a server that does not answer, is one
    line), then created or upgraded under a lock, and runs whose process vanished are ended FAILED. Without
    ``create``, a SQLite store that is not there is not made: None.
    """
    uri = tracking_uri(explicit)
    if not opening.check(uri, create, experiment_name()):
        return None
    mlflow.set_tracking_uri(uri)
    with creation_lock(uri):
        opening.check_tables(uri)
        exp_id = opening.opened(uri, lambda: _experiment(uri, create))
    if exp_id is None:
        return None
    mlflow.set_experiment(experiment_id=exp_id)
    recover_orphans(exp_id)
    return exp_id


@retry_locked
def _start_run(name: str, tags: dict[str, str], nested: bool, run_id: str | None = None) -> Any:
    return mlflow.start_run(run_id=run_id, run_name=name, tags=tags | identity(), nested=nested)


class RecordingFailed(StoreError):
    """The store failed under a run (a full disk, a read-only file, a server gone): one line saying whether the
    runs could still be ended FAILED, or are left RUNNING for the next command to end."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why, self.left_open = why, []

    def __str__(self) -> str:
        if not self.left_open:
            return f"{self.why}; the run was ended FAILED"
        return (f"{self.why}; the run is left RUNNING ({', '.join(self.left_open)}); the next command that opens "
                "the store ends it FAILED")


def _recording_failed(err: StoreError) -> RecordingFailed:
    """``err`` as a ``RecordingFailed`` (itself when it is one), to name the runs it leaves open."""
    if isinstance(err, RecordingFailed):
        return err
    failed = RecordingFailed(str(err))
    failed.__cause__ = err
    return failed


def _end_run(run: Any, status: str) -> None:
    """End the active run ``run`` as ``status``: popped off MLflow's stack once, its status retried while locked.

    A store that cannot take the status raises ``RecordingFailed`` naming the run left RUNNING.
    """
    try:
        try:
            mlflow.end_run(status)  # pops the run first, so a retry must not call it again
        except Exception:
            retry_locked(MlflowClient().set_terminated)(run.info.run_id, status)
    except StoreError as err:
        failed = _recording_failed(err)
        failed.left_open.append(run.info.run_name)
        raise failed from failed.__cause__  # the store's own error, kept for --debug


def _pop(run: Any) -> None:
    """Take ``run`` off MLflow's stack of active runs without a write (the store has just refused one)."""
    stack = mlflow.tracking.fluent._active_run_stack.get()  # MLflow has no public pop without a write
    if stack and stack[-1].info.run_id == run.info.run_id:
        stack.pop()


@contextmanager
def recorded_run(name: str, tags: dict[str, str], nested: bool = False, run_id: str | None = None) -> Iterator[Any]:
    """An MLflow run that ends FINISHED, FAILED on an error, KILLED on an interrupt; it beats while it runs.

    With ``run_id``, an existing run (one an executor scheduled) is started instead of a new one. When the store
    fails under it, the run is ended FAILED if the store still takes that, and ``RecordingFailed`` says which.
    """
    run = _start_run(name, tags, nested, run_id)
    HEARTBEATS.add(run.info.run_id)
    try:
        yield run
    except KeyboardInterrupt:
        _end_run(run, "KILLED")
        raise
    except StoreError as err:
        failed = _recording_failed(err)
        if failed.left_open:  # a run under it could not be ended: neither can this one (nor a server wait again)
            _pop(run)
            failed.left_open.append(run.info.run_name)
        else:
            try:
                _end_run(run, "FAILED")
            except RecordingFailed as again:
                failed.left_open += again.left_open
        raise failed from failed.__cause__  # the store's own error, kept for --debug
    except BaseException:
        _end_run(run, "FAILED")
        raise
    else:
        _end_run(run, "FAILED" if run.info.run_id in _INCOMPLETE else "FINISHED")
    finally:
        HEARTBEATS.remove(run.info.run_id)
        _INCOMPLETE.discard(run.info.run_id)


_INCOMPLETE: set[str] = set()


def end_incomplete() -> None:
    """End the active run FAILED when its block ends, though nothing was raised: a part of it is missing."""
    _INCOMPLETE.add(mlflow.active_run().info.run_id)


def attach(uri: str, experiment_id: str) -> None:
    """Point this process (an executor's worker) at a store and experiment the driver already opened."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=experiment_id)


@retry_locked
def schedule_run(name: str, tags: dict[str, str]) -> str:
    """A child run of the active run, created SCHEDULED for a unit that another process will start."""
    parent = mlflow.active_run()
    run = MlflowClient().create_run(parent.info.experiment_id, run_name=name,
                                    tags=tags | identity() | {"mlflow.parentRunId": parent.info.run_id})
    MlflowClient().update_run(run.info.run_id, status="SCHEDULED")
    return run.info.run_id


@retry_locked
def end_if_open(run_id: str, status: str, why: str) -> bool:
    """End a run left SCHEDULED or RUNNING (its worker died or was cancelled) as ``status``; was it open?"""
    client = MlflowClient()
    if client.get_run(run_id).info.status not in ("SCHEDULED", "RUNNING"):
        return False
    end_run_as(client, run_id, status, why)
    return True


@retry_locked
def log_metrics(metrics: dict[str, float]) -> None:
    """Metrics of the active run, at step 0."""
    mlflow.log_metrics(metrics)


@retry_locked
def log_dict(obj: Any, path: str) -> None:
    """A JSON artifact of the active run."""
    mlflow.log_dict(obj, path)


@retry_locked
def set_tags(tags: dict[str, str]) -> None:
    """Tags of the active run."""
    mlflow.set_tags(tags)


def safe_key(key: str) -> str:
    """A metric key MLflow accepts."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)


PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000  # MLflow's limits for one log_batch


def log_batches(client: Any, run_id: str, metrics: Sequence[Metric], params: Sequence[Param] = ()) -> None:
    """``params`` then ``metrics`` into run ``run_id``, in as many ``log_batch`` calls as MLflow's limits need."""
    for i in range(0, len(params), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[i:i + PARAMS_PER_BATCH])
    for i in range(0, len(metrics), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + METRICS_PER_BATCH])


@dataclass
class Recorder:
    """What a task writes into its unit's run (one device, one seed); ``plan`` holds the spec's timing claims
    (none given: no timing claim on ``device``, the default policy)."""

    run_id: str
    device: str
    seed: int
    plan: Plan = field(default=None, repr=False)  # type: ignore[assignment]  # None: set in __post_init__

    def __post_init__(self) -> None:
        from harness.machine import device as devices  # torch: only where a unit is recorded, not where runs are read

        devices.assert_real(self.device)
        if self.plan is None:
            self.plan = Plan(device=self.device)

    @retry_locked
    def log_series(self, name: str, values: list[float], steps: list[int] | None = None) -> None:
        """A metric curve, one point a step (steps default to 1..n)."""
        steps = steps or list(range(1, len(values) + 1))
        now = int(time.time() * 1000)
        log_batches(MlflowClient(), self.run_id,
                     [Metric(safe_key(name), float(v), now, int(s)) for s, v in zip(steps, values)])

    @retry_locked
    def log_round(self, number: int, values: dict[str, float]) -> None:
        """One timing round's values, as metrics ``round.<name>`` at step ``number``."""
        now = int(time.time() * 1000)
        log_batches(MlflowClient(), self.run_id, [Metric(safe_key(f"round.{k}"), float(v), now, number)
                                                   for k, v in values.items() if is_finite_number(v)])

    @retry_locked
    def log_metric(self, name: str, value: float, step: int = 0) -> None:
        MlflowClient().log_metric(self.run_id, safe_key(name), float(value), step=step)

    @retry_locked
    def log_dataset(self, name: str, digest: str, source: str, profile: dict[str, int],
                    context: str = "training") -> None:
        """The dataset the unit read, as the run's MLflow input (the UI lists it with its digest and counts)."""
        dataset = Dataset(name=name, digest=digest, source_type="local", source=json.dumps({"uri": source}),
                          profile=json.dumps(profile))
        MlflowClient().log_inputs(self.run_id, datasets=[
            DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])])

    @retry_locked
    def log_json(self, name: str, obj: Any) -> None:
        MlflowClient().log_dict(self.run_id, obj, f"{name}.json")

    def log_table(self, name: str, df: pd.DataFrame) -> None:
        """A pandas table: ``<name>.json``, every digit, which the report reads back, and MLflow's own table
        ``tables/<name>.json``, which its UI shows (MLflow writes 10 decimals: for the eye, not for the report)."""
        self.log_json(name, json.loads(df.to_json(orient="split", index=False, double_precision=15)))
        self._ui_table(name, df)

    @retry_locked
    def _ui_table(self, name: str, df: pd.DataFrame) -> None:
        MlflowClient().log_table(self.run_id, data=df, artifact_file=f"tables/{name}.json")


def flat_params(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: dotted keys, lists and mappings as JSON, each value at most 500 characters."""
    flat = pd.json_normalize(data, sep=".").iloc[0].to_dict() if data else {}
    return {prefix + k: str(json.dumps(v) if isinstance(v, (list, dict)) else v)[:500] for k, v in flat.items()}


@retry_locked
def log_params(params: dict[str, Any]) -> None:
    mlflow.log_params(params)


@retry_locked
def log_spec(spec: Any, path: Path) -> None:
    """The resolved spec, as params (flattened) and as an artifact, the YAML as written, the entries it cites."""
    resolved = spec.resolved()
    mlflow.log_params(flat_params({k: v for k, v in resolved.items() if k != "references"}))
    mlflow.log_dict(resolved, "spec.json")
    mlflow.log_text(path.read_text(encoding="utf-8"), f"spec/{path.name}")
    mlflow.log_dict(spec.cited, "references.json")


# ---- units: one run per (device, seed), reused by --resume -----------------------------------------------


@retry_locked
def finished_units(tags: dict[str, str]) -> dict[tuple[str, int], str]:
    """FINISHED unit runs of the same spec (name and hash), code and environment, newest first, by (device, seed).

    A unit that finished inside a spec run that was later killed or failed counts: it finished.
    """
    keys = (tag.SPEC_NAME, tag.SPEC_HASH, tag.CODE_ID, tag.ENV_HASH)
    where = " and ".join(f"tags.`{k}` = '{tags[k]}'" for k in keys)
    units = f"tags.`{tag.ROLE}` = '{tag.UNIT}' and attributes.status = 'FINISHED'"
    runs = mlflow.search_runs(filter_string=f"{units} and {where}", order_by=["attributes.start_time DESC"])
    found: dict[tuple[str, int], str] = {}
    for _, run in runs.iterrows():
        found.setdefault((run["tags.device"], int(run["tags.seed"])), run["run_id"])
    return found


def copy_unit(source: str, name: str, tags: dict[str, str]) -> dict[str, Any]:
    """A new child run of the active run, holding a copy of unit run ``source``: params, curves, tables, values.

    Returns the unit's ``measured.json``, read from the artifacts downloaded for the copy.
    """
    client = MlflowClient()
    src = client.get_run(source)
    with tempfile.TemporaryDirectory() as tmp:
        with recorded_run(name, tags=tags | {tag.REUSED_FROM: source}, nested=True) as run:
            target = run.info.run_id
            params = [Param(k, v) for k, v in src.data.params.items()]
            points = [m for key in src.data.metrics for m in client.get_metric_history(source, key)]
            retry_locked(log_batches)(client, target, points, params)
            local = client.download_artifacts(source, "", tmp)
            client.log_artifacts(target, local)
        with open(Path(local) / "measured.json") as f:
            return json.load(f)


# ---- reading back ----------------------------------------------------------------


_LOCAL_ARTIFACTS: dict[str, Path] = {}  # run id -> its artifact folder, where the store keeps artifacts on this disk


def _found(runs: pd.DataFrame) -> pd.DataFrame:
    """Search results, their artifact folders remembered where they lie on this disk: ``load_json`` then reads a
    file instead of asking MLflow's artifact repository once per file (the report reads hundreds)."""
    for run_id, uri in zip(runs.get("run_id", ()), runs.get("artifact_uri", ())):
        parsed = urllib.parse.urlparse(str(uri))
        if parsed.scheme in ("", "file") and parsed.path:
            _LOCAL_ARTIFACTS[run_id] = Path(urllib.parse.unquote(parsed.path))
    return runs


RUN_COLUMNS = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]  # what a search finds
_ONE_READ: list[list[dict[str, Any]]] = []  # every finished run of the store, while a report reads it (``one_read``)


@contextmanager
def one_read(explicit_uri: str | None = None) -> Iterator[None]:
    """Within it, ``finished_runs`` and ``spec_runs`` filter one search of every finished run instead of asking the
    store each time: a report asks for a hundred spec, unit and twin runs of a store that does not change under it."""
    runs = pd.DataFrame()
    if connect(explicit_uri, create=False) is not None:
        runs = _found(mlflow.search_runs(search_all_experiments=True, order_by=["attributes.start_time DESC"],
                                         filter_string="attributes.status = 'FINISHED'"))
    _ONE_READ.append([{k: v for k, v in row.items() if not _missing(v)} for row in runs.to_dict("records")])
    try:
        yield
    finally:
        _ONE_READ.pop()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def finished_runs(tags: dict[str, str], experiment_id: str | None = None) -> pd.DataFrame:
    """The finished runs (of one experiment, or any) whose tags equal ``tags``, newest first, with the columns a
    search gives."""
    if not _ONE_READ:
        where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        scope = {"experiment_ids": [experiment_id]} if experiment_id else {"search_all_experiments": True}
        return _found(mlflow.search_runs(**scope, order_by=["attributes.start_time DESC"],
                                         filter_string=f"{where} and attributes.status = 'FINISHED'"))
    found = [run for run in _ONE_READ[-1] if all(run.get(f"tags.{k}") == v for k, v in tags.items())
             and experiment_id in (None, run["experiment_id"])]
    return pd.DataFrame(found) if found else pd.DataFrame(columns=RUN_COLUMNS)


def child_runs(parent_id: str, role: str) -> pd.DataFrame:
    """The finished runs of ``role`` (``spec``, ``unit``) directly under a run, newest first."""
    return finished_runs({"mlflow.parentRunId": parent_id, tag.ROLE: role})


def unit_runs(spec_run_id: str) -> pd.DataFrame:
    """The finished unit runs (one per device and seed) under a spec run."""
    return child_runs(spec_run_id, tag.UNIT)


def spec_runs(explicit_uri: str | None = None) -> pd.DataFrame:
    """Every finished spec run, newest first, with its params and tags (mlflow.search_runs)."""
    exp_id = connect(explicit_uri, create=False)
    return pd.DataFrame() if exp_id is None else finished_runs({tag.ROLE: tag.SPEC}, exp_id)


def load_json(run_id: str, path: str) -> Any:
    """A JSON artifact of a run: read from disk where a search found the run's artifacts there, else from MLflow."""
    local = _LOCAL_ARTIFACTS.get(run_id)
    if local is not None and (local / path).is_file():
        return json.loads((local / path).read_text(encoding="utf-8"))
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")


def load_table(run_id: str, path: str) -> pd.DataFrame:
    data = load_json(run_id, path)
    return pd.DataFrame(data["data"], columns=data["columns"])


def metric_history(run_id: str, key: str) -> pd.DataFrame:
    """A metric's points as a (step, value) table, in step order."""
    hist = MlflowClient().get_metric_history(run_id, safe_key(key))
    df = pd.DataFrame({"step": [m.step for m in hist], "value": [m.value for m in hist]})
    return df.sort_values("step", kind="stable").reset_index(drop=True)


@retry_locked
def log_folder(run_id: str, folder: Path, under: str) -> None:
    """Every file of ``folder`` as artifacts of run ``run_id`` (ended or not), under ``under``."""
    MlflowClient().log_artifacts(run_id, str(folder), under)


def artifact_paths(run_id: str, under: str = "") -> list[str]:
    """Every artifact file of a run, recursively."""
    client, out, todo = MlflowClient(), [], [under or None]
    while todo:
        for info in client.list_artifacts(run_id, todo.pop()):
            (todo if info.is_dir else out).append(info.path)
    return sorted(out)
