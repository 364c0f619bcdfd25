"""Execution: a spec's (device, seed) units, where they run (here or on Ray), and the spec run that judges them."""
