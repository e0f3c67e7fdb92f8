"""Trace context through publish, apply, relay and receive, with the SDK's in-memory exporter;
off (no provider set), nothing is added; what a client sends as trace context is checked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage
from fastapi import FastAPI
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agentroster import tracing
from agentroster.api.http_tracing import instrument
from agentroster.client._publisher import CommandPublisher
from agentroster.contracts import Heartbeat, Topology
from agentroster.contracts.commands import command_json
from agentroster.logs import configure_logging
from agentroster.registry.prepare import Limits, Prepared
from agentroster.store.outbox import OutboxEvent
from agentroster.store.redis_store import APPLIED, ApplyResult, Quotas
from agentroster.telemetry import configure_tracing, wanted
from agentroster.worker.batcher import CommandBatcher
from agentroster.worker.metrics import WorkerMetrics
from agentroster.worker.relay import OutboxRelay
from tests.tracing_support import by_name, spans, untraced

__all__ = ["spans", "untraced"]  # fixtures

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
EXCHANGE = "t.commands"


def ids(traceparent: object) -> tuple[str, str]:
    """The trace id and parent id of a traceparent (its flags vary with the SDK)."""
    assert isinstance(traceparent, str)
    _, trace_id, parent_id, _ = traceparent.split("-")
    return trace_id, parent_id


def span_ids(span: ReadableSpan) -> tuple[str, str]:
    """A span's trace id and span id as a traceparent spells them."""
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


# --- the client's publish ---------------------------------------------------------------------


@dataclass
class FakeExchange:
    name: str = EXCHANGE
    sent: list[tuple[aio_pika.Message, str]] = field(default_factory=list)

    async def publish(self, message: aio_pika.Message, routing_key: str, mandatory: bool) -> None:
        self.sent.append((message, routing_key))


class OpenChannel:
    is_closed = False


def connected_publisher() -> tuple[CommandPublisher, FakeExchange]:
    """A CommandPublisher whose exchange is a fake: what it would send is kept."""
    publisher = CommandPublisher("amqp://agent:secret@127.0.0.1/", prefix="t")
    exchange = FakeExchange()
    publisher._connection = cast(Any, object())
    publisher._channel = cast(Any, OpenChannel())
    publisher._exchange = cast(Any, exchange)
    publisher._traced = tracing.enabled()  # as connect() decides it
    return publisher, exchange


def heartbeat(seq: int = 1) -> Heartbeat:
    return Heartbeat(
        agent_id="a1", instance_id="i1", seq=seq, ttl_s=5, card_digest="", sent_at=datetime.now(UTC)
    )


@pytest.mark.usefixtures("untraced")
async def test_off_by_default_a_publish_carries_no_trace_headers() -> None:
    assert not tracing.enabled()
    publisher, exchange = connected_publisher()
    await publisher.publish("heartbeat", heartbeat())
    ((message, _),) = exchange.sent
    assert not message.headers


async def test_a_publish_is_a_producer_span_whose_context_travels_in_the_headers(
    spans: InMemorySpanExporter,
) -> None:
    publisher, exchange = connected_publisher()
    await publisher.publish("heartbeat", heartbeat())
    ((message, routing_key),) = exchange.sent
    (span,) = by_name(spans, "publish")
    assert span.kind is SpanKind.PRODUCER
    assert span.name == f"publish {EXCHANGE}"
    assert span.attributes is not None
    assert span.attributes["messaging.system"] == "rabbitmq"
    assert span.attributes["messaging.destination.name"] == EXCHANGE
    assert span.attributes["messaging.rabbitmq.destination.routing_key"] == routing_key
    assert span.attributes["messaging.message.id"] == message.message_id
    assert ids(message.headers[tracing.TRACEPARENT]) == span_ids(span)


# --- the worker's apply -------------------------------------------------------------------------


@dataclass
class FakeMessage:
    """What the batcher reads of a delivery."""

    body: bytes
    headers: dict[str, Any]
    routing_key: str = "agent.a1.heartbeat"
    exchange: str = EXCHANGE
    user_id: str | None = "agent"
    reply_to: str | None = None
    correlation_id: str | None = None
    message_id: str | None = "m1"
    channel: object = field(default_factory=object)
    acked: bool = False

    async def ack(self, multiple: bool = False) -> None:
        self.acked = True

    async def nack(self, requeue: bool = True) -> None:
        raise AssertionError("nothing is requeued here")


@dataclass
class FakeStore:
    applied: list[Prepared] = field(default_factory=list)
    quotas: Quotas = field(default_factory=Quotas)

    async def apply(self, commands: Sequence[Prepared]) -> ApplyResult:
        self.applied += commands
        return ApplyResult([APPLIED] * len(commands), 0, [])


class NoDeadLetters:
    async def park(self, message: object, rejected: object) -> None:
        raise AssertionError(f"nothing is dead-lettered here: {rejected}")


async def apply(*messages: FakeMessage) -> list[Prepared]:
    """Run messages through a CommandBatcher (with tracing as it is now); what it stored."""
    store = FakeStore()
    batcher = CommandBatcher(
        cast(Any, store),
        cast(Any, NoDeadLetters()),
        WorkerMetrics(),
        limits=Limits(),
        exchange=EXCHANGE,
    )
    flusher = asyncio.create_task(batcher.run())
    try:
        for message in messages:
            await batcher.on_message(cast(AbstractIncomingMessage, message))
        await batcher.drained()
    finally:
        flusher.cancel()
    assert all(m.acked for m in messages)
    return store.applied


async def test_each_command_is_a_consumer_span_in_its_own_trace(
    spans: InMemorySpanExporter,
) -> None:
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    stored = await apply(
        FakeMessage(command_json(heartbeat(1)), {tracing.TRACEPARENT: PARENT}),
        FakeMessage(command_json(heartbeat(2)), {tracing.TRACEPARENT: other}),
    )
    processed = by_name(spans, "process")
    assert [s.kind for s in processed] == [SpanKind.CONSUMER, SpanKind.CONSUMER]
    for span, sent, prepared in zip(processed, (PARENT, other), stored, strict=True):
        assert span.parent is not None
        assert f"{span.context.trace_id:032x}" == sent.split("-")[1]
        assert f"{span.parent.span_id:016x}" == sent.split("-")[2]
        assert span.attributes is not None
        assert span.attributes["agentroster.outcome"] == "applied"
        assert span.attributes["messaging.batch.message_count"] == 2
        # what the command's events will carry: the worker's span, child of the agent's
        assert ids(prepared.trace) == span_ids(span)


@pytest.mark.usefixtures("untraced")
async def test_with_tracing_off_the_worker_passes_the_context_on_as_it_came() -> None:
    state = "vendor=opaque"
    (prepared,) = await apply(
        FakeMessage(
            command_json(heartbeat()),
            {tracing.TRACEPARENT: PARENT, tracing.TRACESTATE: state},
        )
    )
    assert prepared.trace == f"{PARENT}\n{state}"
    (untraced_command,) = await apply(FakeMessage(command_json(heartbeat()), {}))
    assert untraced_command.trace == ""


@pytest.mark.parametrize(
    "headers",
    [
        {tracing.TRACEPARENT: "x" * 1_000_000},
        {tracing.TRACEPARENT: PARENT.upper()},
        {tracing.TRACEPARENT: PARENT + "\n00-ffff"},
        {tracing.TRACEPARENT: PARENT.encode()},
        {tracing.TRACEPARENT: 7},
        {tracing.TRACEPARENT: {"nested": PARENT}},
        {tracing.TRACESTATE: "vendor=1"},
        {tracing.TRACEPARENT: "00-" + "0" * 32 + "-b7ad6b7169203331-01"},
        {tracing.TRACEPARENT: "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01"},
        {tracing.TRACEPARENT: "ff" + PARENT[2:]},
    ],
    ids=[
        "huge",
        "upper-case",
        "newline",
        "bytes",
        "number",
        "table",
        "state-alone",
        "zero-trace-id",
        "zero-parent-id",
        "version-ff",
    ],
)
@pytest.mark.usefixtures("untraced")
async def test_a_malformed_trace_context_is_dropped_and_the_command_applied(
    headers: dict[str, Any],
) -> None:
    honest = FakeMessage(command_json(heartbeat(2)), {tracing.TRACEPARENT: PARENT})
    hostile, good = await apply(FakeMessage(command_json(heartbeat(1)), headers), honest)
    assert hostile.trace == ""  # nothing stored, nothing relayed to subscribers
    assert good.trace == PARENT


def test_a_hostile_tracestate_is_dropped_but_the_traceparent_kept() -> None:
    for state in ("a=1\nb=2", "x" * (tracing.MAX_TRACESTATE + 1), "caf\u00e9=1", 5):
        found = tracing.trace_headers({tracing.TRACEPARENT: PARENT, tracing.TRACESTATE: state})
        assert found == {tracing.TRACEPARENT: PARENT}


def test_stored_context_round_trips_and_is_checked_again() -> None:
    both = {tracing.TRACEPARENT: PARENT, tracing.TRACESTATE: "a=1,b=2"}
    assert tracing.unpack(tracing.pack(both)) == both
    assert tracing.unpack(tracing.pack({tracing.TRACEPARENT: PARENT})) == {
        tracing.TRACEPARENT: PARENT
    }
    assert tracing.pack({}) == ""
    assert tracing.unpack("") == {}
    assert tracing.unpack("not-a-traceparent\na=1") == {}


# --- the relay and a subscriber ----------------------------------------------------------------


@dataclass
class FakeRabbitPublisher:
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def outbox_event(trace_context: str) -> OutboxEvent:
    return OutboxEvent(
        revision=7,
        kind="joined",
        agent_id="a1",
        status="live",
        live_instances=1,
        reason="registered",
        time_ms=1_700_000_000_000,
        epoch="e",
        view=b"{}",
        card=None,
        trace=trace_context,
    )


async def relay(event: OutboxEvent) -> dict[str, Any]:
    """The headers the relay publishes `event` with."""
    publisher = FakeRabbitPublisher()
    relay = OutboxRelay(
        cast(Any, None),
        cast(Any, {"joined": publisher}),
        WorkerMetrics(),
        topology=Topology("t"),
        source="test",
        user_id="registry",
        lock_ttl_s=2.0,
        window=10,
    )
    await relay._publish(event)
    (sent,) = publisher.sent
    headers: dict[str, Any] = sent["headers"]
    return headers


async def test_the_relayed_event_is_a_producer_span_child_of_the_commands_and_a_subscriber_joins(
    spans: InMemorySpanExporter,
) -> None:
    headers = await relay(outbox_event(PARENT))
    (published,) = by_name(spans, "publish")
    assert published.kind is SpanKind.PRODUCER
    assert published.name == "publish t.events"
    assert published.parent is not None
    assert f"{published.parent.span_id:016x}" == PARENT.split("-")[2]
    assert headers["cloudEvents_id"]  # the CloudEvents headers are still there
    with tracing.processing("t.events", "agent.a1.joined", headers, None) as received:
        assert received is not None
        assert trace.get_current_span() is received
    (subscriber,) = by_name(spans, "process")
    assert subscriber.kind is SpanKind.CONSUMER
    assert subscriber.parent is not None
    assert subscriber.parent.span_id == published.context.span_id
    assert subscriber.context.trace_id == published.context.trace_id


@pytest.mark.usefixtures("untraced")
async def test_with_tracing_off_the_relay_passes_the_stored_context_on() -> None:
    headers = await relay(outbox_event(f"{PARENT}\nv=1"))
    assert headers[tracing.TRACEPARENT] == PARENT
    assert headers[tracing.TRACESTATE] == "v=1"
    assert tracing.TRACEPARENT not in await relay(outbox_event(""))
    assert tracing.TRACEPARENT not in await relay(outbox_event("garbage"))
    with tracing.processing("t.events", "k", headers, None) as nothing:
        assert nothing is None


# --- logs and configuration -----------------------------------------------------------------


@pytest.mark.usefixtures("spans")
def test_json_logs_carry_the_trace_and_span_ids_inside_a_span() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    log = logging.getLogger("agentroster.test")
    try:
        with trace.get_tracer("test").start_as_current_span("work") as span:
            log.info("inside")
        log.info("outside")
    finally:
        configure_logging("warning", "text")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in outside


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h"}, False),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_wanted_only_when_the_otel_variables_ask(
    environ: dict[str, str], expected: bool
) -> None:
    assert wanted(environ) is expected


@pytest.mark.usefixtures("untraced")
def test_configure_tracing_sets_no_provider_unless_asked() -> None:
    assert configure_tracing({}) is False
    assert configure_tracing({"OTEL_TRACES_EXPORTER": "bogus"}) is False
    assert not tracing.enabled()
    assert configure_tracing({"OTEL_TRACES_EXPORTER": "console"}) is True
    assert tracing.enabled()


def test_without_opentelemetry_installed_the_client_publishes_as_before() -> None:
    """The base install has no OpenTelemetry: the helpers are no-ops, nothing fails."""
    program = """
import sys
sys.modules["opentelemetry"] = None  # as if not installed: every import of it fails
from agentroster import tracing
assert not tracing.available() and not tracing.enabled()
with tracing.publishing("x.commands", "agent.a.heartbeat", "m") as headers:
    assert headers is None
assert tracing.extract({"traceparent": sys.argv[1]}) is None
assert tracing.current_ids() is None
import agentroster.client  # the Beacon and Roster import it
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", program, PARENT], capture_output=True, text=True, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.usefixtures("spans")
def test_only_w3c_trace_context_is_injected_never_baggage() -> None:
    context = baggage.set_baggage("secret", "from-an-http-caller")
    token = otel_context.attach(context)
    try:
        with tracing.publishing("x.commands", "agent.a.heartbeat", "m") as headers:
            assert headers is not None
            assert set(headers) == {tracing.TRACEPARENT}
    finally:
        otel_context.detach(token)


async def test_http_spans_are_named_by_route_and_continue_the_callers_trace(
    spans: InMemorySpanExporter,
) -> None:
    app = FastAPI()
    instrument(app)

    @app.get("/v1/agents/{agent_id}")
    async def agent(agent_id: str) -> dict[str, str]:
        return {"agent_id": agent_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        found = await http.get("/v1/agents/some-agent", headers={"traceparent": PARENT})
        assert found.status_code == 200
        assert (await http.get("/healthz")).status_code == 200
    (request,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert request.name == "GET /v1/agents/{agent_id}"  # not one name per agent
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/v1/agents/{agent_id}"
    assert request.parent is not None
    assert ids(PARENT) == (span_ids(request)[0], f"{request.parent.span_id:016x}")
