"""Concurrent calls of one read-only script, sent to Redis together (issue 12's agent reads).

Each call through redis-py pays a fixed cost of its own (a connection taken from the pool and
given back, the command packed, a timeout armed for the send and for the read): about 70 µs
of the API's CPU for the one-agent read, as much as the rest of the read together. While one
call or pipeline is in flight, the calls that arrive wait and then go together, in one
pipeline (`transaction=False`: each script is atomic by itself), and share that cost. A call
that finds nothing in flight goes at once, by itself, as without batching: nothing waits for a
timer, so a lone read costs what it did.

Each caller gets its own reply or its own error: a script's error is that call's alone; a lost
connection fails every call of its pipeline with redis-py's error, as it would have failed
each of them. After a Redis restart (NOSCRIPT) the calls are made again one by one through
redis-py's script object, which loads the script. Calls are taken in arrival order, at most
`MAX_BATCH` per pipeline.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

#: Calls sent in one pipeline at most: the replies of one pipeline (about 2 KB each for an
#: agent read) are parsed in one turn of the event loop, which this keeps to a few ms.
MAX_BATCH = 64

_Call = tuple[list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatch:
    """Runs one script for concurrent callers in shared round trips; see the module docstring."""

    def __init__(self, script: AsyncScript, *, max_batch: int = MAX_BATCH) -> None:
        self.script = script
        self.max_batch = max_batch
        self._waiting: deque[_Call] = deque()
        #: whether a call or a pipeline is in flight (then calls wait)
        self._busy = False
        self._sending: asyncio.Task[None] | None = None

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        """The script's reply to this call (its error raised)."""
        if not self._busy:  # nothing in flight: this call goes at once, by itself
            self._busy = True
            try:
                return await self.script(keys=keys, args=args)
            finally:
                self._next()
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, reply))
        return await reply

    def _next(self) -> None:
        """After a call or a pipeline: the calls that arrived meanwhile go in the next
        pipeline; with none waiting, nothing is in flight any more."""
        if self._waiting:
            self._sending = asyncio.create_task(self._send())
        else:
            self._busy, self._sending = False, None

    async def _send(self) -> None:
        """Send up to `max_batch` waiting calls in one pipeline, then hand over."""
        count = min(len(self._waiting), self.max_batch)
        calls = [self._waiting.popleft() for _ in range(count)]
        try:
            await self._run(calls)
        except Exception as exc:  # unforeseen: these calls fail with it, the others go on
            for _, _, reply in calls:
                if not reply.done():
                    reply.set_exception(exc)
        except BaseException:  # cancelled (the loop is closing): nobody is left to send
            for _, _, reply in [*calls, *self._waiting]:
                reply.cancel()
            self._waiting.clear()
            self._busy, self._sending = False, None
            raise
        self._next()

    async def _run(self, calls: list[_Call]) -> None:
        client = self.script.registered_client
        pipe = client.pipeline(transaction=False)
        for keys, args, _ in calls:
            pipe.execute_command("EVALSHA", self.script.sha, len(keys), *keys, *args)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # every call of the pipeline gets the error
            for _, _, reply in calls:
                if not reply.done():
                    reply.set_exception(exc)
            return
        for (keys, args, reply), value in zip(calls, replies, strict=True):
            if isinstance(value, NoScriptError):  # Redis lost its scripts: this one loads it
                try:
                    value = await self.script(keys=keys, args=args)
                except Exception as exc:
                    value = exc
            if reply.done():  # its caller went away
                continue
            if isinstance(value, Exception):
                reply.set_exception(value)
            else:
                reply.set_result(value)
