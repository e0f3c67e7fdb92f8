"""The gateway's heartbeat batches (api/heartbeat_batches.py): natural batching, bounds, and
no caller answered before its batch was confirmed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from agentroster.api.gateway import BrokerUnavailable
from agentroster.api.heartbeat_batches import HeartbeatBatches, batch_item
from agentroster.contracts.commands import Heartbeat
from agentroster.contracts.gateway import HeartbeatBatch


class Broker:
    """A publisher whose confirms the test releases one at a time."""

    def __init__(self) -> None:
        self.published: list[list[dict[str, object]]] = []
        self.confirms: asyncio.Queue[BrokerUnavailable | None] = asyncio.Queue()

    async def publish(self, body: bytes) -> None:
        self.published.append(HeartbeatBatch.model_validate_json(body).model_dump()["heartbeats"])
        outcome = await self.confirms.get()
        if outcome is not None:
            raise outcome


def heartbeat(n: int) -> bytes:
    command = Heartbeat(
        agent_id=f"a{n}",
        instance_id="i1",
        seq=n + 1,
        ttl_s=30,
        card_digest="",
        sent_at=datetime.now(UTC),
    )
    return batch_item(command, f"p{n}")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_heartbeat_goes_at_once_and_those_during_its_confirm_go_together() -> None:
    """The first is published alone; those that arrive while it awaits its confirm go in the
    next message; nobody returns before the message carrying it was confirmed."""
    broker = Broker()
    batches = HeartbeatBatches(broker.publish, max_items=100, max_bytes=1 << 20, linger_s=0)
    first = asyncio.ensure_future(batches.send(heartbeat(0)))
    await settle()
    rest = [asyncio.ensure_future(batches.send(heartbeat(n))) for n in range(1, 6)]
    await settle()
    assert [len(b) for b in broker.published] == [1]
    assert not first.done()
    broker.confirms.put_nowait(None)
    await first
    await settle()
    assert [len(b) for b in broker.published] == [1, 5]
    assert not any(r.done() for r in rest)
    broker.confirms.put_nowait(None)
    await asyncio.gather(*rest)
    assert [item["principal"] for item in broker.published[1]] == [f"p{n}" for n in range(1, 6)]
    assert orjson.loads(heartbeat(3))["command"]["seq"] == 4


async def test_a_batch_that_is_not_confirmed_fails_each_of_its_callers_only() -> None:
    """The broker refuses one message: its callers get BrokerUnavailable (with Retry-After);
    the next message goes on."""
    broker = Broker()
    batches = HeartbeatBatches(broker.publish, max_items=100, max_bytes=1 << 20, linger_s=0)
    first = asyncio.ensure_future(batches.send(heartbeat(0)))
    await settle()
    second = asyncio.ensure_future(batches.send(heartbeat(1)))
    broker.confirms.put_nowait(BrokerUnavailable("nack", retry_after_s=4))
    with pytest.raises(BrokerUnavailable) as refused:
        await first
    assert refused.value.retry_after_s == 4
    broker.confirms.put_nowait(None)
    await second


async def test_batches_keep_to_their_item_and_byte_bounds() -> None:
    """At most `max_items` per message, and no more bytes than `max_bytes` (at least one)."""
    broker = Broker()
    size = len(heartbeat(10))
    batches = HeartbeatBatches(broker.publish, max_items=3, max_bytes=2 * size + 20, linger_s=0)
    sends = [asyncio.ensure_future(batches.send(heartbeat(n))) for n in range(10, 17)]
    for _ in range(7):
        await settle()
        broker.confirms.put_nowait(None)
    await asyncio.gather(*sends)
    assert [len(b) for b in broker.published] == [2, 2, 2, 1]


async def test_stop_answers_what_is_still_queued_broker_unavailable() -> None:
    """Shutting down: a heartbeat never published is refused, not left hanging."""
    broker = Broker()
    batches = HeartbeatBatches(broker.publish, max_items=100, max_bytes=1 << 20, linger_s=0)
    first = asyncio.ensure_future(batches.send(heartbeat(0)))
    await settle()
    second = asyncio.ensure_future(batches.send(heartbeat(1)))
    await settle()
    await batches.stop()
    for pending in (first, second):
        with pytest.raises(BrokerUnavailable):
            await pending
