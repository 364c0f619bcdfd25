"""D1: seconds per update and per epoch against the batch size, LeNet on Fashion-MNIST."""

from harness.kinds.base import Kind
from harness.kinds.batch_speed.measure import METRICS, Settings, run
from harness.kinds.batch_speed.section import section, tables

KIND = Kind(name="batch_speed", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section)
