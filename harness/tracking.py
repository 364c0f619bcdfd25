"""MLflow, both ways: write runs (suite parent, one nested run per spec) and read them back for reports.

The default store is a SQLite file in the working directory (``mlflow.db``, artifacts
beside it in ``mlartifacts/``), which a plain ``mlflow ui`` run there
reads; ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` points elsewhere. A run always
ends FINISHED, FAILED or KILLED, never left RUNNING.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from harness.rounds import Plan

EXPERIMENT = "d2l-cnn-chapter"
DEFAULT_DB = "mlflow.db"
ROLE, SPEC_NAME = "harness.role", "harness.spec"

for _name in ("mlflow", "alembic", "mlflow.store.db.utils"):
    logging.getLogger(_name).setLevel(logging.WARNING)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def tracking_uri(explicit: str | None = None) -> str:
    """The store to use: the flag, else MLFLOW_TRACKING_URI, else ./mlflow.db (SQLite)."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def connect(explicit: str | None = None, create: bool = True) -> str | None:
    """Point MLflow at the store and the harness's experiment; returns the experiment id."""
    import mlflow

    uri = tracking_uri(explicit)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        exp_id = exp.experiment_id
    elif not create:
        return None
    else:
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


@contextmanager
def recorded_run(name: str, tags: dict[str, str], nested: bool = False) -> Iterator[Any]:
    """An MLflow run that ends FINISHED, FAILED on an error, KILLED on an interrupt."""
    import mlflow

    run = mlflow.start_run(run_name=name, tags=tags, nested=nested)
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


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

    def log_round(self, number: int, values: dict[str, float]) -> None:
        """One timing round's values, as metrics ``round.<name>`` at step ``number``."""
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(self.key(f"round.{k}"), float(v), now, number) for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        for i in range(0, len(metrics), 1000):
            MlflowClient().log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def log_metric(self, name: str, value: float, step: int = 0) -> None:
        import mlflow

        mlflow.log_metric(self.key(name), float(value), step=step)

    def log_json(self, name: str, obj: Any) -> None:
        import mlflow

        mlflow.log_dict(obj, f"{self.device}/seed{self.seed}/{name}.json")

    def log_table(self, name: str, df: pd.DataFrame) -> None:
        """A pandas table, kept as an artifact the report reads back."""
        self.log_json(name, json.loads(df.to_json(orient="split", index=False, double_precision=15)))


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
