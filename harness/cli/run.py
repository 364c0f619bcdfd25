"""``harness run`` and ``harness reproduce``: run specs, record them in MLflow, print the verdicts; a suite of
them with its report. Both take one option group (``run_options``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from harness.cli.options import EXIT_INCONCLUSIVE, console, err_console, specs_argument, store_option
from harness.cli.report import cmd_report, out_option
from harness.errors import StoreError
from harness.judging.verdict import INCONCLUSIVE, MISSED, REPRODUCED, SKIPPED, Verdict
from harness.schema import Device
from harness.specs.spec import Spec, SpecError, load_specs, spec_paths
from harness.store import tags as tag

if TYPE_CHECKING:
    from harness.execution.runner import SpecResult

STYLE = {REPRODUCED: "green", MISSED: "bold red", INCONCLUSIVE: "magenta", SKIPPED: "yellow"}
DEVICES = Device.__args__  # "cpu", "cuda": what a spec's devices may name


def print_verdicts(spec: Spec, verdicts: list[Verdict], seconds: float) -> None:
    table = Table(title=f"{spec.name}: {spec.title}  ({seconds:.1f} s)", title_justify="left")
    for col in ("ref", "metric", "device", "expected", "measured", "tolerance", "verdict", "shift", "detail"):
        table.add_column(col, overflow="fold")
    for v in verdicts:
        info = ("" if v.gate else " (info)") + (" (weak)" if v.weak else "")
        shift = "" if v.detectable_shift != v.detectable_shift else f"{v.detectable_shift:.3g}"
        table.add_row(v.ref, v.metric, v.device, v.expected, v.measured, v.tolerance,
                      f"[{STYLE[v.status]}]{v.status}{info}[/]", shift, v.detail)
    console.print(table)


def _override_seeds(specs: list[Spec], seeds: str | None) -> list[Spec]:
    if not seeds:
        return specs
    try:
        values = [int(s) for s in seeds.split(",")]
        if not values or any(v < 0 for v in values) or len(set(values)) != len(values):
            raise ValueError
    except ValueError:
        raise SpecError(f"--seeds: expected distinct non-negative integers like 0,1,2, got {seeds!r}") from None
    return [s.model_copy(update={"seeds": values}) for s in specs]


def _only_devices(paths: list[Path], specs: list[Spec], devices: str | None) -> tuple[list[Path], list[Spec]]:
    """The specs with a half on one of ``devices`` (``--devices cuda``); all of them without the option."""
    if not devices:
        return paths, specs
    wanted = devices.split(",")
    if any(d not in DEVICES for d in wanted):
        raise SpecError(f"--devices: expected a comma-separated list of {', '.join(DEVICES)}, got {devices!r}")
    kept = [(p, s) for p, s in zip(paths, specs) if set(s.devices) & set(wanted)]
    if len(kept) < len(specs):
        console.print(f"[dim]{len(specs) - len(kept)} spec(s) have no half on {devices}: not run[/]")
    return [p for p, _ in kept], [s for _, s in kept]


def run_one(path: Path, spec: Spec, nested: bool, executor=None, resume: bool = False,
            only: list[str] | None = None, parent: str = "") -> SpecResult:
    """One spec run (under the active run when ``nested``, or under the run ``parent``); an error that stopped it
    is the result's ``error`` (the run is recorded FAILED, and a suite goes on)."""
    from harness.execution.runner import SpecResult, run_spec

    def progress(device, seed, reused_from):
        what = f"reusing {spec.name} on {device}, seed {seed} from run {reused_from[:8]}" if reused_from else \
            f"running {spec.name} on {device}, seed {seed}"
        console.print(f"[dim]{what}[/]")

    start = time.perf_counter()
    try:
        return run_spec(spec, path, nested=nested, executor=executor, progress=progress, resume=resume, only=only,
                        parent=parent)
    except StoreError:
        raise  # the store failed: no later spec could be recorded, and no report is written
    except Exception as exc:  # noqa: BLE001 - recorded as FAILED; the suite goes on with the next spec
        return SpecResult(path, spec, seconds=time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")


def show(result: SpecResult) -> None:
    """A spec's verdicts as a table, its failures and skips as one line each (stderr)."""
    if result.error:
        err_console.print(f"harness: [bold red]error[/]: {escape(f'{result.path}: {result.error}')}")
        return
    for why in result.broken:
        err_console.print(f"harness: [bold red]error[/]: {escape(f'{result.path} {why}')}")
    print_verdicts(result.spec, result.verdicts, result.seconds)
    for why, devices in result.absent.items():  # skipped, not failed: the exit status stays 0
        err_console.print(f"harness: [yellow]skipped[/]: {escape(f'{result.path} on {chr(44).join(devices)}: {why}')}")


def _pooled_worker(uri: str, experiment: str, threads: int) -> None:
    """A pool worker: this store and experiment, ``threads`` torch threads for every unit that pins none."""
    import torch

    from harness.store import tracking

    tracking.attach(uri, experiment)
    torch.set_num_threads(threads)


def _pooled_spec(path: Path, spec: Spec, parent: str, threads: int, resume: bool,
                 only: list[str] | None) -> SpecResult:
    from harness.execution.executors import Local

    return run_one(path, spec, nested=False, executor=Local(threads), resume=resume, only=only, parent=parent)


Pairs = list[tuple[Path, Spec]]


def pooled(specs: Pairs, executor, jobs: int) -> tuple[Pairs, Pairs]:
    """The specs to run in the pool, and those to run alone: a gating timing claim, or a CUDA half here, needs the
    machine to itself; an information-only timing (lenet-c2's examples/s) is measured in the pool, on one thread,
    as its unit's tags say."""
    from harness.execution.units import plan_for

    if jobs < 2 or executor.name != "local":
        return [], specs
    cuda = executor.cuda()
    alone = [(p, s) for p, s in specs if (cuda and "cuda" in s.devices)
             or ("cpu" in s.devices and any(r.gates_on("cpu") for r in plan_for(s, "cpu").refs))]
    return [x for x in specs if x not in alone], alone


def run_many(paths: list[Path], specs: list[Spec], suite: str | None, resume: bool = False, executor=None,
             only: list[str] | None = None, jobs: int = 1) -> tuple[list[SpecResult], str]:
    """Run specs (inside one parent run when ``suite`` names one) on ``executor`` (default: local), on the devices
    ``only`` names (default: each spec's own). In a suite with ``jobs`` > 1, the specs that time nothing run in a
    pool of ``jobs`` processes, a spec each at a time on one torch thread (or the threads it pins), after the timing
    specs have had the machine to themselves. Returns each spec's result and the suite's run id (or "")."""
    from harness.store import tracking

    pairs = list(zip(paths, specs))
    if not suite:
        results = [run_one(p, s, nested=False, executor=executor, resume=resume, only=only) for p, s in pairs]
        for result in results:
            show(result)
        return results, ""
    from harness.machine import env

    tags = {tag.ROLE: tag.SUITE, tag.SPECS: ",".join(s.name for s in specs), **env.fingerprint(),
            tag.CODE_ID: env.code_id(), tag.JOBS: str(jobs), **session_start()}
    results: list[SpecResult] = []
    with tracking.recorded_run(suite, tags=tags) as run:
        suite_id = run.info.run_id
        in_pool, alone = pooled(pairs, executor, jobs)
        for path, spec in alone:
            results.append(run_one(path, spec, nested=True, executor=executor, resume=resume, only=only))
            show(results[-1])
        if in_pool:
            results += _run_pool(in_pool, suite_id, run.info.experiment_id, jobs, resume, only)
        tracking.log_metrics({"specs.failed": sum(r.failed for r in results),
                              "verdicts.gating_missed": sum(r.missed for r in results),
                              "verdicts.gating_inconclusive": sum(r.inconclusive for r in results)})
    return results, suite_id


def session_start() -> dict[str, str]:
    """The tag of when the command that set this suite up began (``HARNESS_SESSION_START``, Unix seconds: nox's
    reproduce session sets it before it installs), so that the report can state the time install included."""
    import os

    value = os.environ.get("HARNESS_SESSION_START", "")
    try:
        started = float(value)
    except ValueError:
        return {}
    return {tag.SESSION_START: f"{started:.0f}"} if 0 < started <= time.time() else {}


def _run_pool(specs: list[tuple[Path, Spec]], suite_id: str, experiment: str, jobs: int, resume: bool,
              only: list[str] | None) -> list[SpecResult]:
    """The pool: ``jobs`` fresh processes (spawned: no torch state forked), each spec shown as it ends."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import mlflow

    console.print(f"[dim]{len(specs)} spec(s) that time nothing: in {jobs} processes of one thread each[/]")
    out = []
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_pooled_worker,
                             initargs=(mlflow.get_tracking_uri(), experiment, 1)) as pool:
        futures = [pool.submit(_pooled_spec, path, spec, suite_id, 1, resume, only) for path, spec in specs]
        try:
            for future in as_completed(futures):
                out.append(future.result())  # a StoreError in a worker is raised here and ends the suite
                show(out[-1])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return out


def cmd_run(args, suite: str | None = None) -> int:
    specs = _override_seeds(load_specs(args.specs), args.seeds)  # every spec validated before any run
    paths = spec_paths(args.specs)
    if not specs:
        raise SpecError(f"{' '.join(args.specs)}: (files): no spec files found")
    paths, specs = _only_devices(paths, specs, args.devices)
    if not specs:
        raise SpecError(f"--devices {args.devices}: none of the specs runs there")
    from harness.store import tracking  # MLflow loads only once every spec is valid: a bad one is rejected at once

    experiment = tracking.connect(args.tracking_uri)
    from harness.execution.executors import ExecutorError, make

    try:
        executor = make(args.executor, args.ray_address, args.threads)
    except ExecutorError as exc:
        raise SpecError(str(exc)) from None
    try:
        results, suite_id = run_many(paths, specs, suite, resume=args.resume, executor=executor,
                                     only=args.devices.split(",") if args.devices else None,
                                     jobs=pool_size(args) if suite else 1)
    finally:
        executor.close()
    missed, inconclusive = sum(r.missed for r in results), sum(r.inconclusive for r in results)
    failed = sum(r.failed for r in results)
    uri = tracking.tracking_uri(args.tracking_uri)
    where = (f"{uri.rstrip('/')}" if uri.startswith("http") else
             "`mlflow ui` where the store is, then http://127.0.0.1:5000")
    console.print(f"[dim]runs: {where}/#/experiments/{experiment}?workflowType=machine_learning[/]")
    status = 0
    if inconclusive:
        why = "failing: --strict" if args.strict else "not failing without --strict"
        console.print(f"[magenta]{inconclusive} gating reference(s) inconclusive ({why})[/]")
        status = EXIT_INCONCLUSIVE if args.strict else 0
    if missed:
        msg = f"{missed} reference(s) not reproduced"
        console.print(f"[bold red]{msg}[/]" + (" (allowed by --allow-miss)" if args.allow_miss else ""))
        status = status if args.allow_miss else 1
    if failed:
        console.print(f"[bold red]{failed} spec(s) failed to run[/]")
        status = 1
    if suite and not failed and not args.no_report:
        status = max(status, cmd_report(args))
        tracking.log_folder(suite_id, Path(args.out), "report")  # the UI shows the report on the suite it sums up
    return status


def pool_size(args) -> int:
    """``--jobs``, else ``HARNESS_JOBS``, else one process per core for a suite run here (the pool times nothing, so
    it may share the machine); 1 with Ray or ``--threads``."""
    import os

    if args.jobs is not None:
        return args.jobs
    if os.environ.get("HARNESS_JOBS"):
        return int(os.environ["HARNESS_JOBS"])
    return (os.cpu_count() or 1) if args.executor == "local" and not args.threads else 1


def cmd_reproduce(args) -> int:
    return cmd_run(args, suite=f"reproduce {time.strftime('%Y-%m-%d %H:%M:%S')}")


def run_options(sp: argparse.ArgumentParser) -> None:
    """The options ``run`` and ``reproduce`` share: the store, exit rules, seeds, devices, resume, executors."""
    store_option(sp)
    sp.add_argument("--allow-miss", action="store_true", help="exit 0 even when a reference is not reproduced")
    sp.add_argument("--strict", action="store_true",
                    help=f"exit {EXIT_INCONCLUSIVE} when a gating timing reference stays inconclusive")
    sp.add_argument("--seeds", help="override every spec's seeds, e.g. 0,1,2")
    sp.add_argument("--devices", help="run only the specs' halves on these devices, e.g. cuda (a GPU node's "
                                      "share); the others are skipped")
    sp.add_argument("--resume", action="store_true",
                    help="reuse the (spec, device, seed) units that earlier runs in this store finished with the "
                         "same spec, code and environment; run only the rest")
    sp.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="where the (spec, device, seed) units run: here one after another (default), or as Ray "
                         "tasks (pip install -e '.[ray]')")
    sp.add_argument("--ray-address", metavar="ADDR",
                    help="the Ray cluster to join (e.g. auto, or ray://host:10001); default: start one here")
    sp.add_argument("--jobs", type=int, metavar="N",
                    help="a suite's specs that time nothing run in N processes of one thread each, after the timing "
                         "specs (default: HARNESS_JOBS, else one per core; 1: every spec in this process, in turn)")
    sp.add_argument("--threads", type=int, metavar="N",
                    help="threads (and Ray CPUs) of each CPU unit that times nothing (default: one per core "
                         "locally, 1 on Ray); the same N gives the same curves bit for bit on either executor")


def setup_arguments(sub) -> None:
    r = sub.add_parser("run", help="run specs, record them in MLflow, print verdicts")
    specs_argument(r)
    run_options(r)
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("reproduce", help="run a directory of specs as one suite, then write the report")
    specs_argument(s, default=["experiments"])
    run_options(s)
    s.add_argument("--no-report", action="store_true", help="record the suite, write no report (a GPU node's run)")
    out_option(s)
    s.set_defaults(func=cmd_reproduce)
