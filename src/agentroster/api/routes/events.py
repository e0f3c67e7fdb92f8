"""`GET /v1/events`: the registry's events as server-sent events, replayed then live.

The same events, bodies and revisions as on the `agentroster.events` exchange, read from the
outbox stream (see `store/outbox.py`). A client lists at revision R, then follows events after
R; a reconnecting EventSource sends `Last-Event-ID` and goes on where it stopped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse

from agentroster.api.deps import StateDep
from agentroster.api.errors import ERROR_RESPONSES, ApiError
from agentroster.store.outbox import Outbox

#: One blocking read waits at most this long (below the Redis client's socket timeout).
BLOCK_MS = 4000
#: Comment lines that keep idle connections (and proxies) from timing out.
PING_S = 15

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
        410: {"description": "The events after `since` are no longer kept."},
        **ERROR_RESPONSES,
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
    """Events after `since` (or `Last-Event-ID`), in revision order, then as they happen."""
    outbox = Outbox(state.redis, state.settings.prefix)
    start = since if since is not None else last_event_id
    if start is None:
        start = await state.reader.revision()
    else:
        revision, oldest = await state.reader.revision(), await outbox.oldest()
        if start < revision and (oldest is None or start + 1 < oldest):
            raise EventsExpired(start, oldest)
    return EventSourceResponse(_stream(outbox, start), ping=PING_S)


async def _stream(outbox: Outbox, after: int) -> AsyncIterator[dict[str, Any]]:
    while True:
        for event in await outbox.after(after, 500, block_ms=BLOCK_MS):
            yield {
                "id": str(event.revision),
                "event": f"agent.{event.kind}",
                "data": event.body().decode(),
            }
            after = event.revision
