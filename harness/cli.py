"""The ``harness`` command: run, reproduce, list, show, report.

Exit status: 0 no gating reference was decisively not reproduced; 1 one was (unless --allow-miss)
or a run failed; 2 a bad spec or bad arguments; 3 with --strict, a gating timing reference stayed
inconclusive; 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.spec import Spec, SpecError, load_specs, spec_paths
from harness.verdict import INCONCLUSIVE, MISSED, REPRODUCED, SKIPPED, Verdict

console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line
STYLE = {REPRODUCED: "green", MISSED: "bold red", INCONCLUSIVE: "magenta", SKIPPED: "yellow"}
EXIT_INCONCLUSIVE = 3
RESUME_HELP = ("reuse the (spec, device, seed) units that earlier runs in this store finished with the same spec, "
               "code and environment; run only the rest")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def print_verdicts(spec: Spec, verdicts: list[Verdict], seconds: float) -> None:
    table = Table(title=f"{spec.name}: {spec.title}  ({seconds:.1f} s)", title_justify="left")
    for col in ("ref", "metric", "device", "expected", "measured", "tolerance", "verdict", "detail"):
        table.add_column(col, overflow="fold")
    for v in verdicts:
        info = "" if v.gate else " (info)"
        table.add_row(v.ref, v.metric, v.device, v.expected, v.measured, v.tolerance,
                      f"[{STYLE[v.status]}]{v.status}{info}[/]", v.detail)
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


# The runner, tracking and report import MLflow (about 2 s): only the commands that open a store load them.


def run_many(paths: list[Path], specs: list[Spec], suite: str | None,
             resume: bool = False) -> tuple[int, int, int]:
    """Run specs (inside one parent run when ``suite`` names one); returns (missed, inconclusive, failed)."""
    from harness import tracking
    from harness.runner import run_spec

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
        try:
            verdicts = run_spec(spec, path, nested=nested, on_seed=on_seed, resume=resume,
                                on_skip=lambda device, why: absent.setdefault(why, []).append(device))
        except Exception as exc:  # recorded as FAILED; the suite goes on with the next spec
            failed += 1
            err_console.print(f"harness: [bold red]error[/]: {escape(f'{path}: {type(exc).__name__}: {exc}')}")
            return
        print_verdicts(spec, verdicts, time.perf_counter() - start)
        for why, devices in absent.items():  # skipped, not failed: the exit status stays 0
            where = f"{path} on {','.join(devices)}"
            err_console.print(f"harness: [yellow]skipped[/]: {escape(f'{where}: {why}')}")
        missed += sum(v.gating_miss for v in verdicts)
        inconclusive += sum(v.gating_inconclusive for v in verdicts)

    if suite:
        from harness import env

        tags = {tracking.ROLE: "suite", "specs": ",".join(s.name for s in specs), **env.fingerprint()}
        with tracking.recorded_run(suite, tags=tags):
            for path, spec in zip(paths, specs):
                one(path, spec, nested=True)
            tracking.log_metrics({"specs.failed": failed, "verdicts.gating_missed": missed,
                                  "verdicts.gating_inconclusive": inconclusive})
    else:
        for path, spec in zip(paths, specs):
            one(path, spec, nested=False)
    return missed, inconclusive, failed


def cmd_run(args, suite: str | None = None) -> int:
    from harness import tracking

    specs = _override_seeds(load_specs(args.specs), args.seeds)  # every spec validated before any run
    paths = spec_paths(args.specs)
    if not specs:
        raise SpecError(f"{' '.join(args.specs)}: (files): no spec files found")
    experiment = tracking.connect(args.tracking_uri)
    missed, inconclusive, failed = run_many(paths, specs, suite, resume=args.resume)
    console.print(f"[dim]runs: `mlflow ui` where the store is, then http://127.0.0.1:5000/#/experiments/"
                  f"{experiment}?workflowType=machine_learning[/]")
    status = 0
    if inconclusive:
        why = "failing: --strict" if args.strict else "not failing without --strict"
        console.print(f"[magenta]{inconclusive} gating timing reference(s) inconclusive ({why})[/]")
        status = EXIT_INCONCLUSIVE if args.strict else 0
    if missed:
        msg = f"{missed} reference(s) not reproduced"
        console.print(f"[bold red]{msg}[/]" + (" (allowed by --allow-miss)" if args.allow_miss else ""))
        status = status if args.allow_miss else 1
    if failed:
        console.print(f"[bold red]{failed} spec(s) failed to run[/]")
        status = 1
    if suite and not failed:
        status = max(status, cmd_report(args))
    return status


def cmd_list(args) -> int:
    specs = load_specs(args.specs)
    table = Table(title="experiments")
    for col in ("name", "kind", "refs", "seeds", "devices", "title"):
        table.add_column(col)
    for s in specs:
        table.add_row(s.name, s.kind, " ".join(s.ref_ids), ",".join(map(str, s.seeds)), ",".join(s.devices), s.title)
    console.print(table)
    return 0


def cmd_show(args) -> int:
    """Each spec's network, layer by layer: output shape, parameters and forward FLOP (torch.utils.flop_counter)."""
    from harness import nets

    specs = [s for s in load_specs(args.specs) if getattr(s.settings, "model", None) is not None]
    if not specs:
        raise SpecError(f"{', '.join(args.specs)}: no spec here defines a network (settings.model)")
    for spec in specs:
        model = spec.settings.model
        shape = getattr(spec.settings, "input_shape", None) or nets.input_shape(model)
        rows = nets.layer_table(model, shape)
        table = Table(title=f"{spec.name}: {nets.describe(model)} on 1x{'x'.join(map(str, shape))}",
                      title_justify="left")
        for col in ("layer", "type", "output shape", "parameters", "forward MFLOP"):
            table.add_column(col, justify="left" if col in ("type", "output shape") else "right")
        for r in rows:
            table.add_row(str(r["layer"]), r["type"], "x".join(map(str, r["output shape"])), f"{r['parameters']:,}",
                          f"{r['forward FLOP'] / 1e6:,.2f}")
        table.add_row("", "total", "", f"{sum(r['parameters'] for r in rows):,}",
                      f"{sum(r['forward FLOP'] for r in rows) / 1e6:,.2f}", end_section=True)
        console.print(table)
    return 0


def cmd_report(args) -> int:
    from harness.report import write_report

    path = write_report(Path(args.out), args.tracking_uri)
    console.print(f"report written: {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, with_specs=True, default_specs=None):
        sp.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
        if with_specs:
            nargs = "*" if default_specs else "+"
            sp.add_argument("specs", nargs=nargs, default=default_specs, metavar="SPEC",
                            help="spec files or directories of them")

    r = sub.add_parser("run", help="run specs, record them in MLflow, print verdicts")
    common(r)
    r.add_argument("--allow-miss", action="store_true", help="exit 0 even when a reference is not reproduced")
    r.add_argument("--strict", action="store_true",
                   help=f"exit {EXIT_INCONCLUSIVE} when a gating timing reference stays inconclusive")
    r.add_argument("--seeds", help="override every spec's seeds, e.g. 0,1,2")
    r.add_argument("--resume", action="store_true", help=RESUME_HELP)

    s = sub.add_parser("reproduce", help="run a directory of specs as one suite, then write the report")
    common(s, default_specs=["experiments"])
    s.add_argument("--allow-miss", action="store_true")
    s.add_argument("--strict", action="store_true",
                   help=f"exit {EXIT_INCONCLUSIVE} when a gating timing reference stays inconclusive")
    s.add_argument("--seeds", help="override every spec's seeds, e.g. 0,1,2")
    s.add_argument("--resume", action="store_true", help=RESUME_HELP)
    s.add_argument("--out", default="reports", help="report directory (default: reports)")

    ls = sub.add_parser("list", help="list the specs and what they reproduce")
    ls.add_argument("specs", nargs="*", default=["experiments"], metavar="SPEC")

    sh = sub.add_parser("show", help="print the network of each spec: output shape, parameters, FLOP per layer")
    sh.add_argument("specs", nargs="+", metavar="SPEC")

    rp = sub.add_parser("report", help="write REPORT.md from the runs recorded in MLflow")
    common(rp, with_specs=False)
    rp.add_argument("--out", default="reports", help="report directory (default: reports)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "reproduce":
            return cmd_run(args, suite=f"reproduce {time.strftime('%Y-%m-%d %H:%M:%S')}")
        if args.command == "list":
            return cmd_list(args)
        if args.command == "show":
            return cmd_show(args)
        return cmd_report(args)
    except SpecError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
