"""Reporting: REPORT.md and its tables, the history of headline figures, comparisons of suites, repeats."""
