"""``harness run`` and ``harness reproduce``: run specs, record them in MLflow, print the verdicts; a suite of
them with its report. Both take one option group (``run_options``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from harness.cli.options import EXIT_INCONCLUSIVE, console, err_console, specs_argument, store_option
from harness.cli.report import cmd_report, out_option
from harness.judging.verdict import INCONCLUSIVE, MISSED, REPRODUCED, SKIPPED, Verdict
from harness.schema import Device
from harness.specs.spec import Spec, SpecError, load_specs, spec_paths
from harness.store.locks import StoreError

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


def run_many(paths: list[Path], specs: list[Spec], suite: str | None,
             resume: bool = False, executor=None, only: list[str] | None = None) -> tuple[int, int, int, str]:
    """Run specs (inside one parent run when ``suite`` names one) on ``executor`` (default: local), on the devices
    ``only`` names (default: each spec's own); returns (missed, inconclusive, failed, the suite's run id or ""),
    where a spec with a failed unit counts as failed."""
    from harness.execution.runner import run_spec
    from harness.store import tracking

    missed = inconclusive = failed = 0

    def one(path: Path, spec: Spec, nested: bool) -> None:
        nonlocal missed, inconclusive, failed
        start = time.perf_counter()
        def on_seed(device, seed, reused_from):
            if reused_from:
                console.print(f"[dim]reusing {spec.name} on {device}, seed {seed} from run {reused_from[:8]}[/]")
            else:
                console.print(f"[dim]running {spec.name} on {device}, seed {seed}[/]")
        absent: dict[str, list[str]] = {}  # a data set's not-found message -> the devices it skipped
        broken: list[str] = []

        def on_fail(device, seed, why):
            broken.append(why)
            err_console.print(f"harness: [bold red]error[/]: {escape(f'{path} on {device}, seed {seed}: {why}')}")
        try:
            verdicts = run_spec(spec, path, nested=nested, executor=executor, on_seed=on_seed, resume=resume,
                                on_skip=lambda device, why: absent.setdefault(why, []).append(device),
                                on_fail=on_fail, only=only)
        except StoreError:
            raise  # the store failed: no later spec could be recorded, and no report is written
        except Exception as exc:  # recorded as FAILED; the suite goes on with the next spec
            failed += 1
            err_console.print(f"harness: [bold red]error[/]: {escape(f'{path}: {type(exc).__name__}: {exc}')}")
            return
        failed += bool(broken)
        print_verdicts(spec, verdicts, time.perf_counter() - start)
        for why, devices in absent.items():  # skipped, not failed: the exit status stays 0
            where = f"{path} on {','.join(devices)}"
            err_console.print(f"harness: [yellow]skipped[/]: {escape(f'{where}: {why}')}")
        missed += sum(v.gating_miss for v in verdicts)
        inconclusive += sum(v.gating_inconclusive for v in verdicts)

    if suite:
        from harness.machine import env

        tags = {tracking.ROLE: "suite", "specs": ",".join(s.name for s in specs), **env.fingerprint(),
                tracking.CODE_ID: env.code_id()}
        with tracking.recorded_run(suite, tags=tags) as run:
            suite_id = run.info.run_id
            for path, spec in zip(paths, specs):
                one(path, spec, nested=True)
            tracking.log_metrics({"specs.failed": failed, "verdicts.gating_missed": missed,
                                  "verdicts.gating_inconclusive": inconclusive})
    else:
        suite_id = ""
        for path, spec in zip(paths, specs):
            one(path, spec, nested=False)
    return missed, inconclusive, failed, suite_id


def cmd_run(args, suite: str | None = None) -> int:
    from harness.store import tracking

    specs = _override_seeds(load_specs(args.specs), args.seeds)  # every spec validated before any run
    paths = spec_paths(args.specs)
    if not specs:
        raise SpecError(f"{' '.join(args.specs)}: (files): no spec files found")
    paths, specs = _only_devices(paths, specs, args.devices)
    if not specs:
        raise SpecError(f"--devices {args.devices}: none of the specs runs there")
    experiment = tracking.connect(args.tracking_uri)
    from harness.execution.executors import ExecutorError, make

    try:
        executor = make(args.executor, args.ray_address, args.threads)
    except ExecutorError as exc:
        raise SpecError(str(exc)) from None
    try:
        missed, inconclusive, failed, suite_id = run_many(paths, specs, suite, resume=args.resume, executor=executor,
                                                only=args.devices.split(",") if args.devices else None)
    finally:
        executor.close()
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
