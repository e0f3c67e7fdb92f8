"""Concurrent calls of one read-only script, merged into one call (issue 12's agent reads).

The script reads a list of items (its `rest` arguments: agent ids) and replies with one entry
per item, in order. Each call through redis-py pays a fixed cost of its own (a connection taken
from the pool and given back, the command packed, a timeout armed for the send and for the
read, the reply parsed): about 70 µs of the API's CPU for the one-agent read, as much as the
rest of the read together. While one call is in flight, the calls that arrive wait and then go
together, as *one* call of the script with all their items: one command to pack, one reply to
parse (hiredis reads the nested reply in C), one script run in Redis. A call that finds nothing
in flight goes at once, by itself, as without merging: nothing waits for a timer, so a lone
read costs what it did.

Each caller gets the replies to its own items. An error of the merged call (a lost connection,
a script error) is every merged caller's, as it would have been each one's alone: the script
reads only, and validated ids do not make it fail. After a Redis restart (NOSCRIPT) redis-py's
script object loads the script again. Calls are merged in arrival order, while their other
arguments are equal, at most `MAX_ITEMS` items per call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript

#: Items read in one merged call at most: Redis runs the script alone meanwhile (a few µs per
#: agent), and the API parses the replies in one turn of the event loop.
MAX_ITEMS = 64


class _Call:
    """One caller's items, arguments and the future of its replies."""

    __slots__ = ("args", "items", "keys", "replies")

    def __init__(self, keys: list[Any], args: list[Any], items: Sequence[Any]) -> None:
        self.keys = keys
        self.args = args
        self.items = items
        self.replies: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()


class ScriptBatch:
    """Merges concurrent calls of one script into one call; see the module docstring."""

    def __init__(self, script: AsyncScript, *, max_items: int = MAX_ITEMS) -> None:
        self.script = script
        self.max_items = max_items
        self._waiting: deque[_Call] = deque()
        #: whether a call is in flight (then calls wait)
        self._busy = False
        self._sending: asyncio.Task[None] | None = None

    async def __call__(self, keys: list[Any], args: list[Any], items: Sequence[Any]) -> list[Any]:
        """The script's replies to these items, in order (its error raised)."""
        if not self._busy:  # nothing in flight: this call goes at once, by itself
            self._busy = True
            try:
                return await self._call(keys, args, items)
            finally:
                self._next()
        call = _Call(keys, args, items)
        self._waiting.append(call)
        return await call.replies

    async def _call(self, keys: list[Any], args: list[Any], items: Sequence[Any]) -> list[Any]:
        replies = await self.script(keys=keys, args=[*args, *items])
        if not isinstance(replies, list) or len(replies) != len(items):
            raise ValueError(f"the script replied {type(replies).__name__}, not one per item")
        return replies

    def _next(self) -> None:
        """After a call: the calls that arrived meanwhile go in the next one; with none
        waiting, nothing is in flight any more."""
        if self._waiting:
            self._sending = asyncio.create_task(self._send())
        else:
            self._busy, self._sending = False, None

    def _take(self) -> list[_Call]:
        """The next calls to merge: in arrival order, with the first one's arguments, up to
        `max_items` items (the first call goes even if it alone has more)."""
        first = self._waiting.popleft()
        calls, count, kept = [first], len(first.items), deque[_Call]()
        while self._waiting:
            call = self._waiting.popleft()
            if call.args == first.args and count + len(call.items) <= self.max_items:
                calls.append(call)
                count += len(call.items)
            else:
                kept.append(call)
        self._waiting.extendleft(reversed(kept))
        return calls

    async def _send(self) -> None:
        """Send the next merged call, hand each caller its replies, then go on."""
        calls = self._take()
        try:
            items = [item for call in calls for item in call.items]
            replies = await self._call(calls[0].keys, calls[0].args, items)
        except Exception as exc:  # every merged call gets the error, the others go on
            for call in calls:
                if not call.replies.done():
                    call.replies.set_exception(exc)
        except BaseException:  # cancelled (the loop is closing): nobody is left to send
            for call in [*calls, *self._waiting]:
                call.replies.cancel()
            self._waiting.clear()
            self._busy, self._sending = False, None
            raise
        else:
            start = 0
            for call in calls:
                end = start + len(call.items)
                if not call.replies.done():  # else its caller went away
                    call.replies.set_result(replies[start:end])
                start = end
        self._next()
