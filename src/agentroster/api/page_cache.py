"""Discovery pages kept per query for the read model's current revision.

`GET /v1/agents` from memory is a function of the query and the model's revision: at one
revision, the same query string always gets the same bytes. Many clients ask the same few
questions (every replica of a caller polls "agents with skill X"), so `PageCache` keeps each
answer until the revision moves and replays it without routing, validating the parameters,
querying the model or serialising again: a hit costs a dict lookup and the socket write.

It sits in front of the app's other middlewares (only tracing's is outside it), so a hit also
skips those, which cost as much again as the hit itself: it keeps the headers as the client
got them (`X-Content-Type-Options` included) and counts the hit in the request metrics under
the route's template itself.

It stays out of the way whenever the answer could depend on more than (query, revision): the
read model is not serving (Redis fallback while it loads), `min_revision` is asked (it may
wait), reads need a key (`AGENTROSTER_READ_REQUIRES_KEY`), or the answer was not a 200. Bounded
in entries and bytes; a new revision or a rebuild of the model empties it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentroster.api.metrics import ApiMetrics

PATH = "/v1/agents"


@dataclass(slots=True)
class _Page:
    headers: list[tuple[bytes, bytes]]
    body: bytes


class PageCache:
    """ASGI middleware: replays `GET /v1/agents` answers while the read model's revision holds."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ApiMetrics,
        *,
        max_entries: int = 1024,
        max_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.metrics = metrics
        self._observe = metrics.observer("GET", PATH)
        self._hits = metrics.page_cache.labels("hit")
        self._misses = metrics.page_cache.labels("miss")
        self._pages: dict[bytes, _Page] = {}
        self._bytes = 0
        self._version: tuple[int, int] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from the cache, or pass the request on and keep a cacheable answer."""
        version = self._cacheable(scope)
        if version is None:
            await self.app(scope, receive, send)
            return
        if version != self._version:
            self._pages.clear()
            self._bytes, self._version = 0, version
        query: bytes = scope["query_string"]
        page = self._pages.get(query)
        if page is not None:
            started = time.perf_counter()
            self._hits.inc()
            await send({"type": "http.response.start", "status": 200, "headers": page.headers[:]})
            self._observe(200, time.perf_counter() - started)
            await send({"type": "http.response.body", "body": page.body})
            return
        self._misses.inc()
        start: Message | None = None
        start_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def send_and_keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                # copied: a server may add its own headers to the same message
                start_headers[:] = list(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, send_and_keep)
        if start is None or start["status"] != 200 or self._cacheable(scope) != version:
            return  # not a page, or the model moved while it was answered
        self._keep(query, _Page(start_headers, b"".join(chunks)))

    def _cacheable(self, scope: Scope) -> tuple[int, int] | None:
        """The read model's (loads, revision) if this request's answer may be cached."""
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != PATH:
            return None
        state: Any = getattr(scope["app"].state, "agentroster", None)
        model = state.read_model if state is not None else None
        if model is None or not model.ready or state.settings.read_requires_key:
            return None
        if b"min_revision" in scope["query_string"]:
            return None
        # a rebuild may start again from an older revision: (loads, revision) never repeats
        return model.loads, model.revision

    def _keep(self, query: bytes, page: _Page) -> None:
        size = len(page.body) + len(query)
        if len(self._pages) >= self.max_entries or self._bytes + size > self.max_bytes:
            return  # full until the revision moves: the next revision starts empty
        self._pages[query] = page
        self._bytes += size
