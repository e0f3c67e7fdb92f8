"""Whatever bytes a message carries, it hurts only itself (invariant 8), against the real services.

Each case publishes, on one raw AMQP connection (so the queue keeps their order), valid
registrations, the hostile message, and more valid registrations; then it asserts that the
hostile message was dead-lettered with its reason and counted, that every valid registration
was applied, and that the worker's broker connection never dropped.
"""

from __future__ import annotations

import asyncio
import datetime
import struct
from dataclasses import dataclass, field

import aiormq
import orjson
import pytest
from pamqp import commands

from agentroster.contracts import DETAIL_HEADER, REASON_HEADER, ROUTING_KEY_HEADER, Topology
from agentroster.worker import Worker
from tests.helpers import EventCollector, drain_queue, queue_depth
from tests.hostile.raw_amqp import RawAmqp, nested_headers
from tests.integration.agents import command_body

pytestmark = pytest.mark.connected

#: A timestamp whose 8 bytes are easy to find in a content header (2001-02-03T04:05:06Z).
MARK_TIME = datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
MARK_TIME_BYTES = struct.pack(">Q", int(MARK_TIME.timestamp()))
#: Seconds past year 9999 (Python's datetime cannot hold it; pamqp raises ValueError).
FAR_FUTURE_BYTES = struct.pack(">Q", 2**62)


@dataclass(frozen=True)
class Hostile:
    """One hostile message: what is sent, and the reason it must be dead-lettered with."""

    routing_key: bytes
    reason: str
    body: bytes = b""
    properties: commands.Basic.Properties | None = None
    splice: dict[bytes, bytes] = field(default_factory=dict)
    raw_properties: bytes | None = None


def register_body(agent_id: str) -> bytes:
    """A valid registration of `agent_id`."""
    return orjson.dumps(command_body(agent_id))


VALID = register_body("victim")  # a body that would be applied if the message were decodable

CASES: dict[str, Hostile] = {
    "routing key not UTF-8": Hostile(b"agent.\xff.register", "undecodable", VALID),
    "header key not UTF-8": Hostile(
        b"agent.victim.register",
        "undecodable",
        VALID,
        commands.Basic.Properties(headers={"x-KEYPLACE": 1}),
        {b"x-KEYPLACE": b"x-\xff\xfe\xfd-bad!"},
    ),
    "content type not UTF-8": Hostile(
        b"agent.victim.register",
        "undecodable",
        VALID,
        commands.Basic.Properties(content_type="PLACEHOLDR"),
        {b"PLACEHOLDR": b"appl\xc3\x28json"},
    ),
    "message type not UTF-8": Hostile(
        b"agent.victim.register",
        "undecodable",
        VALID,
        commands.Basic.Properties(message_type="PLACEHOLDR"),
        {b"PLACEHOLDR": b"regist\xe9r\x80\x80"},
    ),
    "timestamp property past year 9999": Hostile(
        b"agent.victim.register",
        "undecodable",
        VALID,
        commands.Basic.Properties(timestamp=MARK_TIME),
        {MARK_TIME_BYTES: FAR_FUTURE_BYTES},
    ),
    "timestamp header past year 9999": Hostile(
        b"agent.victim.register",
        "undecodable",
        VALID,
        commands.Basic.Properties(headers={"x-when": MARK_TIME}),
        {MARK_TIME_BYTES: FAR_FUTURE_BYTES},
    ),
    "headers nested 2000 deep": Hostile(
        b"agent.victim.register", "undecodable", VALID, raw_properties=nested_headers(2000)
    ),
    # a long string header may be binary (AMQP 0-9-1): only the body is wrong here, and the
    # dead letter must carry the binary header again (it was requeued until parked, unexplained)
    "header value not UTF-8, body not JSON": Hostile(
        b"agent.victim.register",
        "malformed-json",
        b'{"agent_id": \xff',
        commands.Basic.Properties(headers={"x-note": "PLACEHOLDR", "x-ok": "fine"}),
        {b"PLACEHOLDR": b"\xff\xfe" * 5},
    ),
}


def amqp_connection(worker: Worker) -> object:
    """The worker's current low-level (aiormq) connection: a new object after any reconnect."""
    robust = worker.broker._connection  # FastStream keeps it private; read-only use
    assert robust is not None
    assert robust.transport is not None
    return robust.transport.connection


@pytest.mark.parametrize("case", list(CASES))
async def test_a_hostile_message_is_dead_lettered_and_hurts_no_other(
    case: str, worker: Worker, events: EventCollector
) -> None:
    """The hostile message is parked with its reason; valid traffic around it is applied."""
    hostile = CASES[case]
    names = Topology(worker.settings.prefix)
    connection = amqp_connection(worker)
    valid = [f"good-{n}" for n in range(6)]
    properties = commands.Basic.Properties(content_type="application/json")
    async with RawAmqp(worker.settings.broker_url) as raw:
        for agent_id in valid[:3]:
            await raw.publish(
                names.commands_exchange,
                f"agent.{agent_id}.register".encode(),
                register_body(agent_id),
                properties,
            )
        await raw.publish(
            names.commands_exchange,
            hostile.routing_key,
            hostile.body,
            hostile.properties,
            splice=hostile.splice,
            raw_properties=hostile.raw_properties,
        )
        for agent_id in valid[3:]:
            await raw.publish(
                names.commands_exchange,
                f"agent.{agent_id}.register".encode(),
                register_body(agent_id),
                properties,
            )
    await events.wait_until(lambda evs: {e.agent_id for e in evs} >= set(valid))

    (parked,) = await drain_queue(worker.settings.broker_url, names.dead_letter_queue, 1)
    assert parked.headers[REASON_HEADER] == hostile.reason, parked.headers[DETAIL_HEADER]
    assert parked.body == hostile.body  # kept exactly as it came
    if hostile.routing_key != b"agent.victim.register":
        assert parked.headers[ROUTING_KEY_HEADER] == "agent.\\xff.register"
    if hostile.reason == "malformed-json":
        assert parked.headers["x-note"] == b"\xff\xfe" * 5  # the binary header, kept
        assert parked.headers["x-ok"] == "fine"
    assert worker.metrics.dead_lettered.labels(hostile.reason)._value.get() == 1
    assert await queue_depth(worker.settings.broker_url, names.commands_queue) == 0
    assert "victim" not in {e.agent_id for e in events.events}  # the hostile one changed nothing
    assert sorted(e.agent_id for e in events.of("joined")) == sorted(valid)
    # the connection never dropped: no close seen, and the very same connection object
    assert worker.metrics.broker_connection_lost._value.get() == 0
    assert amqp_connection(worker) is connection


async def test_a_binary_header_value_on_a_valid_command_is_applied(
    worker: Worker, events: EventCollector
) -> None:
    """A long-string header may hold any bytes (AMQP 0-9-1): the command itself is fine."""
    names = Topology(worker.settings.prefix)
    async with RawAmqp(worker.settings.broker_url) as raw:
        await raw.publish(
            names.commands_exchange,
            b"agent.binary.register",
            register_body("binary"),
            commands.Basic.Properties(headers={"x-trace": "PLACEHOLDR"}),
            splice={b"PLACEHOLDR": b"\x00\xff" * 5},
        )
    await events.wait_until(lambda evs: any(e.agent_id == "binary" for e in evs))
    assert await queue_depth(worker.settings.broker_url, names.dead_letter_queue) == 0
    (metric,) = worker.metrics.dead_lettered.collect()
    assert [s for s in metric.samples if s.name.endswith("_total")] == []


async def test_a_dropped_connection_is_counted(worker: Worker) -> None:
    """The counter the cases above read does count a real loss of the connection."""
    robust = worker.broker._connection  # FastStream keeps it private; read-only use
    assert robust is not None
    closed = asyncio.Event()
    robust.close_callbacks.add(lambda *_: closed.set())
    connection = amqp_connection(worker)
    assert isinstance(connection, aiormq.Connection)
    await connection.close(ConnectionError("cut by the test"))
    await closed.wait()
    assert worker.metrics.broker_connection_lost._value.get() == 1
