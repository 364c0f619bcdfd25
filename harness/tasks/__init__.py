"""One module per kind of experiment; each exports KIND, Settings, METRICS and run().

``run(settings, rec)`` runs one (seed, device) and returns the measured values by metric
name; ``section(view)``, where a module has one, renders its part of the report from
recorded runs.
"""

from harness.tasks import batch_speed, conv_throughput, edge_kernel, lenet, worked_examples

TASKS = {m.KIND: m for m in (worked_examples, edge_kernel, conv_throughput, batch_speed, lenet)}
