"""Where units run: here, one after another (``local``, the default), or as Ray tasks on a cluster (``ray``).

Either way each (spec, device, seed) unit records its own child run in the shared store and comes back as one
``Outcome``; a unit that fails, or whose Ray worker dies, ends its run FAILED and the others go on. The thread count
is part of the computation, so a CPU unit runs on as many threads as it was given CPUs (docs/internals.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow

from harness.book.data import DataMissing
from harness.execution.units import Unit, run_unit
from harness.machine import env
from harness.machine.timing import cpu_threads
from harness.schema import first_line
from harness.store import tracking
from harness.store.locks import StoreError, sqlite_path

RAY_INSTALL = "--executor ray needs Ray, an optional extra: pip install -e '.[ray]'"
OnStart = Callable[[Unit], None]


class ExecutorError(RuntimeError):
    """An executor cannot start (Ray missing, cluster unreachable); the message is one line."""


@dataclass(frozen=True)
class Outcome:
    """What became of one unit: its measurements, or why there are none."""

    values: dict[str, Any] | None = None
    skipped: str = ""  # the data set was not found: nothing measured, nothing failed
    error: str = ""  # the unit failed; its run ended FAILED
    model: str = ""  # the CPU or GPU it ran on


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"[:500]


def execute(unit: Unit, run_id: str | None = None, threads: int | None = None) -> Outcome:
    """Run one unit in this process on ``threads`` threads and say what became of it."""
    model = env.device_model(unit.device)
    try:
        with cpu_threads(threads):
            return Outcome(values=run_unit(unit, run_id), model=model)
    except DataMissing as exc:
        return Outcome(skipped=str(exc), model=model)
    except StoreError:
        raise  # the store failed, not the unit: nothing after it could be recorded
    except Exception as exc:  # noqa: BLE001 - recorded (the run ended FAILED) and reported; the others go on
        return Outcome(error=_error(exc), model=model)


class Local:
    """Today's serial path: every unit in this process, in order. A device whose data is missing runs no more.

    A CPU unit that times nothing runs on ``threads`` threads (default: torch's, one per core); a timing one on all.
    """

    name = "local"
    no_gpu = "no GPU found (torch.cuda.is_available() is False)"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def cuda(self) -> bool:
        return env.cuda_available()

    def run(self, units: list[Unit], on_start: OnStart) -> dict[tuple[str, int], Outcome]:
        out: dict[tuple[str, int], Outcome] = {}
        absent: dict[str, str] = {}
        for unit in units:
            if unit.device in absent:
                out[unit.key] = Outcome(skipped=absent[unit.device])
                continue
            on_start(unit)
            out[unit.key] = execute(unit, threads=unit.spec.threads or (None if unit.timed else self.threads))
            if out[unit.key].skipped:
                absent[unit.device] = out[unit.key].skipped
        return out

    def close(self) -> None:
        pass


def _ray_unit(uri: str, experiment_id: str, unit: Unit, run_id: str) -> Outcome:
    """A Ray task: one unit in its scheduled run, on as many threads as Ray gave it CPUs."""
    import ray

    tracking.attach(uri, experiment_id)
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    return execute(unit, run_id, threads=max(1, int(cpus)))


class Ray:
    """Each unit a Ray task (``max_retries=0``: a unit's run is started once); the driver waits for all of them."""

    name = "ray"
    no_gpu = "no GPU found (the Ray cluster has no GPU resource)"

    def __init__(self, address: str | None = None, threads: int | None = None) -> None:
        self.threads = threads or 1
        try:
            import ray
        except ImportError:
            raise ExecutorError(RAY_INSTALL) from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            try:
                ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                         configure_logging=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorError(f"--ray-address {address}: cannot join the Ray cluster: {_error(exc)}") from None
        self.task = ray.remote(max_retries=0)(_ray_unit)

    def cuda(self) -> bool:
        return self.ray.cluster_resources().get("GPU", 0) > 0

    def node_cpus(self) -> float:
        return max(n["Resources"].get("CPU", 0) for n in self.ray.nodes() if n["Alive"]) or 1

    def resources(self, unit: Unit) -> dict[str, float]:
        if unit.device == "cuda":
            return {"num_cpus": 1, "num_gpus": 1}
        return {"num_cpus": unit.spec.threads or (self.node_cpus() if unit.timed else self.threads), "num_gpus": 0}

    def run(self, units: list[Unit], on_start: OnStart) -> dict[tuple[str, int], Outcome]:
        uri = mlflow.get_tracking_uri()
        path = sqlite_path(uri)
        uri = f"sqlite:///{path}" if path else uri  # workers may start in another directory
        experiment = mlflow.active_run().info.experiment_id
        pending: dict[Any, tuple[Unit, str]] = {}
        for unit in units:
            run_id = tracking.schedule_run(unit.name, unit.tags)
            ref = self.task.options(name=unit.name, **self.resources(unit)).remote(uri, experiment, unit, run_id)
            pending[ref] = (unit, run_id)
            on_start(unit)
        out: dict[tuple[str, int], Outcome] = {}
        try:
            while pending:
                done, _ = self.ray.wait(list(pending), num_returns=1)
                unit, run_id = pending.pop(done[0])
                try:
                    out[unit.key] = self.ray.get(done[0])
                except Exception as exc:  # noqa: BLE001 - the worker died, or Ray lost the task
                    why = _error(exc)
                    tracking.end_if_open(run_id, "FAILED", f"Ray task failed: {why}")
                    out[unit.key] = Outcome(error=why)
        except KeyboardInterrupt:
            for ref, (_, run_id) in pending.items():
                self.ray.cancel(ref, force=True)
                tracking.end_if_open(run_id, "KILLED", "interrupted")
            raise
        return out

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make(name: str, address: str | None = None, threads: int | None = None) -> Local | Ray:
    """The executor called ``name`` (``local`` or ``ray``)."""
    if threads is not None and threads < 1:
        raise ExecutorError(f"--threads: expected a positive number of threads, got {threads}")
    if name == "ray":
        return Ray(address, threads)
    if address:
        raise ExecutorError("--ray-address needs --executor ray")
    return Local(threads)
