"""D1: seconds per update and per epoch against the batch size, LeNet on Fashion-MNIST."""

from harness.kinds.base import Kind, parts
from harness.kinds.batch_speed.settings import METRICS, Settings

KIND = Kind(name="batch_speed", settings=Settings, metrics=METRICS, **parts(__name__))
