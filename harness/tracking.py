"""MLflow, both ways: write runs (suite parent, one nested run per spec) and read them back for reports.

The default store is a SQLite file in the working directory (``mlflow.db``, artifacts
beside it in ``mlartifacts/``), which a plain ``mlflow ui`` run there
reads; ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` points elsewhere. A run always
ends FINISHED, FAILED or KILLED, never left RUNNING; one whose process was killed outright is
ended FAILED by the next harness command that opens the store (``harness.store``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.store import HEARTBEATS, creation_lock, identity, recover_orphans, retry_locked, sqlite_path

if TYPE_CHECKING:
    from harness.rounds import Plan

EXPERIMENT = "d2l-cnn-chapter"
DEFAULT_DB = "mlflow.db"
ROLE, SPEC_NAME = "harness.role", "harness.spec"
CODE_ID, ENV_HASH, SPEC_HASH = "code.id", "env.hash", "spec.hash"
UNITS = "units"  # artifacts units/<device>/seed<seed>.json: the measured values of each finished (device, seed)

for _name in ("mlflow", "alembic", "mlflow.store.db.utils"):
    logging.getLogger(_name).setLevel(logging.WARNING)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def tracking_uri(explicit: str | None = None) -> str:
    """The store to use: the flag, else MLFLOW_TRACKING_URI, else ./mlflow.db (SQLite)."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


@retry_locked
def _experiment(uri: str, create: bool) -> str | None:
    """The harness's experiment in the store (created when missing and ``create``); the store's first touch."""
    import mlflow

    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    if not create:
        return None
    path = sqlite_path(uri)
    location = (path.parent / "mlartifacts").as_uri() if path is not None else None
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


def connect(explicit: str | None = None, create: bool = True) -> str | None:
    """Point MLflow at the store and the harness's experiment; returns the experiment id.

    The store is created or upgraded under a lock, and runs whose process vanished are ended FAILED.
    """
    import mlflow

    uri = tracking_uri(explicit)
    mlflow.set_tracking_uri(uri)
    with creation_lock(uri):
        exp_id = _experiment(uri, create)
    if exp_id is None:
        return None
    mlflow.set_experiment(experiment_id=exp_id)
    recover_orphans(exp_id)
    return exp_id


@retry_locked
def _start_run(name: str, tags: dict[str, str], nested: bool) -> Any:
    import mlflow

    return mlflow.start_run(run_name=name, tags=tags | identity(), nested=nested)


@retry_locked
def _end_run(status: str) -> None:
    import mlflow

    mlflow.end_run(status)


@contextmanager
def recorded_run(name: str, tags: dict[str, str], nested: bool = False) -> Iterator[Any]:
    """An MLflow run that ends FINISHED, FAILED on an error, KILLED on an interrupt; it beats while it runs."""
    run = _start_run(name, tags, nested)
    HEARTBEATS.add(run.info.run_id)
    try:
        yield run
    except KeyboardInterrupt:
        _end_run("KILLED")
        raise
    except BaseException:
        _end_run("FAILED")
        raise
    else:
        _end_run("FINISHED")
    finally:
        HEARTBEATS.remove(run.info.run_id)


@retry_locked
def log_metrics(metrics: dict[str, float]) -> None:
    """Metrics of the active run, at step 0."""
    import mlflow

    mlflow.log_metrics(metrics)


@retry_locked
def log_dict(obj: Any, path: str) -> None:
    """A JSON artifact of the active run."""
    import mlflow

    mlflow.log_dict(obj, path)


@retry_locked
def set_tags(tags: dict[str, str]) -> None:
    """Tags of the active run."""
    import mlflow

    mlflow.set_tags(tags)


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)


@dataclass
class Recorder:
    """What a task writes into its spec's run, scoped to one (device, seed); ``plan`` holds its timing claims."""

    run_id: str
    device: str
    seed: int
    plan: Plan | None = field(default=None, repr=False)

    def key(self, name: str) -> str:
        return _safe(f"{name}/{self.device}/s{self.seed}")

    @retry_locked
    def log_series(self, name: str, values: list[float], steps: list[int] | None = None) -> None:
        """A metric curve, one point a step (steps default to 1..n)."""
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        steps = steps or list(range(1, len(values) + 1))
        now = int(time.time() * 1000)
        metrics = [Metric(self.key(name), float(v), now, int(s)) for s, v in zip(steps, values)]
        client = MlflowClient()
        for i in range(0, len(metrics), 1000):
            client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    @retry_locked
    def log_round(self, number: int, values: dict[str, float]) -> None:
        """One timing round's values, as metrics ``round.<name>`` at step ``number``."""
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(self.key(f"round.{k}"), float(v), now, number) for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        for i in range(0, len(metrics), 1000):
            MlflowClient().log_batch(self.run_id, metrics=metrics[i:i + 1000])

    @retry_locked
    def log_metric(self, name: str, value: float, step: int = 0) -> None:
        import mlflow

        mlflow.log_metric(self.key(name), float(value), step=step)

    @retry_locked
    def log_json(self, name: str, obj: Any) -> None:
        import mlflow

        mlflow.log_dict(obj, f"{self.device}/seed{self.seed}/{name}.json")

    def log_table(self, name: str, df: pd.DataFrame) -> None:
        """A pandas table, kept as an artifact the report reads back."""
        self.log_json(name, json.loads(df.to_json(orient="split", index=False, double_precision=15)))


@retry_locked
def log_spec(spec: Any, path: Path) -> None:
    """The resolved spec, as params (flattened) and as an artifact."""
    import mlflow

    resolved = spec.resolved()
    flat = pd.json_normalize({k: v for k, v in resolved.items() if k != "references"}, sep=".")
    params = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in flat.iloc[0].items()}
    params = {k: (str(v)[:500]) for k, v in params.items()}
    mlflow.log_params(params)
    mlflow.log_dict(resolved, "spec.json")
    mlflow.log_text(path.read_text(encoding="utf-8"), f"spec/{path.name}")


# ---- units: one (device, seed) of a spec, kept as it finishes, reused by --resume ----------------------


def unit_path(device: str, seed: int) -> str:
    return f"{UNITS}/{device}/seed{seed}.json"


@retry_locked
def log_unit(device: str, seed: int, values: dict[str, Any]) -> None:
    """A finished unit's measured values, written at once so that a later --resume can reuse the unit."""
    log_dict(values, unit_path(device, seed))


@retry_locked
def finished_units(tags: dict[str, str]) -> dict[tuple[str, int], tuple[str, dict[str, Any]]]:
    """Units recorded by earlier runs of the same spec (name and hash), code and environment, newest first.

    Runs still RUNNING are left out; a run that was killed or failed still lends the units it finished.
    """
    import mlflow

    keys = (SPEC_NAME, SPEC_HASH, CODE_ID, ENV_HASH)
    where = " and ".join(f"tags.`{k}` = '{tags[k]}'" for k in keys)
    runs = mlflow.search_runs(filter_string=f"tags.`{ROLE}` = 'spec' and {where}",
                              order_by=["attributes.start_time DESC"])
    found: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
    for run in runs.itertuples():
        if run.status == "RUNNING":
            continue
        for path in artifact_paths(run.run_id, UNITS):
            device, seed = path.removeprefix(f"{UNITS}/").removesuffix(".json").split("/seed")
            found.setdefault((device, int(seed)), (run.run_id, load_json(run.run_id, path)))
    return found


@retry_locked
def copy_unit(source_run: str, device: str, seed: int) -> None:
    """Copy a unit's curves, tables and values from ``source_run`` into the active run, as if it had run here."""
    import mlflow
    from mlflow import MlflowClient

    client, target = MlflowClient(), mlflow.active_run().info.run_id
    suffix = f"/{device}/s{seed}"
    keys = [k for k in client.get_run(source_run).data.metrics if k.endswith(suffix) and not k.startswith("measured.")]
    points = [m for k in keys for m in client.get_metric_history(source_run, k)]
    for i in range(0, len(points), 1000):
        client.log_batch(target, metrics=points[i:i + 1000])
    folder = f"{device}/seed{seed}"
    with tempfile.TemporaryDirectory() as tmp:
        if artifact_paths(source_run, folder):
            client.log_artifacts(target, client.download_artifacts(source_run, folder, tmp), folder)
    log_unit(device, seed, load_json(source_run, unit_path(device, seed)))
    client.set_tag(target, f"harness.reused.{device}.s{seed}", source_run)


# ---- reading back ----------------------------------------------------------------


def spec_runs(explicit_uri: str | None = None) -> pd.DataFrame:
    """Every finished spec run, newest first, with its params and tags (mlflow.search_runs)."""
    import mlflow

    exp_id = connect(explicit_uri, create=False)
    if exp_id is None:
        return pd.DataFrame()
    runs = mlflow.search_runs(
        experiment_ids=[exp_id],
        filter_string=f"tags.`{ROLE}` = 'spec' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    return runs


def load_json(run_id: str, path: str) -> Any:
    import mlflow

    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")


def load_table(run_id: str, path: str) -> pd.DataFrame:
    data = load_json(run_id, path)
    return pd.DataFrame(data["data"], columns=data["columns"])


def metric_history(run_id: str, key: str) -> pd.DataFrame:
    """A metric's points as a (step, value) table, in step order."""
    from mlflow import MlflowClient

    hist = MlflowClient().get_metric_history(run_id, _safe(key))
    df = pd.DataFrame({"step": [m.step for m in hist], "value": [m.value for m in hist]})
    return df.sort_values("step", kind="stable").reset_index(drop=True)


def artifact_paths(run_id: str, under: str = "") -> list[str]:
    """Every artifact file of a run, recursively."""
    from mlflow import MlflowClient

    client, out, todo = MlflowClient(), [], [under or None]
    while todo:
        for info in client.list_artifacts(run_id, todo.pop()):
            (todo if info.is_dir else out).append(info.path)
    return sorted(out)
