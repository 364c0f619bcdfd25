"""Figures for the report: matplotlib without a display, saved beside REPORT.md."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["figure.constrained_layout.use"] = True  # laid out as it is drawn: one render per file
import matplotlib.pyplot as plt  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from harness.reading.view import RunView  # noqa: E402


def write(fig, path) -> None:
    """A figure as a PNG, drawn once (constrained layout, not ``bbox_inches="tight"``, which draws it twice)."""
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_figure(fig, view: RunView, stem: str, alt: str) -> str:
    """Save a matplotlib figure for the report, log that file on the spec run it draws (``figures/<name>.png``,
    which MLflow's UI shows; a view of no recorded run has none), and return its markdown image line. The figure is
    drawn once: the file the report links is the file the run holds."""
    path, link = view.figure_path(stem)
    write(fig, path)
    if view.run_id:
        MlflowClient().log_artifact(view.run_id, str(path), "figures")
    return f"![{alt}]({link})"
