"""Every kind of experiment by name. A new kind is a folder beside this file and one line here."""

from __future__ import annotations

from harness.kinds import (
    batch_speed,
    calibration,
    conv_throughput,
    edge_kernel,
    lenet,
    modern_cnn,
    structure,
    worked_examples,
)
from harness.kinds.base import Kind, Metric

KINDS: dict[str, Kind] = {k.name: k for k in (
    worked_examples.KIND,
    structure.KIND,
    edge_kernel.KIND,
    conv_throughput.KIND,
    batch_speed.KIND,
    lenet.KIND,
    modern_cnn.KIND,
    calibration.KIND,
)}


def get(name: str) -> Kind:
    """The kind called ``name``; a ``KeyError`` that lists the known ones where there is none."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown kind {name!r} (known: {', '.join(sorted(KINDS))})") from None


__all__ = ["KINDS", "Kind", "Metric", "get"]
