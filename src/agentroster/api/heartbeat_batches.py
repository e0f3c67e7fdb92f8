"""Coalesce HTTP heartbeats into gateway heartbeat batches (`contracts.gateway.HeartbeatBatch`).

One confirmed AMQP publish costs the API about 0.4 ms of CPU (bench/README.md, HTTP writes),
more than the whole budget of an HTTP heartbeat. So heartbeats that arrive while a publish
awaits its confirm wait for the next one and go together in one message: natural batching,
so a lone heartbeat is published at once and a busy API pays one publish per confirm round
trip. Under load only (the last message carried more than one heartbeat), the next one
waits `linger_s` to fill, as the worker's batches do: otherwise the first heartbeat after a
confirm would go alone, and batches would alternate between one and the rest. Each caller
returns only once the message that carries its heartbeat was confirmed, or gets
`BrokerUnavailable` (never a 202 before the broker has it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import orjson

from agentroster.api.gateway_errors import BrokerUnavailable
from agentroster.contracts.commands import Heartbeat, command_json

#: Publishes one batch body (JSON) with confirms; raises `BrokerUnavailable` if not confirmed.
BatchPublisher = Callable[[bytes], Awaitable[None]]

_OPEN = b'{"heartbeats":['
_CLOSE = b"]}"


def batch_item(command: Heartbeat, principal: str) -> bytes:
    """One item of a batch: the principal and the heartbeat as it would be published alone."""
    return b'{"principal":%s,"command":%s}' % (orjson.dumps(principal), command_json(command))


class HeartbeatBatches:
    """Queues heartbeat items and publishes them in batches, one publish in flight at a time."""

    def __init__(
        self, publish: BatchPublisher, *, max_items: int, max_bytes: int, linger_s: float = 0.001
    ) -> None:
        self._publish = publish
        self._linger_s = linger_s
        self._last_size = 0
        self._max_items = max_items
        self._max_bytes = max_bytes - len(_OPEN) - len(_CLOSE)
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._publisher: asyncio.Task[None] | None = None

    async def send(self, item: bytes) -> None:
        """Return once the batch carrying `item` was confirmed (`BrokerUnavailable` if not)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._publisher is None:
            self._publisher = asyncio.get_running_loop().create_task(self._run())
        await future

    async def stop(self) -> None:
        """Stop publishing; heartbeats still queued are answered `BrokerUnavailable`."""
        task, self._publisher = self._publisher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail(self._queue, BrokerUnavailable("the API is shutting down"))
        self._queue = []

    async def _run(self) -> None:
        try:
            while self._queue:
                if self._last_size > 1 and len(self._queue) < self._max_items:
                    await asyncio.sleep(self._linger_s)
                batch = self._take()
                self._last_size = len(batch)
                try:
                    await self._publish(_OPEN + b",".join(item for item, _ in batch) + _CLOSE)
                except BrokerUnavailable as exc:
                    self._fail(batch, exc)
                except BaseException:
                    self._fail(batch, BrokerUnavailable("the publish was interrupted"))
                    raise
                else:
                    for _, future in batch:
                        if not future.done():  # its request may have gone away
                            future.set_result(None)
        finally:
            self._publisher = None

    def _take(self) -> list[tuple[bytes, asyncio.Future[None]]]:
        """The next batch: the oldest items, up to the item and byte bounds (at least one)."""
        size = 0
        taken = 0
        for item, _ in self._queue[: self._max_items]:
            size += len(item) + 1
            if taken and size > self._max_bytes:
                break
            taken += 1
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch

    @staticmethod
    def _fail(batch: list[tuple[bytes, asyncio.Future[None]]], exc: BrokerUnavailable) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(BrokerUnavailable(str(exc), exc.retry_after_s))
