"""The ``harness`` command: run, reproduce, list, show, report, server, export, import.

Exit status: 0 no gating reference was decisively not reproduced; 1 one was (unless --allow-miss)
or a run failed; 2 a bad spec or bad arguments; 3 with --strict, a gating timing reference stayed
inconclusive; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.schema import Device
from harness.spec import Spec, SpecError, load_specs, spec_paths
from harness.verdict import INCONCLUSIVE, MISSED, REPRODUCED, SKIPPED, Verdict

console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line
STYLE = {REPRODUCED: "green", MISSED: "bold red", INCONCLUSIVE: "magenta", SKIPPED: "yellow"}
EXIT_INCONCLUSIVE = 3
DEVICES = Device.__args__  # "cpu", "cuda": what a spec's devices may name
DEVICES_HELP = "run only the specs' halves on these devices, e.g. cuda (a GPU node's share); the others are skipped"
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
             resume: bool = False, executor=None, only: list[str] | None = None) -> tuple[int, int, int]:
    """Run specs (inside one parent run when ``suite`` names one) on ``executor`` (default: local), on the devices
    ``only`` names (default: each spec's own); returns (missed, inconclusive, failed), where a spec with a failed
    unit counts as failed."""
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
        broken: list[str] = []

        def on_fail(device, seed, why):
            broken.append(why)
            err_console.print(f"harness: [bold red]error[/]: {escape(f'{path} on {device}, seed {seed}: {why}')}")
        try:
            verdicts = run_spec(spec, path, nested=nested, executor=executor, on_seed=on_seed, resume=resume,
                                on_skip=lambda device, why: absent.setdefault(why, []).append(device),
                                on_fail=on_fail, only=only)
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
        from harness import env

        tags = {tracking.ROLE: "suite", "specs": ",".join(s.name for s in specs), **env.fingerprint(),
                tracking.CODE_ID: env.code_id()}
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
    paths, specs = _only_devices(paths, specs, args.devices)
    if not specs:
        raise SpecError(f"--devices {args.devices}: none of the specs runs there")
    experiment = tracking.connect(args.tracking_uri)
    from harness.executors import ExecutorError, make

    try:
        executor = make(args.executor, args.ray_address, args.threads)
    except ExecutorError as exc:
        raise SpecError(str(exc)) from None
    try:
        missed, inconclusive, failed = run_many(paths, specs, suite, resume=args.resume, executor=executor,
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
    if suite and not failed and not getattr(args, "no_report", False):
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


def cmd_server(args) -> int:
    """MLflow's tracking server on PostgreSQL, in the foreground (``harness.server``)."""
    from harness.server import ServerError, serve

    try:
        return serve(Path(args.dir), args.port)
    except ServerError as exc:
        raise RuntimeError(str(exc)) from None


def cmd_export(args) -> int:
    """A run and everything under it as one bundle, on stdout or into ``--out``."""
    from harness.bundle import BundleError, export

    if args.out is None and sys.stdout.isatty():
        raise SpecError("harness export: the bundle is binary: redirect it (> bundle.tar.gz) or give -o FILE")
    try:
        if args.out:
            with open(args.out, "wb") as f:
                n = export(args.run, f, args.tracking_uri)
        else:
            n = export(args.run, sys.stdout.buffer, args.tracking_uri)
    except BundleError as exc:
        if args.out:
            Path(args.out).unlink(missing_ok=True)
        raise SpecError(str(exc)) from None
    err_console.print(f"exported {n} run(s)" + (f" to {args.out}" if args.out else ""))
    return 0


def cmd_import(args) -> int:
    """The runs of a bundle, recreated in this store."""
    from harness import tracking
    from harness.bundle import BundleError, import_bundle

    try:
        if args.bundle == "-":
            done, already = import_bundle(sys.stdin.buffer, "(stdin)", args.tracking_uri)
        else:
            with open(args.bundle, "rb") as f:
                done, already = import_bundle(f, args.bundle, args.tracking_uri)
    except OSError as exc:
        raise SpecError(f"{args.bundle}: {exc.strerror or exc}") from None
    except BundleError as exc:
        raise SpecError(str(exc)) from None
    console.print(f"imported {done} run(s) into {tracking.tracking_uri(args.tracking_uri)}"
                  + (f"; {already} were already there" if already else ""))
    return 0


FAIL_ON = ("slower", "faster", "worse", "better", "higher", "lower", "changed")


def cmd_compare(args) -> int:
    """Two suites (or spec runs), metric by metric: the environment first, then a table per spec, then the count."""
    from harness import compare, results

    fail_on = {w.strip() for w in args.fail_on.split(",") if w.strip()} if args.fail_on else set()
    if fail_on - set(FAIL_ON):
        raise SpecError(f"--fail-on: {', '.join(sorted(fail_on - set(FAIL_ON)))} is not one of {', '.join(FAIL_ON)}")
    if args.threshold is None:
        env = os.environ.get("HARNESS_COMPARE_THRESHOLD")
        try:
            args.threshold = compare.THRESHOLD if env is None else float(env)
        except ValueError:
            raise SpecError(f"HARNESS_COMPARE_THRESHOLD: {env!r} is not a number (0.05 is 5%)") from None
    if not 0 <= args.threshold < 10:
        raise SpecError(f"--threshold: {args.threshold} is not a fraction between 0 and 10 (0.05 is 5%)")
    try:
        a, b = (results.resolve(ref, args.tracking_uri) for ref in (args.a, args.b))
    except results.ResultsError as exc:
        raise SpecError(str(exc)) from None
    print(f"A: {a.label}\nB: {b.label}\n")
    print("Environment (differences first):\n")
    print(compare.environment(a, b).to_markdown(index=False) + "\n")
    if args.drift:
        return _drift(compare, a, b)
    df = compare.compare(a, b, args.threshold)
    only = sorted(set(a.runs) ^ set(b.runs))
    if only:
        print("Specs on one side only (not compared): " + ", ".join(
            f"{n} ({'A' if n in a.runs else 'B'})" for n in only) + "\n")
    shown = df[df["verdict"] != compare.NO_CHANGE] if args.changes_only else df
    for spec, group in shown.groupby("spec", sort=False):
        print(f"## {spec}\n\n" + compare.shown(group).to_markdown(index=False) + "\n")
    counts = df["verdict"].value_counts()
    print(f"Compared {len(df)} metric(s) of {df['spec'].nunique()} spec(s): "
          + ", ".join(f"{int(n)} {v}" for v, n in counts.items())
          + f". Noise threshold {args.threshold:.0%}; {compare.HOW}")
    changes = {v for v in counts.index if v not in (compare.NO_CHANGE, compare.INCONCLUSIVE)}
    hit = fail_on & (changes | ({"changed"} if changes else set()))
    if hit:
        print(f"harness compare: {', '.join(sorted(hit))} (--fail-on {args.fail_on})", file=sys.stderr)
        return 1
    if args.strict and compare.INCONCLUSIVE in counts.index:
        return EXIT_INCONCLUSIVE
    return 0


def _drift(compare, a, b) -> int:
    """``harness compare A B --drift``: A and B ran one commit on one machine; what threshold keeps them equal?"""
    table = compare.drift(a, b)
    print("Changes called between two suites where nothing changed, by noise threshold:\n")
    print(table.to_markdown(index=False) + "\n")
    best = compare.calibrated_threshold(table)
    if best == best:
        print(f"At --threshold {best:g}, at most {compare.FALSE_CALLS:.0%} of the timings and of the per-seed values "
              "are called a change: use it (or HARNESS_COMPARE_THRESHOLD) when comparing suites of this machine.")
    else:
        print(f"No threshold up to {max(compare.DRIFT_THRESHOLDS):g} keeps the calls within {compare.FALSE_CALLS:.0%}: "
              "this machine drifts more than harness compare can tell apart from a change.")
    return 0


def cmd_report(args) -> int:
    from harness.report import write_report

    path = write_report(Path(args.out), args.tracking_uri)
    console.print(f"report written: {path}")
    return 0


def executors(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="where the (spec, device, seed) units run: here one after another (default), or as Ray "
                         "tasks (pip install -e '.[ray]')")
    sp.add_argument("--ray-address", metavar="ADDR",
                    help="the Ray cluster to join (e.g. auto, or ray://host:10001); default: start one here")
    sp.add_argument("--threads", type=int, metavar="N",
                    help="threads (and Ray CPUs) of each CPU unit that times nothing (default: one per core "
                         "locally, 1 on Ray); the same N gives the same curves bit for bit on either executor")


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
    r.add_argument("--devices", help=DEVICES_HELP)
    r.add_argument("--resume", action="store_true", help=RESUME_HELP)
    executors(r)

    s = sub.add_parser("reproduce", help="run a directory of specs as one suite, then write the report")
    common(s, default_specs=["experiments"])
    s.add_argument("--allow-miss", action="store_true")
    s.add_argument("--strict", action="store_true",
                   help=f"exit {EXIT_INCONCLUSIVE} when a gating timing reference stays inconclusive")
    s.add_argument("--seeds", help="override every spec's seeds, e.g. 0,1,2")
    s.add_argument("--devices", help=DEVICES_HELP)
    s.add_argument("--resume", action="store_true", help=RESUME_HELP)
    s.add_argument("--no-report", action="store_true", help="record the suite, write no report (a GPU node's run)")
    executors(s)
    s.add_argument("--out", default="reports", help="report directory (default: reports)")

    ls = sub.add_parser("list", help="list the specs and what they reproduce")
    ls.add_argument("specs", nargs="*", default=["experiments"], metavar="SPEC")

    sh = sub.add_parser("show", help="print the network of each spec: output shape, parameters, FLOP per layer")
    sh.add_argument("specs", nargs="+", metavar="SPEC")

    from harness.server import add_arguments as server_arguments  # no torch, no MLflow: cheap to import

    server_arguments(sub.add_parser("server", help="a team's MLflow tracking server, backed by PostgreSQL"))

    ex = sub.add_parser("export", help="write a run and every run under it (a suite, a spec) as one bundle")
    common(ex, with_specs=False)
    ex.add_argument("run", metavar="RUN_OR_SUITE", help="a run id, its first characters, or latest (the newest suite)")
    ex.add_argument("-o", "--out", help="the bundle file (default: stdout)")

    im = sub.add_parser("import", help="recreate a bundle's runs, with their artifacts, in this store")
    common(im, with_specs=False)
    im.add_argument("bundle", metavar="BUNDLE", help="a file written by harness export, or - for stdin")

    cp = sub.add_parser("compare", help="what changed between two suites or spec runs, judged against its noise")
    common(cp, with_specs=False)
    for side in ("a", "b"):
        cp.add_argument(side, metavar=side.upper(), help="a suite or spec run (its id or first characters), a git "
                                                          "commit (the newest suite at it), latest, or latest~N (the "
                                                          "suite N before the newest)")
    cp.add_argument("--threshold", type=float,
                    help="noise threshold: a change within this fraction is no change (default: "
                         "HARNESS_COMPARE_THRESHOLD, else harness.compare.THRESHOLD; --drift finds one for a machine)")
    cp.add_argument("--drift", action="store_true",
                    help="A and B ran one commit on one machine: how many changes each threshold calls, and the "
                         "smallest that keeps timings within 5%")
    cp.add_argument("--fail-on", metavar="WORDS",
                    help=f"exit 1 when a verdict is one of these, comma-separated: {', '.join(FAIL_ON)}")
    cp.add_argument("--strict", action="store_true", help=f"exit {EXIT_INCONCLUSIVE} when a verdict is inconclusive")
    cp.add_argument("--changes-only", action="store_true", help="leave the 'no change' rows out of the tables")

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
        if args.command == "server":
            return cmd_server(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "import":
            return cmd_import(args)
        if args.command == "compare":
            return cmd_compare(args)
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
