"""C1-C3 and the other trained networks: the harness loop, the tutorial's and the book's package's, on Fashion-MNIST."""

from harness.kinds.base import Kind, parts
from harness.kinds.lenet.settings import LOOPS, METRICS, Settings

KIND = Kind(name="lenet", settings=Settings, metrics=METRICS, **parts(__name__, "speedups", "locate"),
            curves=tuple(f"{p}{m}" for p in ("", *(f"{loop}." for loop in LOOPS))
                         for m in ("loss", "train_acc", "test_acc")))
