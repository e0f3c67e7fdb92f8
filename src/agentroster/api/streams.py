"""The event streams of one API process: capped in number, bounded in memory, one reader.

`StreamHub` subscribes once to the process's `OutboxFollower`, encodes each live event once,
and hands it to every open `EventStream`. What each bound protects:

- **streams per process** (`sse_max_streams`): `reserve` refuses more with `StreamsFull` (503
  and `Retry-After`), before any Redis work is done for the request;
- **buffer per stream** (`sse_buffer_events`): a stream that falls that far behind the live
  events is ended; its client reconnects with `Last-Event-ID` and catches up from the outbox.
  Buffers hold references to the one encoded copy of each event, so all buffers together hold
  at most `sse_buffer_events` distinct live events;
- **replay** (catch-up from the outbox window) reads `REPLAY_CHUNK` events per round trip, and
  at most `REPLAY_READERS` such reads (or revision checks) run at once for the whole process:
  a thousand streams starting together use a handful of Redis connections, and a replaying
  stream holds one chunk at a time while its client reads;
- a client that stops reading blocks its sends; after `sse_send_timeout_s` the response gives
  up on it (sse-starlette's `send_timeout`).

Hand-over from replay to live: a stream subscribes first (taking the follower's position P),
replays from the outbox up to P, then takes its buffered live events, skipping any revision it
already sent. Revisions are contiguous in the outbox (one event per revision), so a replay that
meets a hole knows events were trimmed under it and ends the stream: the client's reconnection
then gets the 410 it needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from agentroster.api.errors import ApiError
from agentroster.api.follower import OutboxFollower
from agentroster.contracts import Topology
from agentroster.store.outbox import Outbox, OutboxEvent

log = logging.getLogger(__name__)

#: Events read from the outbox per round trip while a stream catches up.
REPLAY_CHUNK = 100
#: Outbox reads for catch-up (and revision checks of new streams) running at once.
REPLAY_READERS = 4
#: Seconds a client over the cap is told to wait.
RETRY_AFTER_S = 5

#: One server-sent event as sse-starlette takes it: `id`, `event`, `data`.
SseMessage = dict[str, Any]


def sse_message(event: OutboxEvent) -> SseMessage:
    """The server-sent event of one outbox event: its revision, kind and body."""
    return {
        "id": str(event.revision),
        "event": Topology.event_name(event.kind),
        "data": event.body().decode(),
    }


class StreamsFull(ApiError):
    """This API process already serves its maximum of event streams."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            503,
            "too-many-streams",
            f"this API process already serves its maximum of {limit} event streams; retry later",
            {"max_streams": limit},
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


class EventStream:
    """One client's stream: a slot under the cap and a bounded buffer of live events."""

    def __init__(self, hub: StreamHub) -> None:
        self._hub = hub
        self._buffer: deque[tuple[int, SseMessage]] = deque()
        self._wake = asyncio.Event()
        self._released = False
        #: Why the live phase must end, once it must (None while it may go on).
        self.ended: str | None = None

    def deliver(self, revision: int, message: SseMessage) -> None:
        """Buffer one live event; past the bound, end the stream instead (never block)."""
        if self.ended is not None:
            return
        if len(self._buffer) >= self._hub.buffer_events:
            self._end("fell behind")
            return
        self._buffer.append((revision, message))
        self._wake.set()

    def reset(self) -> None:
        """The registry's revision went backwards: positions are void, end the stream."""
        self._end("registry revision reset")

    def _end(self, reason: str) -> None:
        self.ended = reason
        self._buffer.clear()
        self._wake.set()
        self._hub.detach(self)

    def release(self) -> None:
        """Give the slot back (idempotent); the stream receives nothing more."""
        if not self._released:
            self._released = True
            self._hub.detach(self)
            self._hub.release_slot()

    async def messages(self, after: int) -> AsyncIterator[SseMessage]:
        """The events after revision `after`: replayed from the outbox, then live."""
        await self._hub.follower.positioned()
        position = self._hub.attach(self)
        try:
            while after < position:
                chunk = await self._hub.replay(after)
                if not chunk or chunk[0].revision != after + 1:
                    log.info("event stream: events after %d were trimmed during replay", after)
                    return
                for event in chunk:
                    yield sse_message(event)
                    after = event.revision
            while True:
                while self._buffer:
                    revision, message = self._buffer.popleft()
                    if revision > after:
                        yield message
                        after = revision
                if self.ended is not None:
                    log.info("event stream ended after revision %d: %s", after, self.ended)
                    return
                self._wake.clear()
                await self._wake.wait()
        finally:
            self._hub.detach(self)


class StreamHub:
    """Every event stream of one API process, fed by its one outbox follower."""

    def __init__(
        self,
        follower: OutboxFollower,
        *,
        max_streams: int,
        buffer_events: int,
        replay_chunk: int = REPLAY_CHUNK,
        replay_readers: int = REPLAY_READERS,
    ) -> None:
        self.follower = follower
        self.outbox: Outbox = follower.outbox
        self.max_streams = max_streams
        self.buffer_events = buffer_events
        self.replay_chunk = replay_chunk
        self._reads = asyncio.Semaphore(replay_readers)
        self._streams: dict[int, EventStream] = {}
        self._slots = 0

    @property
    def open_streams(self) -> int:
        """Streams holding a slot now (replaying, live, or not yet started)."""
        return self._slots

    def reserve(self) -> EventStream:
        """A new stream's slot, or `StreamsFull` when every slot is taken."""
        if self._slots >= self.max_streams:
            raise StreamsFull(self.max_streams)
        self._slots += 1
        return EventStream(self)

    def release_slot(self) -> None:
        """A stream gave its slot back."""
        self._slots -= 1

    def attach(self, stream: EventStream) -> int:
        """Send `stream` every live event after the returned position."""
        if not self._streams:
            self.follower.subscribe(self)
        self._streams[id(stream)] = stream
        return self.follower.position

    def detach(self, stream: EventStream) -> None:
        """Send `stream` nothing more."""
        self._streams.pop(id(stream), None)
        if not self._streams:
            self.follower.unsubscribe(self)

    async def span(self) -> tuple[int, int | None]:
        """The registry's revision and the oldest kept, among the bounded outbox reads."""
        async with self._reads:
            return await self.outbox.span()

    async def replay(self, after: int) -> list[OutboxEvent]:
        """One chunk of kept events after `after`, among the bounded outbox reads."""
        async with self._reads:
            return await self.outbox.after(after, self.replay_chunk, block_ms=None)

    def deliver(self, events: Sequence[OutboxEvent]) -> None:
        """From the follower: encode each event once and buffer it in every stream."""
        for event in events:
            message = sse_message(event)
            for stream in list(self._streams.values()):
                stream.deliver(event.revision, message)

    def reset(self) -> None:
        """From the follower: the registry's revision went backwards; end every stream."""
        for stream in list(self._streams.values()):
            stream.reset()
