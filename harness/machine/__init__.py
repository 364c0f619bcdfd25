"""The machine the code runs on: devices and their clocks, seeds, the environment's fingerprint, timing."""
