"""Prometheus metrics of the API: requests and their latency per route template.

Labelled by the route's template (`/v1/agents/{agent_id}`), never the raw path, so the number
of series stays bounded; paths no route matches count as `<unmatched>`. Each API owns its
`CollectorRegistry`, so two apps in one process (tests) never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"


class ApiMetrics:
    """The API's request counter and latency histogram, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "agentroster_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "agentroster_http_request_duration_seconds",
            "Time until an HTTP request's response started (a stream: until it opened), by "
            "method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.page_cache = Counter(
            "agentroster_page_cache",
            "GET /v1/agents answered from the page cache (hit) or computed (miss).",
            ["result"],
            registry=self.registry,
        )
        self.sse_streams = Gauge(
            "agentroster_sse_streams",
            "Event streams (GET /v1/events) this API process serves now.",
            registry=self.registry,
        )

    def observer(self, method: str, route: str) -> Callable[[int, float], None]:
        """`observe` for one method and route, its label lookups done once per status."""
        latency = self.latency.labels(method, route)
        counters: dict[int, Counter] = {}

        def observe(status: int, seconds: float) -> None:
            counter = counters.get(status)
            if counter is None:
                counter = counters[status] = self.requests.labels(method, route, str(status))
            counter.inc()
            latency.observe(seconds)

        return observe

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


def exposition(registries: Iterable[CollectorRegistry]) -> bytes:
    """The Prometheus text exposition of several registries, one after the other."""
    return b"".join(generate_latest(registry) for registry in registries)


class MetricsMiddleware:
    """ASGI middleware that times every HTTP request and counts it by route template."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count it, with its status and duration, once answered.

        The duration ends when the response starts, not when its body ends: a long-lived
        event stream would otherwise fill the histogram's top bucket with its lifetime.
        """
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered: float | None = None
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
                answered = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            ended = time.perf_counter() if answered is None else answered
            self.metrics.observe(scope["method"], route, status, ended - started)
