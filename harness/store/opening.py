"""Before MLflow opens a store: is it one? A SQLite file with SQLite's header and MLflow's tables in a folder that
exists, or a server that answers within seconds. Each "no" is one ``StoreError`` naming the store, not MLflow's
traceback or its two minutes of retries (docs/internals.md, "Crowds and crashes").
"""

from __future__ import annotations

import json
import os
import sqlite3
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TypeVar

from harness.schema import first_line
from harness.store.locks import StoreError, failure, sqlite_path, store_name

CONNECT_S = 5.0  # how long a tracking server may take to answer the first request
SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc", "file", "")
SQLITE_HEADER = b"SQLite format 3\x00"
T = TypeVar("T")


def check(uri: str, create: bool, experiment: str) -> bool:
    """Raise ``StoreError`` for a store that cannot be one; False for a SQLite store that is not there (and
    ``create`` is not asked: a reading command makes no store)."""
    scheme = urllib.parse.urlparse(uri).scheme.split("+")[0]
    if scheme not in SCHEMES:
        raise StoreError(f"{uri}: not a store MLflow knows (give sqlite:///path/mlflow.db, http(s)://host:port or "
                         "postgresql://...)")
    path = sqlite_path(uri)
    if path is not None:
        return _check_file(path, create)
    if scheme in ("http", "https"):
        _check_server(uri, experiment)
    return True


def _check_file(path: Path, create: bool) -> bool:
    """A SQLite store's file: not a folder, in a folder that exists, writable to write, SQLite's own header."""
    if path.is_dir():
        raise StoreError(f"{path}: not an MLflow store (a folder; give the database file, e.g. {path / 'mlflow.db'})")
    if not path.parent.is_dir():
        raise StoreError(f"{path}: no MLflow store here (the folder {path.parent} does not exist)")
    if not path.exists() or path.stat().st_size == 0:  # SQLite takes an empty file for an empty database
        if create and not os.access(path.parent, os.W_OK):
            raise StoreError(f"{path}: cannot create the MLflow store (the folder {path.parent} is not writable)")
        return create
    if create and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        raise StoreError(f"{path}: the store is read-only (it and its folder must be writable to record runs)")
    with open(path, "rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise StoreError(f"{path}: not an MLflow store (not a SQLite database file)")
    return True


def check_tables(uri: str) -> None:
    """A SQLite store that holds tables holds MLflow's (run under the creation lock: no half-made store)."""
    path = sqlite_path(uri)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            tables = sorted(name for (name,) in db.execute("select name from sqlite_master where type = 'table'"))
    except sqlite3.DatabaseError as err:
        if "database is locked" in str(err):
            return  # a writer holds it: MLflow will wait for it
        raise StoreError(f"{path}: {failure(err) or f'not an MLflow store ({err})'}") from err
    if tables and "experiments" not in tables:
        raise StoreError(f"{path}: not an MLflow store (a SQLite database with other tables: {', '.join(tables[:3])})")


def _check_server(uri: str, experiment: str) -> None:
    """A tracking server answers MLflow's REST API within ``CONNECT_S`` (a TLS question is left to MLflow)."""
    url = (f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name?"
           + urllib.parse.urlencode({"experiment_name": experiment}))
    try:
        with urllib.request.urlopen(url, timeout=CONNECT_S) as answer:
            status, body = answer.status, answer.read(4000)
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read(4000)
    except urllib.error.URLError as err:
        if isinstance(err.reason, ssl.SSLError):
            return  # MLflow's own TLS settings (MLFLOW_TRACKING_INSECURE_TLS, a CA bundle) decide
        why = getattr(err.reason, "strerror", None) or str(err.reason)
        raise StoreError(f"{uri}: no MLflow server answers ({why.lower()})") from None
    except OSError:  # a read that timed out, a connection reset
        raise StoreError(f"{uri}: no MLflow server answers (no answer within {CONNECT_S:.0f} s)") from None
    if status in (401, 403) or (status < 500 and _is_mlflow(body)):
        return  # an MLflow server (credentials are MLflow's business)
    where = f"HTTP {status} from {url.split('?')[0]}"
    if _is_mlflow(body):
        raise StoreError(f"{uri}: the MLflow server fails ({where})")
    raise StoreError(f"{uri}: a server answers, but not MLflow's API ({where})")


def _is_mlflow(body: bytes) -> bool:
    """Does a response read like MLflow's REST API (a JSON object, an experiment or an ``error_code``)?"""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and ("experiment" in data or "error_code" in data)


def opened(uri: str, first_touch: Callable[[], T]) -> T:
    """``first_touch()``, MLflow's first use of the store; what it cannot open is a ``StoreError`` naming it."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return first_touch()
    except StoreError:
        raise
    except (MlflowException, SQLAlchemyError, sqlite3.Error, OSError) as err:
        first = first_line(err, type(err).__name__)[:300]
        raise StoreError(f"{store_name(uri)}: {failure(err) or f'cannot open the MLflow store ({first})'}") from err
