"""Move recorded runs between stores: ``harness export RUN > bundle`` here, ``harness import bundle`` there.

A bundle is a gzipped tar of a run and every run under it, written and read with MLflow's client API only, so any
two stores work (docs/internals.md, "Executors, servers and bundles"). An imported run keeps its times and tags,
gets a new id tagged ``harness.imported_from`` with its old one, and is not imported twice.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from harness.reading import results
from harness.store import tracking
from harness.store.locks import retry_locked

FORMAT = "harness-bundle/1"
IMPORTED_FROM = "harness.imported_from"
PARENT = "mlflow.parentRunId"


class BundleError(RuntimeError):
    """A run that cannot be exported or a bundle that cannot be imported; the message is one line."""


def resolve(ref: str, uri: str | None = None) -> str:
    """The run id ``ref`` names, as every command reads it (``results.resolve``: an id or its first characters,
    ``latest``, ``latest~N``, a git commit)."""
    try:
        return str(results.resolve(ref, uri).row["run_id"])
    except results.ResultsError as exc:
        raise BundleError(str(exc)) from None


def _tree(root: str, experiment_id: str) -> list[Any]:
    """``root`` and every run under it, parents before children."""
    client = MlflowClient()
    runs, todo = [client.get_run(root)], [root]
    while todo:
        parent = todo.pop(0)
        children = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT}` = '{parent}'",
                                      max_results=50000)
        runs += children
        todo += [c.info.run_id for c in children]
    return runs


def _record(run: Any) -> dict[str, Any]:
    client, info = MlflowClient(), run.info
    metrics = [[m.key, m.value, m.timestamp, m.step] for key in run.data.metrics
               for m in client.get_metric_history(info.run_id, key)]
    return {"run_id": info.run_id, "name": info.run_name, "status": info.status, "start_time": info.start_time,
            "end_time": info.end_time, "params": run.data.params, "tags": run.data.tags, "metrics": metrics}


def export(ref: str, out: BinaryIO, uri: str | None = None) -> int:
    """Write the bundle of run ``ref`` and its descendants to ``out``; returns how many runs it holds."""
    experiment = tracking.connect(uri, create=False)
    if experiment is None:
        raise BundleError(f"{tracking.tracking_uri(uri)}: no harness runs in this store")
    runs = _tree(resolve(ref, uri), experiment)
    open_runs = [r.info.run_name for r in runs if r.info.status in ("RUNNING", "SCHEDULED")]
    if open_runs:
        raise BundleError(f"{ref}: {len(open_runs)} run(s) still open ({open_runs[0]}...): export when they end")
    records = [_record(r) for r in runs]
    records[0]["tags"].pop(PARENT, None)  # the root's parent stays behind
    with tarfile.open(fileobj=out, mode="w:gz") as tar, tempfile.TemporaryDirectory() as tmp:
        manifest = json.dumps({"format": FORMAT, "runs": records}).encode()
        info = tarfile.TarInfo("runs.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for run in runs:
            local = MlflowClient().download_artifacts(run.info.run_id, "", str(Path(tmp) / run.info.run_id))
            tar.add(local, arcname=f"artifacts/{run.info.run_id}")
    return len(records)


def _already(experiment_id: str) -> dict[str, str]:
    """Runs this store imported before, by their id in the store they came from."""
    runs = MlflowClient().search_runs([experiment_id], filter_string=f"tags.`{IMPORTED_FROM}` != ''",
                                      max_results=50000)
    return {r.data.tags[IMPORTED_FROM]: r.info.run_id for r in runs}


def _manifest(tar: tarfile.TarFile, name: str) -> list[dict[str, Any]]:
    try:
        data = json.load(tar.extractfile("runs.json"))  # type: ignore[arg-type]
    except (KeyError, ValueError, AttributeError):
        raise BundleError(f"{name}: not a harness bundle (no readable runs.json)") from None
    if data.get("format") != FORMAT:
        raise BundleError(f"{name}: bundle format {data.get('format')!r}, expected {FORMAT!r}")
    return data["runs"]


def import_bundle(source: BinaryIO, name: str, uri: str | None = None) -> tuple[int, int]:
    """Recreate a bundle's runs in the store; returns (imported, already there)."""
    experiment = tracking.connect(uri)
    client, new_ids, skipped = MlflowClient(), _already(experiment), 0
    try:
        tar = tarfile.open(fileobj=source, mode="r:*")
    except tarfile.TarError:
        raise BundleError(f"{name}: not a harness bundle (not a tar archive)") from None
    with tar, tempfile.TemporaryDirectory() as tmp:
        records = _manifest(tar, name)
        tar.extractall(tmp, filter="data")
        for rec in records:
            origin = rec["tags"].get(IMPORTED_FROM, rec["run_id"])  # a run passed on keeps where it began
            if origin in new_ids or rec["run_id"] in new_ids:
                new_ids[rec["run_id"]] = new_ids.get(origin) or new_ids[rec["run_id"]]
                skipped += 1
                continue
            tags = {k: v for k, v in rec["tags"].items() if k != PARENT} | {IMPORTED_FROM: origin}
            if PARENT in rec["tags"]:
                tags[PARENT] = new_ids[rec["tags"][PARENT]]
            run_id = _recreate(client, experiment, rec, tags, Path(tmp) / "artifacts" / rec["run_id"])
            new_ids[rec["run_id"]] = new_ids[origin] = run_id
    return len(records) - skipped, skipped


def _recreate(client: MlflowClient, experiment: str, rec: dict[str, Any], tags: dict[str, str],
              artifacts: Path) -> str:
    """One run of a bundle, whole or not at all: a run that fails half-way is deleted."""
    run_id = client.create_run(experiment, start_time=rec["start_time"], tags=tags, run_name=rec["name"]).info.run_id
    try:
        retry_locked(tracking.log_batches)(client, run_id, [Metric(*m) for m in rec["metrics"]],
                                           [Param(k, v) for k, v in rec["params"].items()])
        if artifacts.is_dir() and any(artifacts.iterdir()):
            client.log_artifacts(run_id, str(artifacts))
        client.set_terminated(run_id, rec["status"], end_time=rec["end_time"])
    except BaseException:
        client.delete_run(run_id)
        raise
    return run_id
