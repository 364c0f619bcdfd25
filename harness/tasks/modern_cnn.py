"""F1-F4: AlexNet, VGG, NiN and GoogLeNet trained on Fashion-MNIST as d2l 7.1-7.4 train them.

The book's recipe: ``load_data_fashion_mnist(batch_size=128, resize=224)`` (96 for GoogLeNet), ``train_ch6``
(Xavier init, SGD, cross-entropy), 10 epochs, on a GPU. Here the 28x28 set sits in device memory and each batch
is resized on the device as it is drawn (the book's loader resizes an image at a time), and the loop is the
harness loop of the LeNet kind (``harness.tasks.lenet``), which also counts each network's training FLOP per
example and sets its examples/s against the measured matmul ceiling.
The defaults are the book's; a CPU-sized smoke spec sets a subset and a lower resolution and says so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.tasks import lenet
from harness.tasks.lenet import CURVES, DIRECTIONS, METRICS, TIMINGS, run, section, tables

KIND = "modern_cnn"


class Settings(lenet.Settings):
    init: Literal["default", "xavier"] = Field("xavier", description="train_ch6's xavier_uniform_ init")
    optimizer: Literal["adam", "sgd"] = "sgd"
    batch_size: int = Field(128, ge=1, le=60_000)
    epochs: int = Field(10, ge=1, le=200)
    ceiling: bool = True
    fold: int | None = Field(1, ge=1, le=64, description="harness loop: images folded into grouped convolutions; "
                             "off, since the fold pays for LeNet's 6-channel layers and slows wide ones down")


__all__ = ["CURVES", "DIRECTIONS", "KIND", "METRICS", "TIMINGS", "Settings", "run", "section", "tables"]
