"""One discovery run: register each size through a worker, start the APIs, measure every path.

Works under a prefix of its own and deletes what it created at the end, also when SIGTERM or
SIGINT cancel the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractConnection
from redis.asyncio import Redis

from agentroster.contracts import Topology
from agentroster.store.keys import Keys
from bench.discovery.ceiling import CeilingProcess
from bench.discovery.load import Measurement, drive
from bench.discovery.population import Population, Queries
from bench.discovery.report import api_path, print_table, report
from bench.discovery.targets import HTTP_CLIENTS, BareHttpTarget, HttpTarget
from bench.harness.measure import process_cpu_s, redis_cpu_s, rss_kib
from bench.harness.preload import RawPublisher
from bench.harness.processes import Service, free_port, wait_ready
from bench.harness.services import cleanup_prefix, new_prefix, service_env

REGISTER_TIMEOUT_S = 1200.0
#: How long an API process may take to load its read model (a million agents: minutes).
READY_TIMEOUT_S = 900.0


class Bench:
    """One run: a prefix of its own, the sizes in turn, and what it deletes at the end."""

    def __init__(self, args: argparse.Namespace, prefix: str | None = None) -> None:
        self.args = args
        self.prefix = prefix or new_prefix()
        self.names = Topology(self.prefix)
        self.keys = Keys(self.prefix)
        self.population = Population(args.seed)
        self.registered = 0
        # path -> its processes and their base URLs (one, unless --api-processes)
        self.apis: dict[str, list[tuple[Service, str]]] = {}

    async def run(self) -> dict[int, list[Measurement]]:
        """Every size in turn; deletes what the run created, also when it is cancelled."""
        # SIGTERM and SIGINT (even where a shell made the script ignore SIGINT) cancel the run,
        # so the `finally` below stops the processes and deletes what the run created
        main_task = asyncio.current_task()
        assert main_task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, main_task.cancel)
        print(f"prefix {self.prefix}", flush=True)
        connection = await aio_pika.connect(self.args.broker_url)
        redis = Redis.from_url(self.args.redis_url)
        results: dict[int, list[Measurement]] = {}
        try:
            for size in self.args.sizes:
                await self.register(connection, redis, size)
                # a fresh API per size: its read model loads this size (load time, RSS)
                await self.stop_apis()
                for name, pythonpath in self.args.api_variants:
                    count = self.args.api_processes_of.get(name, 1)
                    self.apis[api_path(name)] = [
                        await self.start_api(name, pythonpath) for _ in range(count)
                    ]
                results[size] = await self.measure_size(size, redis)
                print_table(self.args, size, results[size])
            return results
        finally:
            try:
                await self.stop_apis()
            finally:
                await cleanup_prefix(connection, redis, self.prefix)
                await redis.aclose()
                await connection.close()

    async def stop_apis(self) -> None:
        """Stop every API process started so far."""
        for group in self.apis.values():
            for api, _ in group:
                await api.stop()
        self.apis.clear()

    async def register(self, connection: AbstractConnection, redis: Redis, size: int) -> None:
        """Register agents `registered..size-1` through a worker process, then stop it."""
        first = self.registered
        if size <= first:
            return
        self.population.grow(size)
        started = time.perf_counter()
        worker = Service(
            "worker",
            [sys.executable, "-m", "agentroster", "worker"],
            service_env(self.args.broker_url, self.args.redis_url, self.prefix, "INFO"),
            ready="worker started",
        )
        await worker.start()  # it has declared the topology
        publisher = RawPublisher(self.args.broker_url)
        try:
            await publisher.connect()
            seconds = await publisher.publish(
                self.names.commands_exchange,
                size - first,
                lambda j: self.population.register_command(first + j),
            )
            print(
                f"published {size - first:,} registers in {seconds:.1f}s "
                f"({(size - first) / seconds:,.0f}/s)",
                flush=True,
            )
            await self.wait_registered(connection, redis, size, worker)
        finally:
            await publisher.close()
            await worker.stop()
        self.registered = size
        outbox = await redis.xlen(self.keys.outbox)
        print(
            f"registered agents {first:,}..{size - 1:,} through the worker in "
            f"{time.perf_counter() - started:.1f}s; worker stopped ({outbox:,} outbox entries)",
            flush=True,
        )

    async def wait_registered(
        self, connection: AbstractConnection, redis: Redis, size: int, worker: Service
    ) -> None:
        """Until `{prefix}:agents` and `{prefix}:status:live` both hold `size` agents."""
        deadline = time.monotonic() + REGISTER_TIMEOUT_S
        last_report = time.monotonic()
        while True:
            known = await redis.zcard(self.keys.agents)
            live = await redis.zcard(self.keys.status("live"))
            if known >= size and live >= size:
                if known != size or live != size:
                    raise RuntimeError(f"{known} agents, {live} live; expected {size}")
                return
            if not worker.alive() or time.monotonic() > deadline:
                channel = await connection.channel()
                queue = await channel.declare_queue(self.names.dead_letter_queue, passive=True)
                dead = queue.declaration_result.message_count
                await channel.close()
                raise RuntimeError(
                    f"registration stalled at {live:,} live of {size:,} ({dead} dead-lettered)"
                    f"; worker output:\n{worker.output()}"
                )
            if time.monotonic() - last_report > 10:
                print(f"  ... {live:,} live", flush=True)
                last_report = time.monotonic()
            await asyncio.sleep(0.1)

    async def start_api(self, name: str, pythonpath: str) -> tuple[Service, str]:
        """One API process (`name` '' is the installed code, unless `pythonpath` says)."""
        port = free_port()
        env = service_env(self.args.broker_url, self.args.redis_url, self.prefix, "INFO")
        env.update(self.args.api_env.get(name, {}))
        if pythonpath:  # experiments: a modified copy of src, extra packages
            env["PYTHONPATH"] = os.pathsep.join(
                [pythonpath, *filter(None, [env.get("PYTHONPATH")])]
            )
        api = Service(
            "api",
            [
                sys.executable,
                "-m",
                "agentroster",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            ready="Uvicorn running",
        )
        started = time.perf_counter()
        await api.start()
        base_url = f"http://127.0.0.1:{port}"
        variant = f" ({name}: PYTHONPATH {pythonpath or '-'})" if name else ""
        print(f"API process {api.pid} serving {base_url}{variant}", flush=True)
        await wait_ready(base_url, READY_TIMEOUT_S)  # the read model loaded and caught up
        print(
            f"  ready after {time.perf_counter() - started:.1f}s; "
            f"RSS {rss_kib(api.pid)[0] / 1024:,.0f} MiB",
            flush=True,
        )
        return api, base_url

    async def measure_api(
        self,
        kind: str,
        path: str,
        clients: Sequence[HttpTarget | BareHttpTarget],
        queries: Queries,
        apis: Sequence[Service],
        redis: Redis,
    ) -> Measurement:
        """Warm up, then measure one kind against the processes of one API path (their CPU
        summed, ours, Redis's)."""
        args = self.args
        await drive(
            kind,
            clients,
            queries,
            args.warmup,
            args.max_requests,
            args.seed + 1,
            complete_walks=False,
        )

        def server_cpu_s() -> float:
            return sum(process_cpu_s(api.pid) for api in apis)

        before = (server_cpu_s(), time.process_time(), await redis_cpu_s(redis))
        load = await drive(kind, clients, queries, args.seconds, args.max_requests, args.seed)
        usage = {
            "server_cpu_s": server_cpu_s() - before[0],
            "client_cpu_s": time.process_time() - before[1],
            "redis_cpu_s": await redis_cpu_s(redis) - before[2],
        }
        return Measurement.of(kind, path, load, **usage)

    async def measure_size(self, size: int, redis: Redis) -> list[Measurement]:
        """Every kind at one size: each API, then each ceiling, `--repeat` times."""
        args = self.args
        queries = Queries(self.population, size, args.seed)
        # the clients of a path spread over its processes, one base URL each in turn
        clients = {
            path: [
                HTTP_CLIENTS[args.client](group[number % len(group)][1])
                for number in range(args.concurrency)
            ]
            for path, group in self.apis.items()
        }
        ceilings = [CeilingProcess(args, v, self.prefix, size) for v in args.ceilings]
        results: list[Measurement] = []
        try:
            for ceiling in ceilings:
                await ceiling.start()
            for kind in args.kinds:
                for _ in range(args.repeat):  # each API, then each ceiling, in turn
                    for path, group in self.apis.items():
                        apis = [api for api, _ in group]
                        results.append(
                            await self.measure_api(kind, path, clients[path], queries, apis, redis)
                        )
                        report(size, results[-1])
                    for ceiling in ceilings:
                        results.append(await ceiling.measure(kind))
                        report(size, results[-1])
                for group in self.apis.values():
                    for api, _ in group:
                        if not api.alive():
                            raise RuntimeError(f"the API process exited: {api.output()}")
        finally:
            for targets in clients.values():
                for client in targets:
                    await client.aclose()
            for ceiling in ceilings:
                await ceiling.stop()
        return results
