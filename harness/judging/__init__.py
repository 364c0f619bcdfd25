"""Judging: intervals, verdicts, the sequential rule that buys timing rounds, and its calibration."""
