"""H4: the timing rule's own error rates, on synthetic rounds with a known truth (a self-check)."""

from harness.kinds.base import Kind, parts
from harness.kinds.calibration.settings import METRICS, Settings

KIND = Kind(name="calibration", settings=Settings, metrics=METRICS, **parts(__name__))
