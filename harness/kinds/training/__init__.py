"""LeNet, the modern CNNs, BN-LeNet and the peer runs trained on Fashion-MNIST: the harness loop, the tutorial's and the
book's package's, with the recipe as a setting."""

from harness.kinds.base import Kind, parts
from harness.kinds.training.settings import LOOPS, METRICS, Settings

KIND = Kind(name="training", settings=Settings, metrics=METRICS, **parts(__name__, "speedups", "locate"),
            curves=tuple(f"{p}{m}" for p in ("", *(f"{loop}." for loop in LOOPS))
                         for m in ("loss", "train_acc", "test_acc")))
