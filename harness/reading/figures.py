"""Figures for the report: matplotlib without a display, saved beside REPORT.md."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from harness.reading.view import RunView  # noqa: E402


def save_figure(fig, view: RunView, stem: str, alt: str) -> str:
    """Save a matplotlib figure for the report, log it on the spec run it draws (``figures/<name>.png``, which
    MLflow's UI shows; a view of no recorded run has none), and return its markdown image line."""
    path, link = view.figure_path(stem)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if view.run_id:
        MlflowClient().log_figure(view.run_id, fig, f"figures/{path.name}",
                                  save_kwargs={"dpi": 110, "bbox_inches": "tight"})
    plt.close(fig)
    return f"![{alt}]({link})"
