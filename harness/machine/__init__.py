"""The machine the code runs on: devices and their clocks, seeds, the environment's fingerprint, timing."""

PEAK_MEMORY = "device.peak_memory_mb"  # the metric a unit records on CUDA (named here: reading it needs no torch)
