"""The store's suites and spec runs, found by what a user calls them, and every number they measured.

``suites`` lists the suite runs, ``resolve`` finds the spec runs behind a suite, a spec run, a git commit or
``latest``, and ``samples`` gives every number a spec run measured with the values behind it (the rounds of a
timing, the seeds of anything else), which ``harness compare`` and the report's history judge.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow import MlflowClient

from harness.reading import renames
from harness.reading.view import RunView
from harness.store import tags as tag
from harness.store import tracking

ENDED = ("FINISHED", "FAILED")  # a suite that ended FAILED still holds the spec runs that finished


class ResultsError(LookupError):
    """A table, run or suite the store does not hold; the message is one line."""


def _experiment(tracking_uri: str | None) -> str:
    exp_id = tracking.connect(tracking_uri, create=False)
    if exp_id is None:
        raise ResultsError(f"{tracking.tracking_uri(tracking_uri)} holds no harness runs: run `harness reproduce`")
    return exp_id


def suites(tracking_uri: str | None = None) -> pd.DataFrame:
    """The suite runs (one per ``harness reproduce``) that ended, newest first, with their tags."""
    runs = mlflow.search_runs([_experiment(tracking_uri)], filter_string=f"tags.`{tag.ROLE}` = '{tag.SUITE}'",
                              order_by=["attributes.start_time DESC"])
    return runs[runs["status"].isin(ENDED)].reset_index(drop=True) if not runs.empty else runs


def find_run(ref: str, experiment_id: str) -> str:
    """A run id from a full id or a prefix of at least 6 characters."""
    if len(ref) < 6:
        raise ResultsError(f"{ref}: give a run id, at least its first 6 characters, or latest")
    found = [r.info.run_id for r in MlflowClient().search_runs([experiment_id], max_results=50000)
             if r.info.run_id.startswith(ref)]
    if not found:
        raise ResultsError(f"{ref}: no run id in this store starts so")
    if len(found) > 1:
        raise ResultsError(f"{ref}: {len(found)} run ids in this store start so: give more characters")
    return found[0]


def _row(run_id: str) -> pd.Series:
    return mlflow.search_runs(search_all_experiments=True, filter_string=f"attributes.run_id = '{run_id}'").iloc[0]


@dataclass
class RunSet:
    """The runs a reference named: a suite or one spec run (``role``), the spec runs it holds by spec name."""

    ref: str
    role: str  # tags.SUITE or tags.SPEC
    row: pd.Series
    runs: dict[str, pd.Series]

    @property
    def label(self) -> str:
        started = pd.Timestamp(self.row["start_time"]).strftime("%Y-%m-%d %H:%M")
        commit = str(self.row.get("tags.git.commit") or "?")[:10]
        return f"{self.role} {self.row['run_id'][:8]} ({self.row.get('tags.mlflow.runName', '')}, {started}, {commit})"

    def tag(self, name: str) -> str:
        return tag.value(self.row, name)


def _git_commit(ref: str) -> str | None:
    """The full hash ``ref`` names in the git repository here (a hash, a branch, HEAD~1), or None."""
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def resolve(ref: str, tracking_uri: str | None = None) -> RunSet:
    """``latest`` (the newest suite; ``latest~1`` the one before), a suite or spec run (its id or first characters),
    or a git commit (the newest suite that ran at it: a hash or its first characters, or anything ``git rev-parse``
    knows here)."""
    exp_id = _experiment(tracking_uri)
    all_suites = suites(tracking_uri)
    back = re.fullmatch(r"latest(?:~(\d+))?", ref)
    if back:
        n = int(back.group(1) or 0)
        if len(all_suites) <= n:
            held = f"{len(all_suites)} suite run(s)" if len(all_suites) else "no suite run"
            raise ResultsError(f"{ref}: this store holds {held} (harness reproduce makes one)")
        return of_suite(all_suites.iloc[n])
    if re.fullmatch(r"[0-9a-f]{6,40}", ref):
        try:
            row = _row(find_run(ref, exp_id))
        except ResultsError:
            pass
        else:
            if tag.value(row, tag.ROLE) == tag.SUITE:
                return of_suite(row)
            if tag.value(row, tag.ROLE) == tag.SPEC:
                if row["status"] != "FINISHED":
                    raise ResultsError(f"{ref}: spec run {row['run_id'][:8]} ended {row['status']}, not FINISHED")
                return RunSet(ref, tag.SPEC, row, {tag.value(row, tag.SPEC_NAME): row})
            raise ResultsError(f"{ref}: run {row['run_id'][:8]} is a unit run: give its suite or spec run")
    commit = ref if re.fullmatch(r"[0-9a-f]{7,40}", ref) else _git_commit(ref)
    if commit and not all_suites.empty:
        at = all_suites[all_suites["tags.git.commit"].fillna("").str.startswith(commit)]
        if not at.empty:
            return of_suite(at.iloc[0])
    if commit:
        raise ResultsError(f"{ref}: no suite in this store ran at commit {commit[:10]}")
    raise ResultsError(f"{ref}: not a run id (its first 6 characters or more), a git commit, or latest")


SAME_CODE_AND_MACHINE = (f"tags.{tag.CODE_ID}", "tags.cpu.model", "tags.gpu.model", "tags.torch.threads")


def same_commit_pair(tracking_uri: str | None = None) -> tuple[RunSet, RunSet] | None:
    """The newest two suites that ran the same code on one kind of machine (an A/A pair), older first."""
    found = suites(tracking_uri)
    if found.empty or not set(SAME_CODE_AND_MACHINE) <= set(found.columns):
        return None
    for _, group in found.groupby(list(SAME_CODE_AND_MACHINE), sort=False):  # newest first, as suites() orders
        if len(group) >= 2:
            return of_suite(group.iloc[1]), of_suite(group.iloc[0])
    return None


def of_suite(row: pd.Series, ref: str = "") -> RunSet:
    """A suite run and the finished spec runs under it."""
    runs = tracking.child_runs(row["run_id"], tag.SPEC)
    by_name = ({name: runs.iloc[rows[0]] for name, rows in runs.groupby(tag.column(tag.SPEC_NAME)).indices.items()}
               if len(runs) else {})  # the newest run of each spec: its first row
    return RunSet(ref or row["run_id"], tag.SUITE, row, by_name)


# ---- samples: what compare and the history judge ---------------------------------------------------------


def samples(row: pd.Series, metrics: set[str] | None = None) -> pd.DataFrame:
    """Every number a spec run measured (or those in ``metrics``), per (device, metric): its values and what they are.

    ``basis`` is ``rounds`` for a timing (the per-round values of every seed, pooled, and every ``round.*`` curve
    a unit logged) and ``seeds`` otherwise (one value per seed, in ``seeds``).
    """
    view = RunView(row)
    client, out = MlflowClient(), []
    for device, by_seed in view.measured.items():
        rounds: dict[str, list[float]] = {}
        per_seed: dict[str, dict[int, float]] = {}
        for seed, m in by_seed.items():
            timed = m.get("rounds", {})
            for metric, values in timed.items():
                rounds.setdefault(metric, []).extend(float(v) for v in values)
            for metric, value in m.items():
                if metric not in timed and tracking.is_finite_number(value):
                    per_seed.setdefault(metric, {})[int(seed)] = float(value)
            unit = view.units.get((device, str(seed)))
            for key in sorted(client.get_run(unit).data.metrics) if unit else []:
                name = renames.current(key[6:])
                if key.startswith("round.") and name not in timed and (metrics is None or name in metrics):
                    history = tracking.metric_history(unit, key)
                    rounds.setdefault(name, []).extend(history["value"].tolist())
        out += [{"device": device, "metric": k, "basis": "rounds", "values": v, "seeds": []}
                for k, v in rounds.items() if metrics is None or k in metrics]
        out += [{"device": device, "metric": k, "basis": "seeds", "values": list(v.values()), "seeds": list(v)}
                for k, v in per_seed.items() if metrics is None or k in metrics]
    return pd.DataFrame(out, columns=["device", "metric", "basis", "values", "seeds"])


def machine(row: pd.Series, device: str) -> str:
    """The model of the device a spec run measured on (its CPU or its GPU)."""
    tag = "gpu.model" if device == "cuda" else "cpu.model"
    value = row.get(f"tags.{tag}")
    return str(value) if isinstance(value, str) and value else "unknown"
