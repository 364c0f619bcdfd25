"""F1-F4, F7-F8: the modern CNNs trained on Fashion-MNIST as d2l 7.1-7.7 train them.

The lenet kind's measurement with the book's recipe (``train_ch6``: Xavier init, SGD) as its defaults: each
batch resized on the device as it is drawn, the matmul ceiling measured alongside. A CPU-sized smoke spec sets a
subset and a lower resolution and says so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.kinds.lenet import settings as lenet


class Settings(lenet.Settings):
    init: Literal["default", "xavier"] = Field("xavier", description="train_ch6's xavier_uniform_ init")
    optimizer: Literal["adam", "sgd"] = "sgd"
    batch_size: int = Field(128, ge=1, le=60_000)
    epochs: int = Field(10, ge=1, le=200)
    ceiling: bool = True
    fold: int | None = Field(1, ge=1, le=64, description="harness loop: images folded into grouped convolutions; "
                             "off, since the fold pays for LeNet's 6-channel layers and slows wide ones down")
