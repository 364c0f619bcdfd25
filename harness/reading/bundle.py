"""Move recorded runs between stores: ``harness export RUN > bundle`` here, ``harness import bundle`` there.

A bundle is a gzipped tar of a run and every run under it, written and read with MLflow's client API only, so any
two stores work (docs/internals.md, "Executors, servers and bundles"). An imported run keeps its times and tags,
gets a new id tagged ``harness.imported_from`` with its old one, and is not imported twice.
An import is all or nothing: the whole bundle is read and checked before the first run is made, a failure deletes
the runs this import made, and a run still tagged ``harness.importing`` (its import died) is redone by the next one.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal

from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from pydantic import BaseModel, Field, ValidationError

from harness.errors import BundleError
from harness.reading import results
from harness.store import tags as tag
from harness.store import tracking
from harness.store.locks import retry_locked

FORMAT = "harness-bundle/1"
PARENT = "mlflow.parentRunId"
MANIFEST = "runs.json"


class Record(BaseModel):
    """One run in ``runs.json``, as ``export`` writes it."""

    run_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=256)  # as MLflow allows: no path
    name: str
    status: Literal["FINISHED", "FAILED", "KILLED"]
    start_time: int
    end_time: int | None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[tuple[str, float, int, int]]  # key, value, timestamp, step
    artifacts: list[str] | None = None  # its files; None in bundles written before the list was


class Manifest(BaseModel):
    """``runs.json``: the format and the runs, parents before children."""

    format: str
    runs: list[Record] = Field(min_length=1)


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


def _record(run: Any, artifacts: Path) -> dict[str, Any]:
    client, info = MlflowClient(), run.info
    metrics = [[m.key, m.value, m.timestamp, m.step] for key in run.data.metrics
               for m in client.get_metric_history(info.run_id, key)]
    files = sorted(p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*") if p.is_file())
    return {"run_id": info.run_id, "name": info.run_name, "status": info.status, "start_time": info.start_time,
            "end_time": info.end_time, "params": run.data.params, "tags": run.data.tags, "metrics": metrics,
            "artifacts": files}


def export(ref: str, out: BinaryIO, uri: str | None = None) -> int:
    """Write the bundle of run ``ref`` and its descendants to ``out``; returns how many runs it holds.

    A ref that names no run raises ``results.ResultsError`` (a bad argument, as in every command that reads one)."""
    experiment = tracking.connect(uri, create=False)
    if experiment is None:
        raise BundleError(f"{tracking.tracking_uri(uri)}: no harness runs in this store")
    runs = _tree(str(results.resolve(ref, uri).row["run_id"]), experiment)
    open_runs = [r.info.run_name for r in runs if r.info.status in ("RUNNING", "SCHEDULED")]
    if open_runs:
        raise BundleError(f"{ref}: {len(open_runs)} run(s) still open ({open_runs[0]}...): export when they end")
    with tempfile.TemporaryDirectory() as tmp:
        local = {r.info.run_id: Path(tmp) / r.info.run_id for r in runs}
        for run_id, folder in local.items():
            folder.mkdir()
            MlflowClient().download_artifacts(run_id, "", str(folder))
        records = [_record(r, local[r.info.run_id]) for r in runs]
        records[0]["tags"].pop(PARENT, None)  # the root's parent stays behind
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            manifest = json.dumps({"format": FORMAT, "runs": records}).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(manifest)
            tar.addfile(info, io.BytesIO(manifest))
            for run_id, folder in local.items():
                tar.add(folder, arcname=f"artifacts/{run_id}")
    return len(records)


def _member(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    """A member of the bundle, refused unless it is runs.json or a file or folder under artifacts/."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise BundleError(f"{name}: member {member.name!r} points outside the bundle: refused")
    wanted = ((member.isfile() and path == PurePosixPath(MANIFEST))
              or ((member.isfile() or member.isdir()) and path.parts[:1] == ("artifacts",)))
    if not wanted:
        raise BundleError(f"{name}: member {member.name!r} is not one harness export writes: refused")
    return member


def _unpack(source: BinaryIO, name: str, into: Path) -> None:
    """Every member of the bundle into ``into``, then the rest of the gzip stream, so a cut or damaged copy fails."""
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                tar.extractall(into, members=(_member(m, name) for m in tar), filter="data")
            while gz.read(1 << 20):
                pass
    except EOFError:
        raise BundleError(f"{name}: the bundle is cut short (its compressed data ends early): copy it again") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        if str(exc).startswith("Not a gzipped file"):
            raise BundleError(f"{name}: not a harness bundle (not a gzip file)") from None
        raise BundleError(f"{name}: the bundle is damaged (gzip: {exc}): copy it again") from None
    except tarfile.TarError as exc:
        why = "it is empty" if str(exc) == "empty file" else f"not a tar archive: {exc}"
        raise BundleError(f"{name}: not a harness bundle ({why})") from None
    except OSError as exc:
        raise BundleError(f"{name}: cannot be read: {exc.strerror or exc}") from None


def _manifest(folder: Path, name: str) -> list[Record]:
    """The runs of an unpacked bundle, checked against what ``export`` writes and against the files there."""
    try:
        data = json.loads((folder / MANIFEST).read_bytes())
    except (OSError, ValueError):
        raise BundleError(f"{name}: not a harness bundle (no readable {MANIFEST})") from None
    if isinstance(data, dict) and data.get("format") != FORMAT:
        raise BundleError(f"{name}: bundle format {data.get('format')!r}, expected {FORMAT!r}")
    try:
        runs = Manifest.model_validate(data).runs
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "the top level"
        raise BundleError(f"{name}: {MANIFEST} is not what harness export writes: {where}: {err['msg']}") from None
    _check(runs, folder, name)
    return runs


def _check(runs: list[Record], folder: Path, name: str) -> None:
    """Runs that name each run once, every parent before its children, and every artifact file they list."""
    seen: set[str] = set()
    for run in runs:
        parent = run.tags.get(PARENT)
        if run.run_id in seen or (parent is not None and parent not in seen):
            why = "twice" if run.run_id in seen else f"before its parent {parent}, or without it"
            raise BundleError(f"{name}: {MANIFEST} is not what harness export writes: run {run.run_id} comes {why}")
        seen.add(run.run_id)
        missing = [f for f in run.artifacts or [] if not (folder / "artifacts" / run.run_id / f).is_file()]
        if missing:
            raise BundleError(f"{name}: artifact {missing[0]} of run {run.run_id} is missing from the bundle "
                              f"({len(missing)} missing in all)")
    strays = {p.name for p in (folder / "artifacts").glob("*")} - seen
    if strays:
        raise BundleError(f"{name}: artifacts/{min(strays)} belongs to no run in {MANIFEST}")


def _already(client: MlflowClient, experiment_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """Runs this store imported before, by their id in the store they came from: those whole, those not."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{tag.IMPORTED_FROM}` != ''", max_results=50000)
    whole = {r.data.tags[tag.IMPORTED_FROM]: r.info.run_id for r in runs if tag.IMPORTING not in r.data.tags}
    return whole, {r.data.tags[tag.IMPORTED_FROM]: r.info.run_id for r in runs if tag.IMPORTING in r.data.tags}


def import_bundle(source: BinaryIO, name: str, uri: str | None = None) -> tuple[int, int]:
    """Recreate a bundle's runs in the store, all or none; returns (imported, already there)."""
    with tempfile.TemporaryDirectory() as tmp:
        _unpack(source, name, Path(tmp))
        records = _manifest(Path(tmp), name)
        experiment = tracking.connect(uri)
        client, made = MlflowClient(), []
        try:
            skipped = _import(client, experiment, records, Path(tmp) / "artifacts", made)
        except BaseException:
            _delete(client, made)
            raise
    return len(records) - skipped, skipped


def _import(client: MlflowClient, experiment: str, records: list[Record], artifacts: Path, made: list[str]) -> int:
    """The runs not yet whole in this store, each added to ``made`` as it is made; returns how many were there."""
    new_ids, broken = _already(client, experiment)
    skipped = 0
    for rec in records:
        origin = rec.tags.get(tag.IMPORTED_FROM, rec.run_id)  # a run passed on keeps where it began
        if origin in new_ids or rec.run_id in new_ids:
            new_ids[rec.run_id] = new_ids.get(origin) or new_ids[rec.run_id]
            skipped += 1
            continue
        _delete(client, [broken[key] for key in (origin, rec.run_id) if key in broken])  # an import that died
        tags = {k: v for k, v in rec.tags.items() if k != PARENT} | {tag.IMPORTED_FROM: origin, tag.IMPORTING: "true"}
        if PARENT in rec.tags:
            tags[PARENT] = new_ids[rec.tags[PARENT]]
        run_id = client.create_run(experiment, start_time=rec.start_time, tags=tags, run_name=rec.name).info.run_id
        made.append(run_id)
        _fill(client, run_id, rec, artifacts / rec.run_id)
        new_ids[rec.run_id] = new_ids[origin] = run_id
    return skipped


def _fill(client: MlflowClient, run_id: str, rec: Record, artifacts: Path) -> None:
    """A new run's params, curves, artifacts and end; dropping ``harness.importing``, last, says it is whole."""
    retry_locked(tracking.log_batches)(client, run_id, [Metric(*m) for m in rec.metrics],
                                       [Param(k, v) for k, v in rec.params.items()])
    if artifacts.is_dir() and any(artifacts.iterdir()):
        client.log_artifacts(run_id, str(artifacts))
    client.set_terminated(run_id, rec.status, end_time=rec.end_time)
    client.delete_tag(run_id, tag.IMPORTING)


def _delete(client: MlflowClient, run_ids: list[str]) -> None:
    """Delete runs, newest first; one that cannot be is left tagged ``harness.importing`` for the next import."""
    for run_id in reversed(run_ids):
        try:
            client.delete_run(run_id)
        except Exception:  # noqa: BLE001 - the store may be what failed; the next import redoes the run
            pass
