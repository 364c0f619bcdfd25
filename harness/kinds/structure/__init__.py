"""E1-E6 and EX1-EX4: the modern CNNs' output shape block by block, parameter count and forward FLOP."""

from harness.kinds.base import Kind, parts
from harness.kinds.structure.settings import METRICS, Settings

KIND = Kind(name="structure", settings=Settings, metrics=METRICS, **parts(__name__))
