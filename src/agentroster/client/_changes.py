"""The changes a Roster reports, as a bounded async iterator, and the Roster's errors.

RuntimeError
 ├── RosterClosed   the Roster was closed while something waited on it
 └── ChangesLost    a change iterator fell more than its bound behind its Roster
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Self

from agentroster.client._state import Change

#: Changes an iterator may fall behind by before it ends with `ChangesLost`.
MAX_PENDING = 10_000


class RosterClosed(RuntimeError):
    """The Roster was closed while something waited on it."""


class ChangesLost(RuntimeError):
    """A change iterator fell more than its bound behind: read the Roster afresh, then iterate
    a new `changes()`."""


class Changes:
    """An async iterator of a Roster's changes from the moment it was made; bounded.

    Falling more than `max_pending` changes behind ends it with `ChangesLost` (after the
    changes it kept); closing the Roster ends it. `aclose()` (or `async with`) unsubscribes.
    """

    def __init__(self, max_pending: int, unsubscribe: Callable[[Changes], None]) -> None:
        self._unsubscribe = unsubscribe
        self._queue: deque[Change] = deque()
        self._max = max_pending
        self._wake = asyncio.Event()
        self._lost = False
        self._closed = False

    def put(self, change: Change) -> None:
        """From the Roster: one more change (past the bound, the iterator is lost instead)."""
        if len(self._queue) >= self._max:
            self._lost = True
            self._unsubscribe(self)
        else:
            self._queue.append(change)
        self._wake.set()

    def close(self) -> None:
        """From the Roster: no more changes will come."""
        self._closed = True
        self._wake.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Change:
        while not self._queue:
            if self._lost:
                raise ChangesLost(f"more than {self._max} changes were not read in time")
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        """Stop receiving changes."""
        self._unsubscribe(self)
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
