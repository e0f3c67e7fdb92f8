"""HTTP SERVER spans for the API, when tracing is on (README, Tracing).

OpenTelemetry's ASGI middleware makes one span per request, outermost, continuing a caller's
`traceparent`; only the request span, not one per body chunk (an event stream sends many).
It runs before routing, so its default name would hold the raw path (agent ids: a name per
agent); the span is named by the HTTP method, and a dependency of every route renames it to
`<method> <route template>` and sets `http.route` once the route is known, as the semantic
conventions ask.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

#: Probes and the metrics scrape make no spans (regular expressions searched in the URL).
UNTRACED_PATHS = "/healthz,/readyz,/metrics"


def instrument(app: FastAPI) -> None:
    """Add the SERVER spans; call before the routers are included (they take the dependency)."""
    app.router.dependencies.append(Depends(name_by_route))
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=UNTRACED_PATHS,
        default_span_details=_method_only,
        exclude_spans=["receive", "send"],
    )


def _method_only(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return str(scope.get("method") or "HTTP"), {}


async def name_by_route(request: Request) -> None:
    """Name the request's span by its route template (`PUT /v1/agents/{agent_id}/...`)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    span = trace.get_current_span()
    if isinstance(path, str) and span.is_recording():
        span.update_name(f"{request.method} {path}")
        span.set_attribute("http.route", path)
