"""C1-C3 and the other trained networks: the harness loop, the tutorial's and the book's package's, on Fashion-MNIST."""

from harness.kinds.base import Kind
from harness.kinds.lenet.measure import LOOPS, METRICS, Settings, run
from harness.kinds.lenet.section import section, speedups, tables

KIND = Kind(name="lenet", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section,
            speedups=speedups,
            curves=tuple(f"{p}{m}" for p in ("", *(f"{loop}." for loop in LOOPS))
                         for m in ("loss", "train_acc", "test_acc")))
