"""`GET /v1/events`: the registry's events as server-sent events, replayed then live.

The same events, bodies and revisions as on the `agentroster.events` exchange, read from the
outbox stream (see `store/outbox.py`) by the API process's one follower and fanned out to
its streams (see `api/streams.py`: the cap, the per-stream bound, the hand-over from replay
to live). A client lists at revision R, then follows events after
R; a reconnecting EventSource sends `Last-Event-ID` and goes on where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from agentroster.api.deps import StateDep
from agentroster.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse

#: Comment lines that keep idle connections (and proxies) from timing out.
PING_S = 15

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])


class EventsExpired(ApiError):
    """The events after the asked revision are no longer kept: list again, then follow."""

    def __init__(self, since: int, oldest: int | None) -> None:
        super().__init__(
            410,
            "events-expired",
            f"events after revision {since} are no longer kept; list the agents again "
            "and follow from the revision of that list",
            {"since": since, "oldest_kept": oldest},
        )


class RevisionAhead(ApiError):
    """The asked revision is beyond the registry's: its events will never be these."""

    def __init__(self, since: int, revision: int) -> None:
        super().__init__(
            410,
            "revision-ahead",
            f"revision {since} is ahead of this registry's ({revision}): the position is from "
            "before Redis lost its data or from another registry; list the agents again and "
            "follow from the revision of that list",
            {"since": since, "revision": revision},
        )


@router.get(
    "/v1/events",
    summary="Follow the registry's events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`id` is the revision, `event` the kind (`agent.joined`...), `data` "
            "the event body (AgentEvent), as on the events exchange.",
        },
        410: {
            "description": "The events after `since` are no longer kept (`events-expired`), "
            "or `since` is beyond the registry's revision (`revision-ahead`)."
        },
        **ERROR_RESPONSES,
        503: {
            "model": ErrorResponse,
            "description": "Redis is unreachable (`store-unavailable`), or this API process "
            "already serves its maximum of streams (`too-many-streams`); retry after "
            "`Retry-After` seconds.",
        },
    },
)
async def follow_events(
    state: StateDep,
    since: Annotated[
        int | None,
        Query(ge=0, description="Replay the events after this revision; default: only new ones."),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, description="Sent by a reconnecting EventSource: go on after it."),
    ] = None,
) -> EventSourceResponse:
    """Events after `Last-Event-ID` (or `since`), in revision order, then as they happen.

    A reconnecting EventSource asks the same URL again with `Last-Event-ID`: where it stopped
    wins over the `since` it started from. A stream whose client falls too far behind the
    live events is ended: the client reconnects with its `Last-Event-ID` and catches up.
    """
    stream = state.streams.reserve()  # 503 too-many-streams before any Redis work
    try:
        start = last_event_id if last_event_id is not None else since
        revision, oldest = await state.streams.span()
        if start is None:
            start = revision
        elif start > revision:
            raise RevisionAhead(start, revision)
        elif start < revision and (oldest is None or start + 1 < oldest):
            raise EventsExpired(start, oldest)
    except BaseException:
        stream.release()
        raise
    return _StreamResponse(
        stream.messages(start),
        release=stream.release,
        ping=PING_S,
        send_timeout=state.settings.sse_send_timeout_s,
    )


class _StreamResponse(EventSourceResponse):
    """An event stream that gives its slot back however it ends (even if never started)."""

    def __init__(
        self, content: AsyncIterator[dict[str, Any]], *, release: Callable[[], None], **kw: Any
    ) -> None:
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("event stream closed: its client accepted nothing for too long")
        finally:
            self._release()
