"""A tiny example kind, as a user would add one: this folder and one registry line (the test adds the line)."""

from harness.kinds.base import Kind
from tests.kinds.tiny.measure import METRICS, Settings, run
from tests.kinds.tiny.section import section, tables

KIND = Kind(name="tiny", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section)
