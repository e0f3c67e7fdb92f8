"""W3C trace context on AMQP messages, and the messaging spans around them (OpenTelemetry).

Tracing is opt-in: it is on only when `opentelemetry-api` is importable *and* a tracer
provider has been set in the process (the registry's commands do that from the standard
`OTEL_*` variables, see `agentroster.telemetry`; an agent's application sets its own, before
its Beacons and Rosters connect: they decide once, when they connect). Off, `enabled()` is
False and every helper here is a shared no-op: no span, no header, no allocation of a
context (bench/README.md, Tracing, has the cost).

On the wire (the AsyncAPI documents list them): a command or event carries the AMQP headers
`traceparent` and, when there is one, `tracestate`, as W3C Trace Context defines them. What a
client sends there is checked before it is used or stored (`trace_headers`): anything else is
dropped, never refused, since the command itself is fine.

Spans follow OpenTelemetry's semantic conventions for messaging: `messaging.system`
`rabbitmq`, `messaging.destination.name` (the exchange), the routing key, the operation
(`send` for a PRODUCER span, `process` for a CONSUMER span) and the message id.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import trace
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    #: W3C Trace Context alone, whatever OTEL_PROPAGATORS says: it is the wire contract's
    #: (no `baggage` either: nothing else a caller put in its context rides on our messages)
    _W3C = TraceContextTextMapPropagator()
except ImportError:  # the base install does not need OpenTelemetry
    trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: The instrumentation scope of every span agentroster makes.
TRACER_NAME = "agentroster"
#: W3C Trace Context: `<version>-<trace id>-<parent id>-<flags>`, lower-case hex (version `ff`
#: and all-zero ids are invalid too: `trace_headers` refuses them).
TRACEPARENT_PATTERN = "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"
_TRACEPARENT = re.compile(TRACEPARENT_PATTERN)
#: The longest `tracestate` kept: W3C allows 32 members, and vendors keep them short.
MAX_TRACESTATE = 512
_TRACESTATE = re.compile(r"[\x20-\x7e]*")
_OFF: contextlib.nullcontext[None] = contextlib.nullcontext()


def available() -> bool:
    """Whether `opentelemetry-api` is installed (tracing may be turned on)."""
    return trace is not None


def enabled() -> bool:
    """Whether spans are recorded: OpenTelemetry is installed and a provider was set."""
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider)


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id in hex (as backends show them), or None."""
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def trace_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The well-formed `traceparent` (and `tracestate`) of a message's headers, or {}."""
    if not headers:
        return {}
    parent = headers.get(TRACEPARENT)
    if not isinstance(parent, str) or not _TRACEPARENT.fullmatch(parent) or _invalid(parent):
        return {}
    found = {TRACEPARENT: parent}
    state = headers.get(TRACESTATE)
    if isinstance(state, str) and 0 < len(state) <= MAX_TRACESTATE and _TRACESTATE.fullmatch(state):
        found[TRACESTATE] = state
    return found


def _invalid(traceparent: str) -> bool:
    """A well-formed traceparent that W3C still rules out."""
    return (
        traceparent.startswith("ff")
        or traceparent[3:35] == "0" * 32
        or traceparent[36:52] == "0" * 16
    )


def pack(headers: Mapping[str, str]) -> str:
    """Trace headers as one string to store (the outbox's `tc` field): '' for none."""
    if TRACEPARENT not in headers:
        return ""
    state = headers.get(TRACESTATE)
    return f"{headers[TRACEPARENT]}\n{state}" if state else headers[TRACEPARENT]


def unpack(packed: str) -> dict[str, str]:
    """The trace headers `pack` stored, checked again (they passed through Redis)."""
    if not packed:
        return {}
    parent, _, state = packed.partition("\n")
    return trace_headers({TRACEPARENT: parent, TRACESTATE: state})


def extract(headers: Mapping[str, Any] | None) -> Context | None:
    """The remote context a message's headers carry (None: none, or no OpenTelemetry).

    For a subscriber of the registry's events with a consumer of its own: start its span with
    `context=extract(message.headers)` to join the trace of the command that caused the event.
    """
    if trace is None:
        return None
    found = trace_headers(headers)
    return _W3C.extract(found) if found else None


def _attributes(
    destination: str, routing_key: str, operation: str, message_id: str | None
) -> dict[str, str]:
    attributes = {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": destination,
        "messaging.rabbitmq.destination.routing_key": routing_key,
        "messaging.operation.type": operation,
        "messaging.operation.name": "publish" if operation == "send" else operation,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    return attributes


def publishing(
    destination: str,
    routing_key: str,
    message_id: str | None = None,
    parent: Context | None = None,
    *,
    traced: bool | None = None,
) -> contextlib.AbstractContextManager[dict[str, Any] | None]:
    """A PRODUCER span around one publish, yielding the headers to send (its context).

    Yields None when tracing is off: the message is sent as before. `parent` (a context from
    `extract`) makes the span its child; by default it is a child of the current span.
    `traced` is `enabled()` as the caller decided it once (asking costs a look into the
    environment, about a microsecond: bench/README.md, Tracing); None asks now.
    """
    if not (enabled() if traced is None else traced):
        return _OFF
    return _producer(destination, routing_key, message_id, parent)


@contextlib.contextmanager
def _producer(
    destination: str, routing_key: str, message_id: str | None, parent: Context | None
) -> Iterator[dict[str, Any]]:
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"publish {destination}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=_attributes(destination, routing_key, "send", message_id),
    ):
        carrier: dict[str, Any] = {}
        _W3C.inject(carrier)
        yield carrier


def start_processing(
    destination: str, routing_key: str, headers: Mapping[str, Any] | None, message_id: str | None
) -> Span:
    """Start (not enter) a CONSUMER span for one message, child of the context it carries.

    Only call it when `enabled()`; the caller ends it (`span.end()`).
    """
    tracer = trace.get_tracer(TRACER_NAME)
    return tracer.start_span(
        f"process {destination}",
        context=extract(headers),
        kind=SpanKind.CONSUMER,
        attributes=_attributes(destination, routing_key, "process", message_id),
    )


def processing(
    destination: str,
    routing_key: str,
    headers: Mapping[str, Any] | None,
    message_id: str | None,
    *,
    traced: bool | None = None,
) -> contextlib.AbstractContextManager[Span | None]:
    """A CONSUMER span, current while one received message is handled (None when off);
    `traced` as for `publishing`."""
    if not (enabled() if traced is None else traced):
        return _OFF
    span = start_processing(destination, routing_key, headers, message_id)
    return trace.use_span(span, end_on_exit=True)


def span_headers(span: Span) -> dict[str, str]:
    """The trace headers that make a message a child of `span`."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return carrier
