"""The Prometheus metrics exported over OpenTelemetry (agentroster.metrics_export): when the
environment asks, how each kind of metric translates, and what a hostile setting gets."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Counter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram

from agentroster.api.metrics import ApiMetrics
from agentroster.metrics_export import (
    DEFAULT_INTERVAL_MS,
    MetricsExport,
    exporting_metrics,
    interval_ms,
    translate,
    wanted,
)
from agentroster.worker.metrics import WorkerMetrics
from tests.helpers import free_port

NOW_NS = 2_000_000_000_000_000_000


class Kept(MetricExporter):
    """An exporter that keeps what it is sent (or fails, or hangs until released)."""

    def __init__(self, fail: bool = False, hang: threading.Event | None = None) -> None:
        super().__init__()
        self.batches: list[MetricsData] = []
        self.fail = fail
        self.hang = hang
        self.entered = threading.Event()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.entered.set()
        if self.hang is not None:
            self.hang.wait()
        if self.fail:
            raise ConnectionError("collector unreachable")
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def metrics_of(batch: MetricsData) -> dict[str, Metric]:
    (resource,) = batch.resource_metrics
    (scope,) = resource.scope_metrics
    assert scope.scope.name == "agentroster"
    return {m.name: m for m in scope.metrics}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        # the general endpoint turns on traces; metrics need their own ask
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_METRICS_EXPORTER": "otlp"}, True),
        ({"OTEL_METRICS_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318/v1/metrics"}, True),
        ({"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "h"}, False),
        ({"OTEL_METRICS_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_metrics_are_exported_only_when_the_otel_variables_ask(
    environ: dict[str, str], expected: bool
) -> None:
    assert wanted(environ) is expected


def test_a_counter_is_a_monotonic_cumulative_sum_named_like_its_total_series() -> None:
    registry = CollectorRegistry()
    counter = Counter("demo_commands_total", "Commands.", ["kind"], registry=registry)
    counter.labels("heartbeat").inc(3)
    counter.labels("register").inc()

    (metric,) = translate(registry.collect(), NOW_NS, started_ns=1)

    assert (metric.name, metric.description, metric.unit) == (
        "demo_commands_total",
        "Commands.",
        "",
    )
    assert isinstance(metric.data, Sum)
    assert metric.data.is_monotonic
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    points = {p.attributes["kind"]: p for p in metric.data.data_points if p.attributes}
    assert {k: p.value for k, p in points.items()} == {"heartbeat": 3.0, "register": 1.0}
    # it started when prometheus-client created the series (its _created), not at 1
    assert all(1 < p.start_time_unix_nano < NOW_NS for p in points.values())
    assert all(p.time_unix_nano == NOW_NS for p in points.values())


def test_a_gauge_is_a_gauge_with_its_current_value() -> None:
    registry = CollectorRegistry()
    PromGauge("demo_outbox_depth", "Events.", registry=registry).set(7)

    (metric,) = translate(registry.collect(), NOW_NS, started_ns=1)

    assert metric.name == "demo_outbox_depth"
    assert isinstance(metric.data, Gauge)
    assert [p.value for p in metric.data.data_points] == [7.0]


def test_a_histogram_keeps_its_bounds_counts_and_sum_per_label_set() -> None:
    registry = CollectorRegistry()
    histogram = PromHistogram(
        "demo_duration_seconds", "Time.", ["route"], buckets=(0.1, 1.0), registry=registry
    )
    for seconds in (0.05, 0.5, 0.7, 5.0):
        histogram.labels("/v1/agents").observe(seconds)
    histogram.labels("/healthz").observe(0.01)

    (metric,) = translate(registry.collect(), NOW_NS, started_ns=1)

    assert (metric.name, metric.unit) == ("demo_duration_seconds", "s")
    assert isinstance(metric.data, Histogram)
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    points = {p.attributes["route"]: p for p in metric.data.data_points if p.attributes}
    agents = points["/v1/agents"]
    # Prometheus' cumulative buckets (1, 3, 4) become counts per bucket; +Inf is implicit
    assert agents.count == 4
    assert agents.sum == pytest.approx(6.25)
    assert list(agents.explicit_bounds) == [0.1, 1.0]
    assert list(agents.bucket_counts) == [1, 2, 1]
    assert agents.attributes == {"route": "/v1/agents"}  # without Prometheus' `le`
    assert (points["/healthz"].count, list(points["/healthz"].bucket_counts)) == (1, [1, 0, 0])


def test_every_metric_of_the_worker_and_the_api_translates() -> None:
    """Nothing the registry collects is left out (the dashboard test's list, over OTLP)."""
    worker, api = WorkerMetrics(), ApiMetrics()
    registries = [worker.registry, api.registry]
    for registry in registries:  # one series of every labelled metric
        for family in registry.collect():
            collector: Any = registry._names_to_collectors[family.name]  # no public way
            if labels := getattr(collector, "_labelnames", ()):
                collector.labels(*(["x"] * len(labels)))
    families = [f for r in registries for f in r.collect()]

    names = {m.name for m in translate(families, NOW_NS, started_ns=1)}

    expected = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    assert names == expected
    assert "agentroster_commands_total" in names
    assert "agentroster_http_request_duration_seconds" in names


def test_a_labelled_metric_without_a_series_yet_is_not_sent() -> None:
    registry = CollectorRegistry()
    Counter("demo_total", "d", ["kind"], registry=registry)
    assert translate(registry.collect(), NOW_NS, started_ns=1) == []


@pytest.mark.parametrize(("text", "expected"), [("", DEFAULT_INTERVAL_MS), ("250", 250)])
def test_the_interval_is_otel_metric_export_interval(text: str, expected: int) -> None:
    assert interval_ms({"OTEL_METRIC_EXPORT_INTERVAL": text}) == expected


@pytest.mark.parametrize("text", ["abc", "0", "-5", "10", "1e9", "9" * 200])
def test_a_hostile_interval_falls_back_to_the_default(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Zero, negative, tiny (a busy loop), endless or not a number: the default, one warning."""
    caplog.set_level(logging.WARNING, "agentroster.metrics_export")
    assert interval_ms({"OTEL_METRIC_EXPORT_INTERVAL": text}) == DEFAULT_INTERVAL_MS
    (record,) = caplog.records
    assert len(record.getMessage()) < 200  # a long value is cut in the log


def export_of(registries: Sequence[CollectorRegistry], *exporters: Kept) -> MetricsExport:
    return MetricsExport(registries, exporters, Resource({"service.name": "test"}), interval_s=3600)


def test_one_export_carries_every_registrys_values_and_the_resource() -> None:
    worker, api = WorkerMetrics(), ApiMetrics()
    worker.commands.labels("heartbeat", "applied").inc(5)
    api.observe("GET", "/v1/agents", 200, 0.002)
    kept = Kept()

    export_of([worker.registry, api.registry], kept).export_once()

    (batch,) = kept.batches
    assert batch.resource_metrics[0].resource.attributes["service.name"] == "test"
    metrics = metrics_of(batch)
    (applied,) = metrics["agentroster_commands_total"].data.data_points
    assert isinstance(applied, NumberDataPoint)
    assert applied.attributes == {"kind": "heartbeat", "outcome": "applied"}
    assert applied.value == 5
    (requests,) = metrics["agentroster_http_requests_total"].data.data_points
    assert requests.attributes == {"method": "GET", "route": "/v1/agents", "status": "200"}


def test_a_failing_exporter_neither_raises_nor_keeps_the_others_from_their_batch() -> None:
    registry = CollectorRegistry()
    Counter("demo_total", "d", registry=registry).inc()
    kept = Kept()

    export_of([registry], Kept(fail=True), kept).export_once()

    assert len(kept.batches) == 1


async def test_off_unless_asked_and_a_last_export_when_the_block_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = CollectorRegistry()
    counter = Counter("demo_total", "d", registry=registry)
    async with exporting_metrics([registry], {}) as export:
        assert export is None

    kept = Kept()
    monkeypatch.setattr("agentroster.metrics_export._exporters", lambda environ: [kept])
    environ = {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "3600000"}
    async with exporting_metrics([registry], environ) as export:
        assert export is not None
        counter.inc(2)
    # the values at the stop were sent, though the hour never passed
    (batch,) = kept.batches
    (point,) = metrics_of(batch)["demo_total"].data.data_points
    assert isinstance(point, NumberDataPoint)
    assert point.value == 2


def test_a_collector_that_hangs_cannot_hold_up_the_stop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An export in flight at the stop is left to its daemon thread; the last one is skipped."""
    monkeypatch.setattr("agentroster.metrics_export.LAST_EXPORT_TIMEOUT_MS", 50)
    registry = CollectorRegistry()
    Counter("demo_total", "d", registry=registry).inc()
    release = threading.Event()
    hanging = Kept(hang=release)
    export = MetricsExport(
        registries=[registry], exporters=[hanging], resource=Resource({}), interval_s=0.001
    )
    export.start()
    try:
        assert hanging.entered.wait(30)
        assert export.stop() is False  # returns although the collector never answered
        assert export.exports == 1
        assert "stopping without them" in caplog.text
    finally:
        release.set()


async def test_the_exporters_headers_never_reach_the_log(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A collector's API key rides in OTEL_EXPORTER_OTLP_*_HEADERS: an export that fails
    (nothing listens) logs why, never the key."""
    secret = "s3cret-collector-key-0123456789"
    environ = {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{free_port()}/v1/metrics",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS": f"authorization=Bearer {secret}",
        "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "1",  # seconds: the exporter stops retrying
    }
    for name, value in environ.items():  # the SDK's exporter reads the process's environment
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("agentroster.metrics_export.LAST_EXPORT_TIMEOUT_MS", 200)
    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()
    Counter("demo_total", "d", registry=registry).inc()

    async with exporting_metrics([registry], environ) as export:
        assert export is not None
    assert export._thread is not None
    export._thread.join()  # the last export, tried and given up
    assert export.exports == 1
    assert caplog.records
    assert secret not in caplog.text
    assert secret not in "".join(capsys.readouterr())
