"""What the ASGI fast paths in front of FastAPI share (api/fast_heartbeat.py,
api/fast_get_agent.py): the route's JSON answer with its headers written out, the Bearer key
as `auth.presented_key` reads it, and the timing of the request metrics.
"""

from __future__ import annotations

import time

from starlette.responses import Response
from starlette.types import Scope

from agentroster.api.deps import ApiState
from agentroster.api.errors import NOSNIFF

#: Longest Authorization header taken by a fast path (as `auth.MAX_AUTHORIZATION_CHARS`).
MAX_AUTHORIZATION_BYTES = 1024

_NOSNIFF = [(name.lower().encode(), value.encode()) for name, value in NOSNIFF.items()]
_JSON = (b"content-type", b"application/json")


class JsonAnswer(Response):
    """A route's `Response(body, status, headers, media_type="application/json")` after
    `NoSniffMiddleware`, its header list written out instead of assembled per request."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = [
            *(
                (name.lower().encode("latin-1"), v.encode("latin-1"))
                for name, v in (headers or {}).items()
            ),
            (b"content-length", str(len(body)).encode()),
            _JSON,
            *_NOSNIFF,
        ]


def plain_request(scope: Scope, method: str) -> ApiState | None:
    """The API's state, when `scope` is an HTTP `method` request a fast path may take: no
    query string, no `root_path`, and the app's lifespan running."""
    if (
        scope["type"] != "http"
        or scope["method"] != method
        or scope["query_string"]
        or scope.get("root_path")
    ):
        return None
    state: ApiState | None = getattr(scope["app"].state, "agentroster", None)
    return state


def bearer_key(authorization: bytes) -> str | None:
    """The key of an `Authorization: Bearer <key>` value, read as `auth.presented_key` reads
    it (Starlette decodes header values as latin-1); None for anything else (too long, another
    scheme, no key), which the route judges."""
    if len(authorization) > MAX_AUTHORIZATION_BYTES:
        return None
    scheme, _, key = authorization.decode("latin-1").strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    return key


def since(started: float) -> float:
    """Seconds since `started` (a `time.perf_counter()` reading)."""
    return time.perf_counter() - started
