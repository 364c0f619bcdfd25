"""``harness compare A B``: what changed between two suites or spec runs, judged against its noise."""

from __future__ import annotations

import os
import sys

from harness.cli.options import EXIT_INCONCLUSIVE, store_option
from harness.specs.spec import SpecError

FAIL_ON = ("slower", "faster", "worse", "better", "higher", "lower", "changed")


def cmd_compare(args) -> int:
    """Two suites (or spec runs), metric by metric: the environment first, then a table per spec, then the count."""
    from harness.reading import results
    from harness.reporting import compare

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
    print(compare.drift_advice(table))
    return 0


def setup_arguments(sub) -> None:
    cp = sub.add_parser("compare", help="what changed between two suites or spec runs, judged against its noise")
    store_option(cp)
    for side in ("a", "b"):
        cp.add_argument(side, metavar=side.upper(), help="a suite or spec run (its id or first characters), a git "
                                                          "commit (the newest suite at it), latest, or latest~N (the "
                                                          "suite N before the newest)")
    cp.add_argument("--threshold", type=float,
                    help="noise threshold: a change within this fraction is no change (default: "
                         "HARNESS_COMPARE_THRESHOLD, else 0.05; --drift finds one for a machine)")
    cp.add_argument("--drift", action="store_true",
                    help="A and B ran one commit on one machine: how many changes each threshold calls, and the "
                         "smallest that keeps timings within 5%%")
    cp.add_argument("--fail-on", metavar="WORDS",
                    help=f"exit 1 when a verdict is one of these, comma-separated: {', '.join(FAIL_ON)}")
    cp.add_argument("--strict", action="store_true", help=f"exit {EXIT_INCONCLUSIVE} when a verdict is inconclusive")
    cp.add_argument("--changes-only", action="store_true", help="leave the 'no change' rows out of the tables")
    cp.set_defaults(func=cmd_compare)
