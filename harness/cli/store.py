"""``harness server``, ``export`` and ``import``: a team's tracking server, and runs moved between stores."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.cli.options import console, err_console, store_option
from harness.specs.spec import SpecError


def cmd_server(args) -> int:
    """MLflow's tracking server on PostgreSQL, in the foreground (``harness.store.server``)."""
    from harness.store.server import ServerError, serve

    try:
        return serve(Path(args.dir), args.port)
    except ServerError as exc:
        raise RuntimeError(str(exc)) from None


def cmd_export(args) -> int:
    """A run and everything under it as one bundle, on stdout or into ``--out``."""
    from harness.reading.bundle import BundleError, export

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
    from harness.reading.bundle import BundleError, import_bundle
    from harness.store import tracking

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


def setup_arguments(sub) -> None:
    from harness.store.server import add_arguments  # no torch, no MLflow: cheap to import

    sv = sub.add_parser("server", help="a team's MLflow tracking server, backed by PostgreSQL")
    add_arguments(sv)
    sv.set_defaults(func=cmd_server)

    ex = sub.add_parser("export", help="write a run and every run under it (a suite, a spec) as one bundle")
    store_option(ex)
    ex.add_argument("run", metavar="RUN_OR_SUITE", help="a run id, its first characters, latest (the newest suite), "
                    "latest~N or a git commit")
    ex.add_argument("-o", "--out", help="the bundle file (default: stdout)")
    ex.set_defaults(func=cmd_export)

    im = sub.add_parser("import", help="recreate a bundle's runs, with their artifacts, in this store")
    store_option(im)
    im.add_argument("bundle", metavar="BUNDLE", help="a file written by harness export, or - for stdin")
    im.set_defaults(func=cmd_import)
