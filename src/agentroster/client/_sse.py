"""A small reader of server-sent events (the WHATWG `text/event-stream` format), bounded.

Only what `GET /v1/events` sends is needed: `id`, `event`, `data` (possibly on several lines),
comment lines (the API's pings) and `retry` (ignored: the Roster has its own backoff). A line
longer than `max_line` bytes ends the stream with `SseTooLarge`: a broken or hostile server
cannot make the client buffer without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


class SseTooLarge(ValueError):
    """A line of the stream was longer than the reader accepts."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event: its `id` (None if it set none), `event` type and `data`."""

    id: str | None
    event: str
    data: str


class SseParser:
    """Turns lines (without their line ending) into events, as the SSE specification says."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def line(self, line: str) -> SseEvent | None:
        """Feed one line; returns the event a blank line completes, else None."""
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(self._id, self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        return None


async def sse_events(chunks: AsyncIterable[bytes], *, max_line: int) -> AsyncIterator[SseEvent]:
    """The events of a byte stream; `SseTooLarge` when a line exceeds `max_line` bytes."""
    parser = SseParser()
    pending = b""
    async for chunk in chunks:
        pending += chunk
        lines = pending.splitlines(keepends=True)
        pending = b""
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            pending = lines.pop()
        elif lines and lines[-1].endswith(b"\r"):
            # a "\r\n" may be split across chunks: wait for the next byte before deciding
            pending = lines.pop()
        if len(pending) > max_line:
            raise SseTooLarge(f"an event-stream line exceeds {max_line} bytes")
        for raw in lines:
            if len(raw) > max_line:
                raise SseTooLarge(f"an event-stream line exceeds {max_line} bytes")
            event = parser.line(raw.rstrip(b"\r\n").decode("utf-8", errors="replace"))
            if event is not None:
                yield event
