"""Figures drawn by worker processes inside ``drawing()`` are the files drawn in process, logged on their run."""

from __future__ import annotations

import threading

import matplotlib.pyplot as plt
import mlflow
import pytest
from matplotlib.ticker import FuncFormatter

from harness.reading import figures
from harness.store import tracking


def _figure(formatter=None):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3], [3, 1, 2], label="loss")
    ax.set_xlabel("epoch")
    ax.legend()
    if formatter is not None:
        ax.xaxis.set_major_formatter(formatter)
    return fig


def test_a_figure_drawn_in_the_background_is_the_file_drawn_here_and_logged_on_its_run(tmp_path, store):
    figures.write(_figure(), tmp_path / "here.png")
    tracking.connect()
    with mlflow.start_run() as run:
        pass
    with figures.drawing(workers=1):
        figures.write(_figure(), tmp_path / "there.png", run.info.run_id)
        assert figures._DRAWING[-1]["pool"] is not None  # a worker draws it, not this process
    assert (tmp_path / "there.png").read_bytes() == (tmp_path / "here.png").read_bytes()
    logged = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "figures")]
    assert logged == ["figures/there.png"]


def test_a_figure_that_does_not_pickle_is_drawn_here_at_once(tmp_path):
    with figures.drawing(workers=1):
        figures.write(_figure(FuncFormatter(lambda x, _: f"{x:.0f}s")), tmp_path / "lambda.png")
        assert (tmp_path / "lambda.png").stat().st_size > 0


def test_a_drawing_that_failed_in_a_worker_fails_the_block(tmp_path):
    with pytest.raises(FileNotFoundError), figures.drawing(workers=1):
        figures.write(_figure(), tmp_path / "no-such-folder" / "x.png")


def test_beside_another_thread_the_workers_draw_too(tmp_path):
    """``harness reproduce`` writes its report beside its heartbeat thread: spawned workers do not mind it."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with figures.drawing(workers=1):
            figures.write(_figure(), tmp_path / "there.png")
            assert figures._DRAWING[-1]["pool"] is not None
        assert (tmp_path / "there.png").stat().st_size > 0
    finally:
        stop.set()
        other.join()


def test_without_workers_each_figure_is_drawn_at_once(tmp_path):
    with figures.drawing(workers=0):
        figures.write(_figure(), tmp_path / "here.png")
        assert (tmp_path / "here.png").stat().st_size > 0 and figures._DRAWING[-1]["pool"] is None
