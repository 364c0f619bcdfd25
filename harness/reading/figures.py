"""Figures for the report: matplotlib without a display, saved beside REPORT.md.

Inside ``drawing()`` the files are drawn by worker processes while the report goes on reading the store (drawing is
most of a report's time, and a 2-core machine has a core free); outside it, each is drawn at once. The workers are
fresh interpreters (``spawn``), not forks: ``harness reproduce`` writes its report beside its heartbeat thread, and
a fork beside a thread can inherit a lock that thread held.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["figure.constrained_layout.use"] = True  # laid out as it is drawn: one render per file
import matplotlib.pyplot as plt  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from harness.reading import drawer  # noqa: E402
from harness.reading.view import RunView  # noqa: E402

DPI = 110
_DRAWING: list[dict] = []  # while ``drawing`` is open: its worker count, pool (started at the first figure), jobs


@contextmanager
def drawing(workers: int | None = None) -> Iterator[None]:
    """Within it, figures are drawn in the background; on leaving, every file is on disk and logged on its run."""
    state = {"workers": max(1, (os.cpu_count() or 2) - 1) if workers is None else workers, "pool": None, "jobs": []}
    _DRAWING.append(state)
    try:
        yield
        for job, run_id, path in state["jobs"]:
            job.get()
            if run_id:
                MlflowClient().log_artifact(run_id, str(path), "figures")
    finally:
        _DRAWING.pop()
        if state["pool"] is not None:
            state["pool"].terminate()
            state["pool"].join()


def _submit(fig, path: Path, run_id: str) -> bool:
    """Hand a figure to the open ``drawing``'s workers; False when there are none or it does not pickle."""
    if not _DRAWING or _DRAWING[-1]["workers"] < 1:
        return False
    try:
        data = pickle.dumps(fig)
    except Exception:  # an artist that does not pickle (a lambda formatter): drawn here instead
        return False
    plt.close(fig)
    state = _DRAWING[-1]
    if state["pool"] is None:
        state["pool"] = multiprocessing.get_context("spawn").Pool(state["workers"])
    state["jobs"].append((state["pool"].apply_async(drawer.draw, (data, str(path), DPI)), run_id, path))
    return True


def write(fig, path, run_id: str = "") -> None:
    """A figure as a PNG, drawn once (constrained layout, not ``bbox_inches="tight"``, which draws it twice), and
    logged as ``figures/<name>.png`` on run ``run_id`` where one is given."""
    if _submit(fig, Path(path), run_id):
        return
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    if run_id:
        MlflowClient().log_artifact(run_id, str(path), "figures")


def save_figure(fig, view: RunView, stem: str, alt: str) -> str:
    """Save a matplotlib figure for the report, log that file on the spec run it draws (``figures/<name>.png``,
    which MLflow's UI shows; a view of no recorded run has none), and return its markdown image line. The figure is
    drawn once: the file the report links is the file the run holds."""
    path, link = view.figure_path(stem)
    write(fig, path, view.run_id or "")
    return f"![{alt}]({link})"
