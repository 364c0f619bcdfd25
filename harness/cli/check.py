"""``harness check``: is the line my notebook printed the book's result? Against the seeds of the spec's newest run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.table import Table

from harness.cli.options import EXIT_INCONCLUSIVE, console, store_option
from harness.specs.spec import SpecError, load_specs


def _lines(args) -> list[str]:
    lines = list(args.line or [])
    if args.from_file:
        try:
            text = sys.stdin.read() if args.from_file == "-" else Path(args.from_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise SpecError(f"--from {args.from_file}: cannot read: {getattr(err, 'strerror', None) or err}") from None
        lines += text.splitlines()
    return lines


def _view(args, spec, path: Path):
    """The spec's newest finished run in the store; with ``--run``, a run of it first if there is none."""
    from harness.reading.results import ResultsError
    from harness.reporting import tables
    from harness.store import tracking

    def newest():
        try:
            return tables.newest_run(spec.name, args.tracking_uri)
        except ResultsError:
            return None

    tracking.connect(args.tracking_uri)
    row = newest()
    if row is None and args.run:
        from harness.cli.run import run_one, show
        from harness.execution.executors import Local

        show(run_one(path, spec, nested=False, executor=Local()))
        row = newest()
    if row is None:
        raise RuntimeError(f"{tracking.tracking_uri(args.tracking_uri)} holds no finished run of {spec.name}: add "
                           f"--run to run it first ({len(spec.seeds)} seeds), or `harness run {path}`")
    return tables.view(row)


def cmd_check(args) -> int:
    from harness.reading.lines import LineError, parse

    path = Path(args.spec)
    spec = load_specs([str(path)])[0]
    try:
        printed = parse(_lines(args))
    except LineError as err:
        raise SpecError(f"--line: {err}") from None
    from harness.reporting.check import CONSISTENT, NOT_COMPARED, NOT_CONSISTENT, TOO_FEW, check

    answer = check(_view(args, spec, path), printed, args.device)
    if answer.verdict == NOT_COMPARED:
        why = "; ".join(dict.fromkeys(answer.table["verdict"]))
        raise SpecError(f"{path}: --line: none of its numbers is compared with {spec.name} ({why})")
    if args.json:
        df = answer.table.astype(object).where(answer.table.notna(), None)
        print(json.dumps({"spec": spec.name, "run": answer.run, "device": answer.device, "verdict": answer.verdict,
                          "family_error": answer.error, "values": df.to_dict(orient="records")}, indent=1))
    else:
        _print(spec, answer)
    return {CONSISTENT: 0, NOT_CONSISTENT: 1, TOO_FEW: EXIT_INCONCLUSIVE}[answer.verdict]


def _print(spec, answer) -> None:
    from harness.reading.markdown import sig

    table = Table(title=f"{spec.name} on {answer.device}, run {answer.run[:8]}: each printed value against the seeds "
                        f"(Holm at {answer.error:.0%} over the values checked)", title_justify="left")
    for col in ("printed", "quantity", "value", "seeds' mean (n)", "where one more seed falls (95%)", "p", "adjusted p",
                "verdict", "detectable shift", "the book printed"):
        table.add_column(col, overflow="fold")
    for r in answer.table.itertuples():
        between = "-" if r.low != r.low else f"{r.low:.4g} to {r.high:.4g}"
        table.add_row(r.printed, r.quantity, f"{r.value:g}", "-" if r.seeds_mean != r.seeds_mean else
                      f"{r.seeds_mean:.4g} ({r.seeds})", between, sig(2)(r.p_value), sig(2)(r.adjusted_p),
                      r.verdict, sig(3)(r.detectable_shift), r.book or "-")
    console.print(table)
    console.print(f"[bold]{answer.verdict}[/] with the reproduction: a check this size tells apart a departure of "
                  "about the detectable shift, 80% of the time; smaller ones it cannot.")


def setup_arguments(sub) -> None:
    ck = sub.add_parser("check", help="is a line my notebook printed the book's result? (against the seeds)")
    ck.add_argument("spec", metavar="SPEC", help="the spec the line is a run of (e.g. experiments/lenet-c2.yaml)")
    ck.add_argument("--line", action="append", metavar="TEXT",
                    help="a printed line, e.g. 'loss 0.469, train acc 0.823, test acc 0.779' (repeat for epochs)")
    ck.add_argument("--from", dest="from_file", metavar="FILE", help="pasted output to read (- for standard input)")
    ck.add_argument("--run", action="store_true", help="run the spec first (its own seeds) if the store has no run")
    ck.add_argument("--device", choices=("cpu", "cuda"), help="whose seeds (default: the run's first device)")
    ck.add_argument("--json", action="store_true", help="the same table as JSON, for scripts")
    store_option(ck)
    ck.set_defaults(func=cmd_check)
