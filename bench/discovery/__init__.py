"""Discovery latency and throughput of the read API against direct Redis reads (the ceiling).

Run from the repository root: `.venv/bin/python -m bench.discovery` (see bench/README.md).

1. Registers agents through the real worker (`python -m agentroster worker`, a subprocess),
   each with 8 of 200 skills and 3 tags, lease TTL 3600 s, then stops the worker. The sizes of
   `--sizes` are reached in turn: a larger size registers only the agents it adds.
2. Serves the API in a separate process (`python -m agentroster api`; one per
   `--api-variant`, to compare code or packages on the same data) and loads it from this
   process over loopback: `--concurrency` clients, each with one keep-alive connection
   (`--client`: an `httpx.AsyncClient`, or bare asyncio streams), for `--seconds` (at most
   `--max-requests`) per query kind.
3. The ceiling: the same Redis reads without HTTP, from one process with as many concurrent
   tasks and the process settings of `agentroster api` (garbage collector, event loop): `raw`
   (EVALSHA of query.lua, whose reply holds the page's summaries, or of the read-one-agent
   script; nothing is converted) and `reader` (`RegistryReader`, the code the API calls).
   Kinds alternate: each API, raw, reader.
4. Prints one table per size, then deletes everything it created (its own prefix only).

The same command is the ceiling processes: `--role ceiling --variant raw|reader` (internal).

Modules: `population` (the agents and the queries), `targets` (HTTP clients and the Redis
ceilings), `load` (driving the load, `Measurement`), `ceiling` (the ceiling process), `run`
(registration, API processes, the measurements), `report` (lines and tables), `__main__`.
"""
