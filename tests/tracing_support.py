"""An OpenTelemetry SDK provider for one test, its spans kept in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once


def reset_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the process's tracer provider for this test: OpenTelemetry sets it only once per
    process, so tests swap its globals (restored by `monkeypatch` afterwards)."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())


@pytest.fixture
def untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    """No tracer provider set: tracing is off, as in a process nobody configured."""
    reset_provider(monkeypatch)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test: every ended span lands in the returned exporter."""
    reset_provider(monkeypatch)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()


def by_name(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    """The finished spans whose name starts with `prefix`."""
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]
