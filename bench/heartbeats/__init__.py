"""Heartbeat throughput of the worker against a raw aio-pika consumer (the ceiling).

Run from the repository root: `.venv/bin/python -m bench.heartbeats` (see bench/README.md).

1. Registers `--agents` agents through the real worker (in this process), then stops it.
2. For each variant (worker and ceiling by default; see VARIANTS): pre-loads `--heartbeats`
   heartbeat commands into `<prefix>.commands` while nothing consumes, starts ONE consumer
   process of that variant, and measures it from the moment the queue starts to drain to the
   moment the last heartbeat is in Redis (wall time, and the consumer process's CPU time from
   /proc/<pid>/stat over the same window).
   Scale-out (`--workers 1,2,3`): the same with that many processes of the variant (the
   worker by default) started together, held at a gate until every one is up, their CPU
   summed; the table adds heartbeats/s per count and the ratio to one process.
3. Prints heartbeats/s and CPU us/heartbeat per variant and the ratio worker/ceiling, checks
   that every heartbeat was applied, and deletes everything it created (queues, exchanges and
   Redis keys of its own unique prefix, nothing else).

The same command is the consumer processes: `--role <variant> --prefix <prefix>` (internal).

Modules: `agents` (the agents and their commands), `roles` (the consumer processes), `run`
(registration, pre-load, the measurement window), `report` (the table), `__main__` (the CLI).
"""
