"""Issue 15, test 2: with tracing on, an agent's publish, the worker's apply, the relayed event
and a subscriber's receipt share one trace id; an HTTP write's request span is in the trace of
the command it sends. The agent and `agentroster up` are processes of their own exporting over
OTLP/HTTP to a receiver in this test; the subscriber (a Roster reading the event log stream)
runs here, its spans kept in memory."""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentroster.client import Roster
from agentroster.contracts import Topology
from agentroster.contracts.ids import derive_agent_id
from agentroster.settings import Settings
from tests.helpers import RunningProgram, registry_server, serve_http
from tests.integration.agents import a2a_card
from tests.tracing_support import by_name, spans

__all__ = ["spans"]  # a fixture

PROGRAM = Path(__file__).parent / "programs" / "traced_beacon.py"
#: Guards against a hang only: spans are exported within OTEL_BSP_SCHEDULE_DELAY.
TIMEOUT_S = 30.0
KEY = "test-bootstrap-admin-key-" + "t" * 16
#: OTLP's span kinds (opentelemetry-proto): SERVER 2, PRODUCER 4, CONSUMER 5.
SERVER, PRODUCER, CONSUMER = 2, 4, 5


@dataclass(frozen=True)
class ExportedSpan:
    """One span as an OTLP exporter sent it."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str


@dataclass
class OtlpReceiver:
    """A local OTLP/HTTP trace receiver: `POST /v1/traces`, protobuf, decoded and kept."""

    spans: list[ExportedSpan] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> Starlette:
        """The receiver as an ASGI app."""
        return Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])

    async def _traces(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        received = []
        for resource_spans in export.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                received += [
                    ExportedSpan(
                        service,
                        span.name,
                        span.kind,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                    )
                    for span in scope_spans.spans
                ]
        async with self._arrived:
            self.spans += received
            self._arrived.notify_all()
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )

    async def wait_for(self, predicate: Callable[[ExportedSpan], bool]) -> ExportedSpan:
        """The first span received that satisfies `predicate`, once it arrives."""
        async with asyncio.timeout(TIMEOUT_S), self._arrived:
            await self._arrived.wait_for(lambda: any(map(predicate, self.spans)))
            return next(filter(predicate, self.spans))


def otel_env(endpoint: str, service: str) -> dict[str, str]:
    """Tracing on, exporting to the receiver at `endpoint` within 50 ms of a span's end."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": service,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


async def test_one_trace_from_an_agents_publish_through_the_worker_to_a_subscriber(
    settings: Settings, cleanup: None, spans: InMemorySpanExporter, repo_root: Path
) -> None:
    receiver = OtlpReceiver()
    topology = Topology(settings.prefix)
    name = "traced-agent"
    agent_id = derive_agent_id(name)
    async with (
        serve_http(receiver.app()) as endpoint,
        registry_server(settings, **otel_env(endpoint, "registry")) as registry,
        Roster(
            registry.url,
            events_from=settings.broker_url,
            prefix=settings.prefix,
            sync_timeout=TIMEOUT_S,
        ) as roster,
    ):
        env = {
            **os.environ,
            **otel_env(endpoint, "agent"),
            "AGENTROSTER_BROKER_URL": settings.broker_url,
            "AGENTROSTER_PREFIX": settings.prefix,
            "PYTHONUNBUFFERED": "1",
        }
        async with RunningProgram.run(
            sys.executable, str(PROGRAM), name, env=env, cwd=repo_root
        ) as agent:
            await agent.wait_for_line(lambda line: line == "registered")
            await roster.wait_for(agent_id, timeout=TIMEOUT_S)

            published = await receiver.wait_for(
                lambda s: s.service == "agent" and s.name == f"publish {topology.commands_exchange}"
            )
            assert published.kind == PRODUCER
            trace_id = published.trace_id
            applied = await receiver.wait_for(
                lambda s: (
                    s.service == "registry"
                    and s.name == f"process {topology.commands_exchange}"
                    and s.trace_id == trace_id
                )
            )
            assert (applied.kind, applied.parent_id) == (CONSUMER, published.span_id)
            relayed = await receiver.wait_for(
                lambda s: (
                    s.service == "registry"
                    and s.name == f"publish {topology.events_exchange}"
                    and s.trace_id == trace_id
                )
            )
            assert (relayed.kind, relayed.parent_id) == (PRODUCER, applied.span_id)
            await agent.stop()

    (received,) = [s for s in by_name(spans, "process") if f"{s.context.trace_id:032x}" == trace_id]
    assert received.kind is SpanKind.CONSUMER
    assert received.parent is not None
    assert f"{received.parent.span_id:016x}" == relayed.span_id


async def test_an_http_write_is_one_trace_from_the_request_to_the_worker(
    settings: Settings, cleanup: None
) -> None:
    receiver = OtlpReceiver()
    topology = Topology(settings.prefix)
    # the caller's own trace: the request's SERVER span continues it
    trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with (
        serve_http(receiver.app()) as endpoint,
        registry_server(
            settings, AGENTROSTER_BOOTSTRAP_ADMIN_KEY=KEY, **otel_env(endpoint, "registry")
        ) as registry,
        httpx.AsyncClient(base_url=registry.url) as http,
    ):
        answer = await http.put(
            "/v1/agents/traced-http/instances/i1",
            json={"card": a2a_card("traced-http"), "ttl_s": 30},
            params={"wait": "true"},
            headers={
                "Authorization": f"Bearer {KEY}",
                "traceparent": f"00-{trace_id}-{caller_span}-01",
            },
        )
        assert answer.status_code == 200, answer.text
        request = await receiver.wait_for(
            lambda s: s.trace_id == trace_id and s.kind == SERVER and s.parent_id == caller_span
        )
        sent = await receiver.wait_for(
            lambda s: s.trace_id == trace_id and s.name == f"publish {topology.commands_exchange}"
        )
        assert (sent.kind, sent.parent_id) == (PRODUCER, request.span_id)
        applied = await receiver.wait_for(
            lambda s: s.trace_id == trace_id and s.name == f"process {topology.commands_exchange}"
        )
        assert (applied.kind, applied.parent_id) == (CONSUMER, sent.span_id)
