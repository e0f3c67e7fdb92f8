"""Issue 15: the registry's Prometheus metrics reach an OTLP/HTTP receiver when
`OTEL_METRICS_EXPORTER=otlp` asks, with their values: the worker's and the API's from
`agentroster up`, the worker's from `agentroster worker`, the API's from `agentroster api`.
The processes are real, the receiver runs in this test and decodes what the OTLP exporter
sends."""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import aio_pika
import httpx
import orjson
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentroster.contracts import Topology
from agentroster.settings import Settings
from tests.helpers import RunningProgram, WorkerProcess, free_port, registry_server, serve_http
from tests.integration.agents import command_body

#: Guards against a hang only: the processes export every 100 ms.
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Point:
    """One data point as the exporter sent it: a sum's or gauge's value, a histogram's count."""

    service: str
    metric: str
    kind: str  # sum, gauge, histogram
    attributes: dict[str, str]
    value: float
    monotonic: bool = False
    bounds: tuple[float, ...] = ()


@dataclass
class OtlpMetricsReceiver:
    """A local OTLP/HTTP metrics receiver: `POST /v1/metrics`, protobuf, decoded and kept."""

    points: list[Point] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> Starlette:
        """The receiver as an ASGI app."""
        return Starlette(routes=[Route("/v1/metrics", self._metrics, methods=["POST"])])

    async def _metrics(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportMetricsServiceRequest.FromString(body)
        received: list[Point] = []
        for resource_metrics in export.resource_metrics:
            service = next(
                (
                    a.value.string_value
                    for a in resource_metrics.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    received += _points(service, metric)
        async with self._arrived:
            self.points += received
            self._arrived.notify_all()
        return Response(
            ExportMetricsServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )

    async def wait_for(self, predicate: Callable[[Point], bool]) -> Point:
        """The first point received that satisfies `predicate`, once it arrives."""
        async with asyncio.timeout(TIMEOUT_S), self._arrived:
            await self._arrived.wait_for(lambda: any(map(predicate, self.points)))
            return next(filter(predicate, self.points))


def _points(service: str, metric: object) -> list[Point]:
    kind = metric.WhichOneof("data")  # type: ignore[attr-defined]
    name: str = metric.name  # type: ignore[attr-defined]
    data = getattr(metric, kind)

    def attributes(point: object) -> dict[str, str]:
        return {a.key: a.value.string_value for a in point.attributes}  # type: ignore[attr-defined]

    if kind == "histogram":
        return [
            Point(service, name, kind, attributes(p), p.count, bounds=tuple(p.explicit_bounds))
            for p in data.data_points
        ]
    monotonic = bool(getattr(data, "is_monotonic", False))
    return [
        Point(service, name, kind, attributes(p), p.as_double or p.as_int, monotonic)
        for p in data.data_points
    ]


def metrics_env(endpoint: str, service: str) -> dict[str, str]:
    """Metrics export on (only metrics: no OTEL_TRACES_EXPORTER), every 100 ms."""
    return {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{endpoint}/v1/metrics",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": service,
        "OTEL_METRIC_EXPORT_INTERVAL": "100",
    }


async def publish_commands(settings: Settings, agent_id: str) -> None:
    """A valid register for `agent_id`, and a body that is not JSON next to it."""
    topology = Topology(settings.prefix)
    connection = await aio_pika.connect(settings.broker_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.commands_exchange)
        await exchange.publish(
            aio_pika.Message(b"{not json", content_type="application/json"),
            routing_key=f"agent.{agent_id}-bad.register",
        )
        await exchange.publish(
            aio_pika.Message(orjson.dumps(command_body(agent_id)), content_type="application/json"),
            routing_key=f"agent.{agent_id}.register",
        )


async def test_agentroster_up_exports_the_workers_and_the_apis_metrics_over_otlp(
    settings: Settings, cleanup: None
) -> None:
    receiver = OtlpMetricsReceiver()
    async with (
        serve_http(receiver.app()) as endpoint,
        registry_server(settings, **metrics_env(endpoint, "registry")) as registry,
        httpx.AsyncClient(base_url=registry.url) as http,
    ):
        await publish_commands(settings, "metered")
        applied = await receiver.wait_for(
            lambda p: (
                p.metric == "agentroster_commands_total"
                and p.attributes.get("kind") == "register"
                and p.value >= 1
            )
        )
        assert (applied.service, applied.kind, applied.monotonic) == ("registry", "sum", True)
        assert applied.attributes["outcome"] == "applied", applied
        dead = await receiver.wait_for(lambda p: p.metric == "agentroster_dead_lettered_total")
        assert dead.value == 1, dead  # the bad one, counted with its reason; nobody else
        assert (await http.get("/v1/agents", params={"limit": 10})).status_code == 200

        def the_listing(p: Point) -> bool:
            return p.attributes.get("route") == "/v1/agents" and p.value == 1

        requests = await receiver.wait_for(
            lambda p: p.metric == "agentroster_http_requests_total" and the_listing(p)
        )
        assert requests.attributes == {"method": "GET", "route": "/v1/agents", "status": "200"}
        latency = await receiver.wait_for(
            lambda p: p.metric == "agentroster_http_request_duration_seconds" and the_listing(p)
        )
        assert latency.kind == "histogram"
        assert latency.bounds[:3] == (0.005, 0.01, 0.025)  # prometheus-client's own buckets
        depth = await receiver.wait_for(lambda p: p.metric == "agentroster_outbox_depth")
        assert depth.kind == "gauge"


async def test_agentroster_worker_exports_its_metrics_over_otlp(
    settings: Settings, cleanup: None
) -> None:
    receiver = OtlpMetricsReceiver()
    async with serve_http(receiver.app()) as endpoint:
        process = await WorkerProcess(settings, env=metrics_env(endpoint, "worker")).start()
        try:
            await publish_commands(settings, "metered-worker")
            applied = await receiver.wait_for(
                lambda p: (
                    p.metric == "agentroster_commands_total"
                    and p.attributes.get("kind") == "register"
                    and p.attributes.get("outcome") == "applied"
                    and p.value == 1
                )
            )
            assert applied.service == "worker"
            dead = await receiver.wait_for(lambda p: p.metric == "agentroster_dead_lettered_total")
            assert dead.value == 1, dead
        finally:
            assert await process.stop() == 0
        assert not any(p.metric.startswith("agentroster_http_") for p in receiver.points)


async def test_agentroster_api_exports_its_metrics_over_otlp(
    settings: Settings, cleanup: None
) -> None:
    receiver = OtlpMetricsReceiver()
    port = free_port()
    async with serve_http(receiver.app()) as endpoint:
        env = {
            **os.environ,
            "AGENTROSTER_BROKER_URL": settings.broker_url,
            "AGENTROSTER_REDIS_URL": settings.redis_url,
            "AGENTROSTER_PREFIX": settings.prefix,
            **metrics_env(endpoint, "api"),
        }
        argv = (sys.executable, "-m", "agentroster", "api", "--host", "127.0.0.1")
        async with RunningProgram.run(*argv, "--port", str(port), env=env) as api:
            await api.wait_for_line(lambda line: "Uvicorn running" in line)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/healthz")).status_code == 200
            requests = await receiver.wait_for(
                lambda p: (
                    p.metric == "agentroster_http_requests_total"
                    and p.attributes.get("route") == "/healthz"
                )
            )
            assert (requests.service, requests.value) == ("api", 1)
            assert await api.stop() == 0
        # the API process owns no worker: none of the worker's metrics
        assert not any(p.metric == "agentroster_commands_total" for p in receiver.points)
