"""What tracing costs per message, off and on, in-process (no broker: the helpers alone).

`.venv/bin/python -m bench.tracing` times, per call, the helpers on the hot paths: the client's
`tracing.publishing` around a publish, the worker's per-command look at the trace headers, and
for comparison the OpenTelemetry API's own no-op tracer (what an unconditional span would cost
with no SDK configured). Then the same with an SDK provider set (spans batched to an exporter
that drops them). Figures in bench/README.md, Tracing.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentroster import tracing
from agentroster.worker.batcher import _traced

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class Delivery:
    """The part of a delivery the worker's trace look reads."""

    headers: dict[str, Any] = field(default_factory=dict)


class Dropping(SpanExporter):
    """Takes every batch and keeps nothing: the cost of making spans, not of sending them."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Drop the batch."""
        return SpanExportResult.SUCCESS


def per_call_ns(action: Callable[[], object], number: int) -> float:
    """The best of 5 runs of `number` calls, in ns per call."""
    return min(timeit.repeat(action, number=number, repeat=5)) / number * 1e9


def publish_once(traced: bool | None = None) -> None:
    """What the client adds around one publish (`traced` as the publisher decided it when it
    connected; None: asked per call)."""
    with tracing.publishing("p.commands", "agent.a.heartbeat", "m", traced=traced) as headers:
        _ = headers


def noop_span() -> None:
    """An unconditional span from the API's tracer with no SDK: the no-op path."""
    with trace.get_tracer("bench").start_as_current_span("publish"):
        pass


def process_once() -> None:
    """What the worker does per traced command with tracing on."""
    span = tracing.start_processing("p.commands", "agent.a.heartbeat", {"traceparent": PARENT}, "m")
    tracing.pack(tracing.span_headers(span))
    span.end()


def look(delivery: Delivery) -> str:
    """The worker's per-command look at a delivery's trace headers, tracing off."""
    return _traced(cast(AbstractIncomingMessage, delivery), None)


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=100_000, help="calls per timing")
    n = parser.parse_args(argv).number
    bare, traced = Delivery(), Delivery({"traceparent": PARENT, "x-other": "1"})
    rows = [
        ("off", "client publish (decided at connect)", per_call_ns(lambda: publish_once(False), n)),
        ("off", "tracing.enabled() asked per call", per_call_ns(tracing.enabled, n)),
        ("off", "OTel API no-op tracer span (for comparison)", per_call_ns(noop_span, n)),
        ("off", "worker: command without headers", per_call_ns(lambda: look(bare), n)),
        ("off", "worker: command with a traceparent", per_call_ns(lambda: look(traced), n)),
    ]
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Dropping(), max_queue_size=1_000_000))
    trace.set_tracer_provider(provider)
    try:
        rows += [
            ("on", "client publish: PRODUCER span + inject", per_call_ns(publish_once, n // 10)),
            ("on", "OTel SDK span alone (for comparison)", per_call_ns(noop_span, n // 10)),
            ("on", "worker: CONSUMER span + context stored", per_call_ns(process_once, n // 10)),
        ]
    finally:
        provider.shutdown()
    print(f"{'tracing':8} {'what':48} {'ns/call':>8}")
    for state, what, ns in rows:
        print(f"{state:8} {what:48} {ns:8.0f}")


if __name__ == "__main__":
    main()
