"""agentroster's benchmarks: run each as a module from the repository root.

`.venv/bin/python -m bench.heartbeats`, `-m bench.discovery`, ... (bench/README.md lists them
with the figures they printed). What every benchmark shares (service URLs, unique prefixes and
cleanup, measuring processes, subprocesses, percentiles) is in `bench.harness`.
"""
