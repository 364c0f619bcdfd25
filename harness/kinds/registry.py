"""Every kind of experiment by name. A new kind is a folder beside this file and one line in ``FOLDERS``."""

from __future__ import annotations

import importlib

from harness.kinds.base import Kind, Metric

FOLDERS = (
    "worked_examples",
    "structure",
    "edge_kernel",
    "conv_throughput",
    "batch_speed",
    "training",
    "calibration",
)
KINDS: dict[str, Kind] = {k.name: k for k in (importlib.import_module(f"harness.kinds.{f}").KIND for f in FOLDERS)}
FORMERLY = {"lenet": "training", "modern_cnn": "training"}  # a kind's former names, as older runs in a store carry them


def get(name: str, required: bool = True) -> Kind | None:
    """The kind called ``name``, the one way to look one up. Where there is none: a ``KeyError`` that lists the known
    ones, or None where not ``required`` (a stored run of a kind this code no longer has). A former name is read as
    the kind's name now: here and nowhere else."""
    name = FORMERLY.get(name, name)
    if name in KINDS:
        return KINDS[name]
    if required:
        raise KeyError(f"unknown kind {name!r} (known: {', '.join(sorted(KINDS))})")
    return None


__all__ = ["KINDS", "Kind", "Metric", "get"]
