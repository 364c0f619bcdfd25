"""A1-A15: the book's worked convolution, pooling, LeNet-shape, batch-norm and skip-block examples."""

from harness.kinds.base import Kind, parts
from harness.kinds.worked_examples.settings import METRICS, Settings

KIND = Kind(name="worked_examples", settings=Settings, metrics=METRICS, **parts(__name__))
