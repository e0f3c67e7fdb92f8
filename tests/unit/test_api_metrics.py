"""The API's request metrics: a response's duration ends when it starts, so a long-lived event
stream does not fill the latency histogram with its lifetime."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.types import Receive, Scope, Send

from agentroster.api import metrics as api_metrics
from agentroster.api.metrics import ApiMetrics, MetricsMiddleware


async def test_the_duration_ends_when_the_response_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = 10.0  # the request arrives
    monkeypatch.setattr(api_metrics, "time", SimpleNamespace(perf_counter=lambda: now))

    async def streaming_app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal now
        now = 10.25
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        now = 3600.0  # the stream ends an hour later
        await send({"type": "http.response.body", "body": b""})

    async def send(message: object) -> None:
        pass

    async def receive() -> dict[str, object]:
        return {"type": "http.request"}

    metrics = ApiMetrics()
    scope: Scope = {"type": "http", "method": "GET", "path": "/v1/events"}
    await MetricsMiddleware(streaming_app, metrics)(scope, receive, send)

    labels = {"method": "GET", "route": "<unmatched>"}
    assert metrics.registry.get_sample_value(
        "agentroster_http_request_duration_seconds_sum", labels
    ) == pytest.approx(0.25)
    assert (
        metrics.registry.get_sample_value(
            "agentroster_http_requests_total", {**labels, "status": "200"}
        )
        == 1.0
    )
