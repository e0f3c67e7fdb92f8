"""Cancellation that survives the libraries under it: shared by the worker's and the API's loops.

On Python 3.11, `asyncio.wait_for` (which redis-py uses for every command) can lose a cancel
that arrives as the command completes (cpython#86296), and redis-py may report a cancelled
blocking read as a ConnectionError. A loop that retries on errors would then go on forever.
Every such loop calls `raise_if_cancelling()` each turn, and whoever stops it cancels again
until it has ended (`cancel_and_wait`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed or turned into another error."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[None]], timeout_s: float
) -> set[asyncio.Task[None]]:
    """Cancel `tasks` (again every half second: a cancel can be lost) until they end or
    `timeout_s` passes; returns those still running."""
    stuck = set(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while stuck and loop.time() < deadline:
        for task in stuck:
            task.cancel()
        _, stuck = await asyncio.wait(stuck, timeout=0.5)
    return stuck
