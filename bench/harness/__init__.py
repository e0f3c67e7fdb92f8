"""What the benchmarks share, written once.

- `services`: the services' URLs and command-line options, a run's unique prefix, and the
  cleanup that deletes exactly what a run under that prefix created;
- `measure`: CPU, memory and load of processes and of Redis, queue depths, percentiles;
- `processes`: free ports, server subprocesses that say when they are up, and the command
  that starts a benchmark's own role process;
- `preload`: a bare AMQP publisher that fills a queue fast, outside any measurement;
- `tables`: fixed-width tables declared once by their columns.
"""
