"""Reading the store back: a recorded run as a view, suites and spec runs resolved, their samples, bundles."""
