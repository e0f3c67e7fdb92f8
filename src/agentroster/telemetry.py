"""Turn tracing on for a registry process from the standard `OTEL_*` variables (opt-in).

Nothing is configured unless the environment asks for traces: `OTEL_TRACES_EXPORTER` names an
exporter other than `none`, or an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` turns it off whatever else is
set. Then a tracer provider is set with the resource the SDK reads (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`; the service name defaults to `agentroster`) and a batching span
processor (`OTEL_BSP_*`) in front of the exporter: `otlp` (OTLP over HTTP/protobuf, which reads
its own `OTEL_EXPORTER_OTLP_*` variables) or `console`. The SDK and exporter come with the
`otel` extra; asked for without them, the process says so and runs untraced.

The provider flushes its spans when the process exits (the SDK registers that at exit).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

log = logging.getLogger(__name__)

#: The service name when `OTEL_SERVICE_NAME` (or `service.name` in the resource) is not set.
DEFAULT_SERVICE = "agentroster"


def disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `OTEL_SDK_DISABLED=true` turns OpenTelemetry off, whatever else is set."""
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces (see the module docstring)."""
    if disabled(environ):
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(environ: Mapping[str, str] = os.environ) -> bool:
    """Set the process's tracer provider if the environment asks for traces; True if set."""
    if not wanted(environ):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError:
        log.warning(
            "OTEL_* variables ask for traces, but OpenTelemetry's SDK is not installed "
            "(pip install 'agentroster[otel]'): running without tracing"
        )
        return False
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name and name != "none":
            log.warning("OTEL_TRACES_EXPORTER: unknown exporter %r ignored", name)
    if not exporters:
        return False
    provider = TracerProvider(resource=sdk_resource())
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on: %s", ", ".join(type(e).__name__ for e in exporters))
    return True


def sdk_resource() -> Resource:
    """The resource of this process's traces and metrics: what the SDK reads from
    `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, the service named `agentroster` when
    they do not name it. Needs the `otel` extra."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE}))
    return resource
