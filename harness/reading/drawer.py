"""The worker's half of ``figures.drawing``: a pickled figure drawn to its file. It imports matplotlib alone, so a
worker process starts in a second."""

from __future__ import annotations

import pickle

import matplotlib

matplotlib.use("Agg")


def draw(data: bytes, path: str, dpi: int) -> None:
    pickle.loads(data).savefig(path, dpi=dpi)
