"""The floor under an HTTP heartbeat in Python on this machine: server CPU per request of bare
ASGI apps on uvicorn (httptools, uvloop), alone and publishing each request to RabbitMQ with
publisher confirms (aiormq directly, or aio-pika as the API's gateway does), and of a FastAPI
route with a body model and one dependency that publishes nothing.

Each variant is a server process of its own, driven by the same bare HTTP/1.1 keep-alive client
as `bench.http_writes` (`--concurrency` in flight); its CPU (/proc/<pid>/stat) over the phase,
divided by the requests, is the figure. It tells how far below these floors `bench.http_writes`'
goal (0.15 ms of API CPU per HTTP heartbeat) lies.

    .venv/bin/python -m bench.http_floor --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

import aio_pika
import orjson
from fastapi import Depends, FastAPI, Header, Response
from pydantic import BaseModel

from bench.harness.measure import load_average, process_cpu_s
from bench.harness.processes import Service, free_port, role_command
from bench.harness.services import add_service_options
from bench.http_writes import RawHttp, _spread

VARIANTS = ("asgi", "asgi+aiormq", "asgi+aio-pika", "fastapi")
ANSWER = orjson.dumps({"outcome": "accepted", "ttl_s": 30.0, "heartbeat_in_s": 10.0})
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(ANSWER)).encode()),
    (b"retry-after", b"10"),
]


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _asgi_app(publish: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                message = await receive()
                await send({"type": message["type"] + ".complete"})
            return
        body = orjson.loads(await _body(receive) or b"{}")
        if publish is not None:
            await publish(orjson.dumps(body))
        await send({"type": "http.response.start", "status": 202, "headers": HEADERS})
        await send({"type": "http.response.body", "body": ANSWER})

    return app


class Beat(BaseModel):
    """The heartbeat body of the FastAPI variant."""

    ttl_s: float | None = None
    card_digest: str | None = None
    seq: int | None = None


async def _key(authorization: Annotated[str, Header()]) -> str:
    return authorization


def _fastapi_app() -> Any:
    app = FastAPI()

    @app.post("/v1/agents/{agent_id}/instances/{instance_id}/heartbeat", status_code=202)
    async def beat(
        agent_id: str, instance_id: str, body: Beat, who: Annotated[str, Depends(_key)]
    ) -> Response:
        return Response(ANSWER, 202, media_type="application/json")

    return app


async def serve(variant: str, port: int, broker_url: str, queue: str) -> None:
    """Serve one variant until SIGTERM."""
    import uvicorn

    publish = None
    if variant == "asgi+aiormq":
        import aiormq
        from pamqp.commands import Basic

        connection = await aiormq.connect(broker_url)
        channel = await connection.channel(publisher_confirms=True)
        properties = Basic.Properties(content_type="application/json", delivery_mode=2)

        async def publish(body: bytes) -> None:
            await channel.basic_publish(body, routing_key=queue, properties=properties)

    elif variant == "asgi+aio-pika":
        pika = await aio_pika.connect_robust(broker_url)
        exchange = (await pika.channel(publisher_confirms=True)).default_exchange

        async def publish(body: bytes) -> None:
            await exchange.publish(
                aio_pika.Message(body, content_type="application/json", delivery_mode=2), queue
            )

    app = _fastapi_app() if variant == "fastapi" else _asgi_app(publish)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http="httptools", log_level="warning", access_log=False
    )
    print("serving", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve()


async def measure(variant: str, args: argparse.Namespace, queue: str) -> tuple[float, float]:
    """(server CPU ms per request, requests per second) of one variant."""
    port = free_port()
    command = role_command(
        "bench.http_floor", "--role", "server", "--variant", variant, "--port", str(port),
        "--queue", queue, "--broker-url", args.broker_url,
    )  # fmt: skip
    server = Service(variant, command, dict(os.environ), "serving")
    await server.start()
    client = RawHttp(port)
    body = orjson.dumps({"ttl_s": 30})
    path = "/v1/agents/weather/instances/weather-1/heartbeat"
    try:
        for _ in range(50):  # warm up; also waits for uvicorn to accept
            try:
                await client.post(path, body)
                break
            except OSError:
                await asyncio.sleep(0.1)

        async def one(_: int) -> None:
            status, _answer = await client.post(path, body)
            assert status == 202, status

        await _spread(500, args.concurrency, one)
        before, started = process_cpu_s(server.pid), time.perf_counter()
        await _spread(args.requests, args.concurrency, one)
        elapsed, cpu = time.perf_counter() - started, process_cpu_s(server.pid) - before
    finally:
        await client.close()
        await server.stop()
    return cpu * 1000 / args.requests, args.requests / elapsed


async def main(args: argparse.Namespace) -> None:
    """Measure every variant in turn; print a table."""
    queue = f"bench-floor-{uuid.uuid4().hex[:10]}"
    connection = await aio_pika.connect(args.broker_url)
    channel = await connection.channel()
    await channel.declare_queue(queue, arguments={"x-max-length": 100_000})
    rows = []
    try:
        for variant in args.variants:
            rows.append((variant, *await measure(variant, args, queue)))
    finally:
        await channel.queue_delete(queue)
        await connection.close()
    print(
        f"\nHTTP floor: {args.requests:,} requests per variant, {args.concurrency} in flight, "
        f"load {load_average():.2f}"
    )
    print(f"{'variant':<16}{'server ms/req':>14}{'req/s':>10}")
    for variant, ms, rate in rows:
        print(f"{variant:<16}{ms:>14.3f}{rate:>10,.0f}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of a run (and of a server role)."""
    parser = argparse.ArgumentParser(prog="python -m bench.http_floor")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--variants", type=lambda s: s.split(","), default=list(VARIANTS), help=",".join(VARIANTS)
    )
    parser.add_argument("--role", choices=["server"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    add_service_options(parser, cleanup=False)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.role == "server":
        import uvloop

        uvloop.run(serve(arguments.variant, arguments.port, arguments.broker_url, arguments.queue))
    else:
        asyncio.run(main(arguments))
