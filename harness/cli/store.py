"""``harness server``, ``export`` and ``import``: a team's tracking server, and runs moved between stores."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

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
    from harness.reading.results import ResultsError

    if args.out is None and sys.stdout.isatty():
        raise SpecError("harness export: the bundle is binary: redirect it (> bundle.tar.gz) or give -o FILE")
    try:
        n = _export_to(args.run, args.out, args.tracking_uri)
    except ResultsError as exc:
        raise SpecError(str(exc)) from None  # a ref that names no run: a bad argument, as in every command
    err_console.print(f"exported {n} run(s)" + (f" to {args.out}" if args.out else ""))
    return 0


def _export_to(ref: str, out: str | None, uri: str | None) -> int:
    """The bundle into the file ``out`` (or stdout); one that fails is removed, not left half-written."""
    from harness.reading.bundle import export

    if out is None:
        return export(ref, sys.stdout.buffer, uri)
    with _open(out, "wb") as f:
        try:
            return export(ref, f, uri)
        except BaseException:
            Path(out).unlink(missing_ok=True)
            raise


def _open(path: str, mode: str) -> BinaryIO:
    """A bundle file, or a ``BundleError`` (status 5) naming it and why it cannot be opened."""
    from harness.reading.bundle import BundleError

    try:
        return open(path, mode)
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror or exc}") from None


def cmd_import(args) -> int:
    """The runs of a bundle, recreated in this store, all or none; a bundle that cannot be read is status 5."""
    from harness.reading.bundle import import_bundle
    from harness.store import tracking

    if args.bundle == "-":
        done, already = import_bundle(sys.stdin.buffer, "(stdin)", args.tracking_uri)
    else:
        with _open(args.bundle, "rb") as f:
            done, already = import_bundle(f, args.bundle, args.tracking_uri)
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
