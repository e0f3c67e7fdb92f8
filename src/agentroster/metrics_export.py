"""Send the registry's Prometheus metrics over OpenTelemetry too, when the environment asks.

The metrics stay what they are: prometheus-client collectors, scraped at `/metrics`. When
`OTEL_METRICS_EXPORTER` names an exporter (`otlp`: OTLP over HTTP/protobuf, reading its own
`OTEL_EXPORTER_OTLP_*` variables; `console`), or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set,
the process that owns them (`agentroster up`, `worker`, `api`) also pushes their current values
every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (default 60000) and once more when it stops.
The general `OTEL_EXPORTER_OTLP_ENDPOINT` alone turns on traces, not metrics: Prometheus
already scrapes them, so sending them twice is a choice. `OTEL_SDK_DISABLED=true` turns it off.

OpenTelemetry's Python SDK has no bridge from prometheus-client (Go's SDK has one: a metric
producer), and its observable instruments cannot carry a histogram. So this module is that
producer: each export reads the registries (`collect()`) and maps the types as OpenTelemetry's
Prometheus compatibility does: a counter becomes a monotonic cumulative sum starting at its
`_created` time, a gauge a gauge, a histogram a cumulative histogram with the same bucket
bounds; labels become attributes. Names stay those of `/metrics`, a counter's with its `_total`
(as Go's bridge keeps them), so the dashboard and alerts read the same series either way.
The SDK's exporters send the result, with the resource the SDK reads (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`).

The exports run in a daemon thread of their own (the OTLP exporter's HTTP call blocks), one at
a time, as the SDK's periodic reader does: a slow or unreachable collector delays only the next
export, never the event loop (the OTLP exporter bounds an export, retries included, by
`OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s by default), and holds up a stop by LAST_EXPORT_TIMEOUT_MS
at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from agentroster.telemetry import disabled, sdk_resource

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import (
        HistogramDataPoint,
        Metric,
        MetricExporter,
        MetricsData,
    )
    from opentelemetry.sdk.resources import Resource
    from prometheus_client.metrics_core import Metric as Family

log = logging.getLogger(__name__)

#: OpenTelemetry's default export interval (OTEL_METRIC_EXPORT_INTERVAL), milliseconds.
DEFAULT_INTERVAL_MS = 60_000
#: The shortest interval accepted: a smaller one is a busy loop reading every registry.
MIN_INTERVAL_MS = 50
#: The longest interval accepted (a day): beyond, a typo rather than a wish.
MAX_INTERVAL_MS = 86_400_000
#: How long a stop waits for the last export: an unreachable collector must not hold it up
#: (the OTLP exporter retries for up to its own timeout, 10 s by default).
LAST_EXPORT_TIMEOUT_MS = 2_000
#: The instrumentation scope the exported metrics carry.
SCOPE = "agentroster"


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for the metrics to be exported (module docstring)."""
    if disabled(environ):
        return False
    exporter = environ.get("OTEL_METRICS_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))


def interval_ms(environ: Mapping[str, str] = os.environ) -> int:
    """OTEL_METRIC_EXPORT_INTERVAL, or the default when it is not a number of milliseconds
    from MIN_INTERVAL_MS to MAX_INTERVAL_MS (said once in the log)."""
    text = environ.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip()
    if not text:
        return DEFAULT_INTERVAL_MS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MIN_INTERVAL_MS <= value <= MAX_INTERVAL_MS:
        log.warning(
            "OTEL_METRIC_EXPORT_INTERVAL=%r is not a number of milliseconds from %d to %d: "
            "using %d",
            text[:40],
            MIN_INTERVAL_MS,
            MAX_INTERVAL_MS,
            DEFAULT_INTERVAL_MS,
        )
        return DEFAULT_INTERVAL_MS
    return value


def translate(families: Iterable[Family], now_ns: int, started_ns: int) -> list[Metric]:
    """OpenTelemetry metrics of prometheus-client metric families, as of `now_ns`.

    `started_ns` is the start of a counter or histogram that has no `_created` series. A
    family without a series yet (labelled, nothing counted) is left out, and so are families
    of other types (summary, info, state set) are left out: the registry has none.
    """
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Gauge,
        Histogram,
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
        Sum,
    )

    translated: list[Metric] = []
    for family in families:
        unit = "s" if family.name.endswith("_seconds") else ""
        created = {
            _key(s.labels): int(s.value * 1e9)
            for s in family.samples
            if s.name == f"{family.name}_created"
        }
        if family.type == "counter":
            points = [
                NumberDataPoint(
                    attributes=dict(s.labels),
                    start_time_unix_nano=created.get(_key(s.labels), started_ns),
                    time_unix_nano=now_ns,
                    value=s.value,
                )
                for s in family.samples
                if s.name == f"{family.name}_total"
            ]
            data: Sum | Gauge | Histogram = Sum(
                points, AggregationTemporality.CUMULATIVE, is_monotonic=True
            )
            name = f"{family.name}_total"
        elif family.type == "gauge":
            points = [
                NumberDataPoint(
                    attributes=dict(s.labels),
                    start_time_unix_nano=started_ns,
                    time_unix_nano=now_ns,
                    value=s.value,
                )
                for s in family.samples
            ]
            data, name = Gauge(points), family.name
        elif family.type == "histogram":
            data = Histogram(
                _histogram_points(family, created, now_ns, started_ns, HistogramDataPoint),
                AggregationTemporality.CUMULATIVE,
            )
            name = family.name
        else:
            continue
        if data.data_points:  # a labelled metric before its first series: nothing to send
            translated.append(Metric(name, family.documentation, unit, data))
    return translated


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """One series' identity within its family (its labels but a histogram's `le`)."""
    return tuple(sorted((k, v) for k, v in labels.items() if k != "le"))


def _histogram_points(
    family: Family,
    created: Mapping[tuple[tuple[str, str], ...], int],
    now_ns: int,
    started_ns: int,
    point: type[HistogramDataPoint],
) -> list[HistogramDataPoint]:
    """One point per label set: Prometheus' cumulative `le` buckets become OTLP's per-bucket
    counts, its finite bounds the explicit bounds (`+Inf` is OTLP's implicit last bucket)."""
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    counts: dict[tuple[tuple[str, str], ...], float] = {}
    sums: dict[tuple[tuple[str, str], ...], float] = {}
    for sample in family.samples:
        key = _key(sample.labels)
        if sample.name == f"{family.name}_bucket":
            buckets.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
        elif sample.name == f"{family.name}_count":
            counts[key] = sample.value
        elif sample.name == f"{family.name}_sum":
            sums[key] = sample.value
    points = []
    for key, cumulative in buckets.items():
        cumulative.sort()
        per_bucket, below = [], 0.0
        for _bound, up_to in cumulative:
            per_bucket.append(round(up_to - below))
            below = up_to
        points.append(
            point(
                attributes=dict(key),
                start_time_unix_nano=created.get(key, started_ns),
                time_unix_nano=now_ns,
                count=round(counts.get(key, below)),
                sum=sums.get(key, 0.0),
                bucket_counts=per_bucket,
                explicit_bounds=[b for b, _ in cumulative if not math.isinf(b)],
                # Prometheus keeps no extremes; OTLP's min and max are optional
                min=None,  # type: ignore[arg-type]
                max=None,  # type: ignore[arg-type]
            )
        )
    return points


class MetricsExport:
    """Reads the registries and hands their values to the exporters, one export at a time."""

    def __init__(
        self,
        registries: Sequence[CollectorRegistry],
        exporters: Sequence[MetricExporter],
        resource: Resource,
        *,
        interval_s: float,
    ) -> None:
        self.registries = registries
        self.exporters = exporters
        self.resource = resource
        self.interval_s = interval_s
        self.started_ns = time.time_ns()
        self.exports = 0  # attempts so far
        self._one_at_a_time = threading.Lock()  # a direct export_once and the thread's
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> MetricsData:
        """The registries' values now, as one OpenTelemetry batch."""
        from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from agentroster import __version__

        families = [f for registry in self.registries for f in registry.collect()]
        metrics = translate(families, time.time_ns(), self.started_ns)
        scope = InstrumentationScope(SCOPE, __version__)
        return MetricsData([ResourceMetrics(self.resource, [ScopeMetrics(scope, metrics, "")], "")])

    def export_once(self) -> None:
        """Send the values now to every exporter (blocking)."""
        with self._one_at_a_time:
            data = self.snapshot()
            self.exports += 1
            for exporter in self.exporters:
                try:
                    exporter.export(data)
                except Exception:  # a failing exporter must not stop the next export
                    log.exception("exporting metrics with %s failed", type(exporter).__name__)

    def start(self) -> None:
        """Export every interval from a thread of its own, and once more at `stop`."""
        self._thread = threading.Thread(
            target=self._every_interval, name="agentroster-metrics-export", daemon=True
        )
        self._thread.start()

    def _every_interval(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self.export_once()
        self.export_once()  # the values at the stop

    def stop(self) -> bool:
        """Stop exporting after one last export with the values now, then close the
        exporters; waits LAST_EXPORT_TIMEOUT_MS at most (blocking). True if all that was done.

        An export still going then (a collector that hangs or refuses, and the exporter
        retrying: the OTLP exporter bounds an export by its own timeout, 10 s by default) is
        left to the thread, a daemon that does not hold up the process's exit.
        """
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(LAST_EXPORT_TIMEOUT_MS / 1000)
        if self._thread.is_alive():
            log.warning(
                "metrics export: the collector did not take the last values within %d ms; "
                "stopping without them",
                LAST_EXPORT_TIMEOUT_MS,
            )
            return False
        for exporter in self.exporters:
            exporter.shutdown()
        return True


def _exporters(environ: Mapping[str, str]) -> list[MetricExporter]:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

    exporters: list[MetricExporter] = []
    for name in environ.get("OTEL_METRICS_EXPORTER", "otlp").lower().split(","):
        name = name.strip()
        if name == "console":
            exporters.append(ConsoleMetricExporter())
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            exporters.append(OTLPMetricExporter())
        elif name and name != "none":
            log.warning("OTEL_METRICS_EXPORTER: unknown exporter %r ignored", name[:40])
    return exporters


@contextlib.asynccontextmanager
async def exporting_metrics(
    registries: Sequence[CollectorRegistry], environ: Mapping[str, str] = os.environ
) -> AsyncIterator[MetricsExport | None]:
    """Export `registries` while the block runs, if the environment asks; a last export and
    the exporters' shutdown when it ends. Yields the export, or None when nothing is sent."""
    if not wanted(environ):
        yield None
        return
    try:
        exporters = _exporters(environ)
    except ImportError:
        log.warning(
            "OTEL_* variables ask for metrics, but OpenTelemetry's SDK is not installed "
            "(pip install 'agentroster[otel]'): metrics only at /metrics"
        )
        yield None
        return
    if not exporters:
        yield None
        return
    export = MetricsExport(
        registries,
        exporters,
        sdk_resource(),
        interval_s=interval_ms(environ) / 1000,
    )
    log.info(
        "metrics export on: %s every %.1fs",
        ", ".join(type(e).__name__ for e in exporters),
        export.interval_s,
    )
    export.start()
    try:
        yield export
    finally:
        await asyncio.to_thread(export.stop)
