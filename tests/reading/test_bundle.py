"""export/import: a suite recorded in one store joins another's report, curves, artifacts and all."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from harness.cli import main
from harness.reading import bundle
from harness.store import tags as tag
from harness.store import tracking
from harness.store.locks import StoreError
from tests.execution.test_runner import SPEC

ROOT = Path(__file__).resolve().parents[2]


def snapshot(uri: str) -> dict:
    """Every run by (role, name): status, times, params, non-harness tags, metric histories, artifact paths."""
    mlflow.set_tracking_uri(uri)
    client, out = MlflowClient(), {}
    for run in mlflow.search_runs(search_all_experiments=True, output_format="list"):
        info, data = run.info, run.data
        out[(data.tags.get("harness.role"), info.run_name)] = {
            "status": info.status, "times": (info.start_time, info.end_time), "params": data.params,
            "tags": {k: v for k, v in data.tags.items() if k not in ("mlflow.parentRunId", "harness.imported_from")},
            "metrics": {k: [(m.step, m.value) for m in client.get_metric_history(info.run_id, k)]
                        for k in data.metrics},
            "artifacts": tracking.artifact_paths(info.run_id)}
    return out


def test_a_suite_moves_between_stores(write_spec, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    here, there = f"sqlite:///{tmp_path / 'here.db'}", f"sqlite:///{tmp_path / 'there.db'}"
    edge = write_spec(SPEC | {"devices": ["cpu"]})
    assert main(["reproduce", "--tracking-uri", here, "--out", str(tmp_path / "r1"), str(edge),
                 str(ROOT / "experiments/worked-pooling.yaml")]) == 0
    assert main(["run", "--tracking-uri", there, str(ROOT / "experiments/worked-convolution.yaml")]) == 0
    bundle = tmp_path / "suite.tar.gz"
    assert main(["export", "--tracking-uri", here, "latest", "-o", str(bundle)]) == 0
    capsys.readouterr()
    assert main(["import", "--tracking-uri", there, str(bundle)]) == 0
    assert capsys.readouterr().out.startswith("imported 6 run(s) into ")  # suite, 2 specs, 2 + 1 units

    before, after = snapshot(here), snapshot(there)
    assert before.items() <= after.items()  # every run, whole, with its times, tags, curves and artifacts
    imported = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`harness.imported_from` != ''")
    parents = set(imported["tags.mlflow.parentRunId"].dropna())
    assert parents <= set(imported["run_id"])  # the tree is rebuilt on the new ids

    assert main(["import", "--tracking-uri", there, str(bundle)]) == 0  # a second import adds nothing
    assert "imported 0 run(s)" in capsys.readouterr().out
    assert len(snapshot(there)) == len(after)

    assert main(["report", "--tracking-uri", there, "--out", str(tmp_path / "r2")]) == 0
    report = (tmp_path / "r2" / "REPORT.md").read_text()
    for name in ("edge-small", "worked-pooling", "worked-convolution"):
        assert f'<a id="{name}"></a>' in report


def test_one_spec_run_by_prefix_through_stdout(write_spec, tmp_path, monkeypatch, capsysbinary):
    monkeypatch.chdir(tmp_path)
    here, there = f"sqlite:///{tmp_path / 'here.db'}", f"sqlite:///{tmp_path / 'there.db'}"
    assert main(["run", "--tracking-uri", here, str(ROOT / "experiments/worked-pooling.yaml")]) == 0
    mlflow.set_tracking_uri(here)
    spec_id = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`harness.role` = 'spec'")
    capsysbinary.readouterr()
    assert main(["export", "--tracking-uri", here, spec_id["run_id"].iloc[0][:8]]) == 0
    (tmp_path / "b.tgz").write_bytes(capsysbinary.readouterr().out)
    assert main(["import", "--tracking-uri", there, str(tmp_path / "b.tgz")]) == 0
    mlflow.set_tracking_uri(there)
    runs = mlflow.search_runs(search_all_experiments=True)
    assert sorted(runs["tags.harness.role"]) == ["spec", "unit"]
    root = runs[runs["tags.harness.role"] == "spec"].iloc[0]
    assert root["status"] == "FINISHED" and pd_isna(root.get("tags.mlflow.parentRunId"))


def pd_isna(value) -> bool:
    return value is None or value != value


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, bytes]:
    """A store holding one worked-pooling spec run and its units (run once for the module), and their bundle."""
    where = tmp_path_factory.mktemp("recorded")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(where)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{where / 'mlflow.db'}")
        mp.setenv("MLFLOW_EXPERIMENT_NAME", "")
        assert main(["run", str(ROOT / "experiments/worked-pooling.yaml")]) == 0
        spec = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`harness.role` = 'spec'")
        assert main(["export", spec["run_id"].iloc[0], "-o", str(where / "good.tgz")]) == 0
    return where / "mlflow.db", (where / "good.tgz").read_bytes()


@pytest.fixture
def here(recorded, store, tmp_path) -> str:
    """This test's store: a copy of the recorded one."""
    shutil.copy(recorded[0], tmp_path / "mlflow.db")
    return store


def every_run(uri: str) -> list[tuple[str, str, str]]:
    """Every run in the store, deleted ones too: id, status, lifecycle stage."""
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return sorted((r.info.run_id, r.info.status, r.info.lifecycle_stage)
                  for r in client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=50000))


@pytest.mark.parametrize(("argv", "status", "message"), [
    (["export", "nosuch"], 2, "nosuch: not a run id (its first 6 characters or more), a git commit, or latest"),
    (["export", "abc"], 2, "abc: not a run id (its first 6 characters or more), a git commit, or latest"),
    (["export", "latest"], 2, "latest: this store holds no suite run"),
    (["export", "latest", "--tracking-uri", "sqlite:///empty.db"], 5, "sqlite:///empty.db: no harness runs"),
])
def test_bad_export_is_one_line(argv, status, message, here, tmp_path, capsys):
    assert main([*argv, "-o", str(tmp_path / "x.tgz")]) == status
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "x.tgz").exists()  # no half-written bundle


def test_export_into_a_missing_folder_is_one_line(here, tmp_path, capsys):
    out = tmp_path / "nosuch" / "x.tgz"
    assert main(["export", every_run(here)[0][0], "-o", str(out)]) == 5
    assert capsys.readouterr().err == f"harness: error: {out}: No such file or directory\n"


def members(good: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """A bundle's members, each with its bytes (None for a folder)."""
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]  # type: ignore[union-attr]


def pack(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A gzipped tar of these members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return buf.getvalue()


def file(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, (data if kind == tarfile.REGTYPE else None)


def manifest(good: bytes) -> dict:
    return json.loads(dict((m.name, d) for m, d in members(good))["runs.json"])


def with_manifest(change: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    """A bundle whose runs.json is ``change(manifest)``, as JSON (or as is, if bytes)."""
    def make(good: bytes) -> bytes:
        new = change(manifest(good))
        data = new if isinstance(new, bytes) else json.dumps(new).encode()
        return pack([(m, data if m.name == "runs.json" else d) for m, d in members(good)])
    return make


def edit_run(change: Callable[[dict], None], index: int = 0) -> Callable[[bytes], bytes]:
    """A bundle whose ``index``-th run in runs.json is changed in place."""
    def apply(data: dict) -> dict:
        change(data["runs"][index])
        return data
    return with_manifest(apply)


def without(pick: Callable[[tarfile.TarInfo], bool]) -> Callable[[bytes], bytes]:
    """A bundle without the first member ``pick`` chooses."""
    def make(good: bytes) -> bytes:
        entries = members(good)
        first = next(i for i, (m, _) in enumerate(entries) if pick(m))
        return pack(entries[:first] + entries[first + 1:])
    return make


def adding(*extra: tuple) -> Callable[[bytes], bytes]:
    return lambda good: pack(members(good) + list(extra))


def flipped(good: bytes) -> bytes:
    """Damaged in transfer: bytes in the middle of the compressed stream changed."""
    middle = len(good) // 2
    return good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 16]) + good[middle + 16:]


BROKEN: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "cut-in-half": (lambda good: good[: len(good) // 2], "cut short"),
    "cut-in-the-gzip-trailer": (lambda good: good[:-4], "cut short"),
    "damaged": (flipped, "damaged"),
    "damaged-checksum": (lambda good: good[:-8] + bytes(b ^ 0xFF for b in good[-8:-4]) + good[-4:],
                         "damaged (gzip: CRC check failed"),
    "empty": (lambda good: b"", "it is empty"),
    "not-gzip": (lambda good: b"not a tar", "not a gzip file"),
    "gzip-not-tar": (lambda good: gzip.compress(b"hello, " * 500), "not a tar archive"),
    "uncompressed-tar": (lambda good: gzip.decompress(good), "not a gzip file"),
    "no-manifest": (without(lambda m: m.name == "runs.json"), "no readable runs.json"),
    "manifest-not-json": (with_manifest(lambda d: b"{not json"), "no readable runs.json"),
    "manifest-a-list": (with_manifest(lambda d: d["runs"]), "the top level: Input should be a valid dictionary"),
    "wrong-format": (with_manifest(lambda d: d | {"format": "harness-bundle/9"}), "bundle format 'harness-bundle/9'"),
    "no-runs": (with_manifest(lambda d: d | {"runs": []}), "runs: List should have at least 1 item"),
    "missing-key": (edit_run(lambda r: r.pop("metrics")), "runs.0.metrics: Field required"),
    "wrong-type": (edit_run(lambda r: r.update(params=["a", "b"])), "runs.0.params: Input should be a valid dict"),
    "open-run": (edit_run(lambda r: r.update(status="RUNNING")), "runs.0.status: Input should be 'FINISHED'"),
    "path-as-run-id": (edit_run(lambda r: r.update(run_id="../../etc")), "runs.0.run_id: String should match"),
    "parent-missing": (edit_run(lambda r: r["tags"].update({"mlflow.parentRunId": "f" * 32}), -1),
                       "before its parent " + "f" * 32),
    "run-twice": (with_manifest(lambda d: d | {"runs": d["runs"] + d["runs"][-1:]}), "comes twice"),
    "artifact-missing": (without(lambda m: m.isfile() and m.name.startswith("artifacts/")), "is missing from"),
    "artifacts-of-no-run": (adding(file(f"artifacts/{'e' * 32}/x.json")), f"artifacts/{'e' * 32} belongs to no run"),
    "absolute-member": (adding(file("/tmp/evil.txt")), "'/tmp/evil.txt' points outside the bundle"),
    "member-with-dotdot": (adding(file("artifacts/../../evil.txt")), "points outside the bundle"),
    "symlink-member": (adding(file("artifacts/link", kind=tarfile.SYMTYPE, link="/etc/passwd")),
                       "'artifacts/link' is not one harness export writes"),
    "stray-member": (adding(file("notes.txt")), "'notes.txt' is not one harness export writes"),
    "member-under-the-manifest": (adding(file("runs.json/x")), "'runs.json/x' is not one harness export writes"),
    "member-without-a-name": (adding(file("")), "'' is not one harness export writes"),
}


def on_disk(case: str, tmp_path: Path, good: bytes) -> Path:
    """The path the broken bundle of ``case`` is given as."""
    path = tmp_path / f"{case}.tgz"
    if case == "a-folder":
        path.mkdir()
    elif case == "unreadable":
        path.write_bytes(good)
        path.chmod(0)
    elif case != "missing":
        path.write_bytes(BROKEN[case][0](good))
    return path


@pytest.mark.parametrize(("case", "message"), [(case, why) for case, (_, why) in BROKEN.items()] + [
    ("missing", "No such file or directory"), ("a-folder", "Is a directory"), ("unreadable", "Permission denied")])
def test_a_broken_bundle_is_one_line_and_adds_nothing(case, message, recorded, here, tmp_path, capsys):
    if case == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    path, before = on_disk(case, tmp_path, recorded[1]), every_run(here)
    capsys.readouterr()
    assert main(["import", str(path)]) == 5
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {path}: ") and err.count("\n") == 1, err
    assert message in err
    assert every_run(here) == before  # no run made, not even one deleted since
    assert not list(tmp_path.glob("*evil*")) and not Path("/tmp/evil.txt").exists()


def failing_on(n: int, monkeypatch) -> None:
    """The store fails while the ``n``-th run of an import is logged."""
    calls, log = [], tracking.log_batches

    def log_batches(client, run_id, *args):
        calls.append(run_id)
        if len(calls) == n:
            raise StoreError("the disk is full")
        return log(client, run_id, *args)

    monkeypatch.setattr(tracking, "log_batches", log_batches)


def imported(uri: str) -> list:
    """The runs imported into a store that the harness reads (not deleted)."""
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.`harness.imported_from` != ''")


def test_an_import_that_fails_half_way_leaves_the_store_as_it_was(recorded, here, tmp_path, monkeypatch, capsys):
    there = f"sqlite:///{tmp_path / 'there.db'}"
    (tmp_path / "good.tgz").write_bytes(recorded[1])
    with monkeypatch.context() as mp:
        failing_on(2, mp)
        assert main(["import", "--tracking-uri", there, "good.tgz"]) == 4
    assert capsys.readouterr().err == "harness: error: the disk is full\n"
    assert imported(there) == []  # the first run, whole, was deleted with the second
    assert main(["import", "--tracking-uri", there, "good.tgz"]) == 0
    assert capsys.readouterr().out.startswith("imported 2 run(s) into ")
    assert main(["import", "--tracking-uri", there, "good.tgz"]) == 0
    assert "imported 0 run(s)" in capsys.readouterr().out
    assert snapshot(there) == snapshot(here)


def test_an_import_killed_half_way_is_finished_by_the_next(recorded, here, tmp_path, monkeypatch, capsys):
    there = f"sqlite:///{tmp_path / 'there.db'}"
    (tmp_path / "good.tgz").write_bytes(recorded[1])
    with monkeypatch.context() as mp:
        failing_on(2, mp)
        mp.setattr(bundle, "_delete", lambda client, run_ids: None)  # killed: nothing cleans up
        assert main(["import", "--tracking-uri", there, "good.tgz"]) == 4
    left = imported(there)
    assert sorted(tag.IMPORTING in r.data.tags for r in left) == [False, True]  # one whole, one half-made
    capsys.readouterr()
    assert main(["import", "--tracking-uri", there, "good.tgz"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("imported 1 run(s) into ") and "; 1 were already there" in out
    runs = imported(there)
    assert len(runs) == 2 and not any(tag.IMPORTING in r.data.tags for r in runs)
    assert {r.info.run_id for r in runs} > {r.info.run_id for r in left if tag.IMPORTING not in r.data.tags}
    assert snapshot(there) == snapshot(here)


def test_a_bundle_through_stdin(recorded, store, tmp_path, monkeypatch, capsys):
    stdin = type("Stdin", (), {})
    monkeypatch.setattr("sys.stdin", stdin)
    stdin.buffer = io.BytesIO(recorded[1][:-100])
    assert main(["import", "-"]) == 5
    assert capsys.readouterr().err == ("harness: error: (stdin): the bundle is cut short (its compressed data ends "
                                       "early): copy it again\n")
    stdin.buffer = io.BytesIO(recorded[1])
    assert main(["import", "-"]) == 0
    assert capsys.readouterr().out.startswith("imported 2 run(s) into ")
    assert len(imported(store)) == 2
