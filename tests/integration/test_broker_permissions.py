"""Least privilege on the broker, with users made by `agentroster broker ...` (invariant 6).

Each test makes broker users with unique names through the management HTTP API (the CLI in
process) and revokes them afterwards; the registry objects belong to the test's prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aiormq.exceptions import ChannelAccessRefused

from agentroster.client import Announcement, Beacon, CommandRefused
from agentroster.contracts import REASON_HEADER, Register, Topology
from agentroster.settings import Settings
from agentroster.worker import Worker, create_worker
from tests.helpers import EventCollector, RawPublisher, drain_queue, queue_depth
from tests.integration.agents import a2a_card
from tests.integration.broker_users import Admin


async def test_a_beacon_with_exactly_the_agent_grant_registers_heartbeats_and_deregisters(
    worker: Worker, events: EventCollector, admin: Admin
) -> None:
    """Issue 9, test 1: no configure, write narrowed to its agents: the whole lifecycle works."""
    prefix = worker.settings.prefix
    agent = admin.grant("grant-agent", "agent", prefix, "--agents", "weather-*")
    beacon = Beacon(
        a2a_card("weather-1"), agent.url, prefix=prefix, interval_s=60, handle_signals=False
    )
    await beacon.open()  # register
    await events.wait_until(lambda evs: any(e.agent_id == "weather-1" for e in evs))
    await beacon.renew()  # heartbeat (confirmed by the broker, then applied)
    key = worker.store.keys.instance("weather-1", beacon.instance_id)
    while await worker.redis.hget(key, "seq") != b"2":
        await asyncio.sleep(0.02)
    await beacon.close()  # deregister
    await events.wait_until(
        lambda evs: any(e.agent_id == "weather-1" and e.kind == "left" for e in evs)
    )
    assert [(e.kind, e.data["reason"]) for e in events.events if e.agent_id == "weather-1"] == [
        ("joined", "registered"),
        ("left", "deregistered"),
    ]
    dead_letters = Topology(prefix).dead_letter_queue
    assert await queue_depth(worker.settings.broker_url, dead_letters) == 0


async def test_an_agent_user_cannot_speak_for_an_agent_outside_its_pattern(
    worker: Worker, admin: Admin
) -> None:
    """Issue 9, test 3: the broker refuses it; the error names the permission; the agent goes on."""
    prefix = worker.settings.prefix
    agent = admin.grant("grant-agent", "agent", prefix, "--agents", "weather-*")
    intruder = Beacon(
        a2a_card("billing-1"), agent.url, prefix=prefix, interval_s=60, handle_signals=False
    )
    with pytest.raises(CommandRefused) as refused:
        await intruder.open()
    assert refused.value.permission == "topic write"
    assert refused.value.routing_key == "agent.billing-1.register"
    assert refused.value.exchange == f"{prefix}.commands"
    assert refused.value.user == agent.name
    for named in ("topic write", "agent.billing-1.register", f"{prefix}.commands", agent.name):
        assert named in str(refused.value)
    # the same connection recovers from the channel the broker closed
    own = Announcement(a2a_card("weather-2"), agent.url, prefix=prefix, ttl_s=60)
    await own.open()
    with pytest.raises(CommandRefused):
        await own._publisher.publish("register", intruder_register(own))
    await own.renew()
    await own.close()


def intruder_register(own: Announcement) -> Register:
    """A registration of billing-1, to send through `own`'s publisher."""
    return Register(
        agent_id="billing-1",
        instance_id=own.instance_id,
        seq=99,
        ttl_s=60,
        card=a2a_card("billing-1"),
        sent_at=datetime.now(UTC),
    )


Attack = Callable[[AbstractChannel, Topology], Awaitable[object]]
OnMessage = Callable[[AbstractIncomingMessage], Awaitable[None]]
Subscribe = Callable[[AbstractChannel, OnMessage], Awaitable[object]]


async def publish_an_event(channel: AbstractChannel, names: Topology) -> object:
    exchange = await channel.get_exchange(names.events_exchange, ensure=False)
    forged = {"agent_id": "weather-1", "revision": 1, "status": "live"}
    return await exchange.publish(
        aio_pika.Message(orjson.dumps(forged)), routing_key="agent.joined.weather-1"
    )


async def consume_the_commands_queue(channel: AbstractChannel, names: Topology) -> object:
    async def swallow(message: AbstractIncomingMessage) -> None:
        await message.ack()

    queue = await channel.get_queue(names.commands_queue, ensure=False)
    return await queue.consume(swallow)


async def delete_the_commands_exchange(channel: AbstractChannel, names: Topology) -> object:
    return await channel.exchange_delete(names.commands_exchange)


async def delete_the_commands_queue(channel: AbstractChannel, names: Topology) -> object:
    return await channel.queue_delete(names.commands_queue)


async def purge_the_commands_queue(channel: AbstractChannel, names: Topology) -> object:
    return await (await channel.get_underlay_channel()).queue_purge(names.commands_queue)


async def bind_the_commands_queue_to_the_events(
    channel: AbstractChannel, names: Topology
) -> object:
    underlay = await channel.get_underlay_channel()
    return await underlay.queue_bind(names.commands_queue, names.events_exchange, routing_key="#")


async def bind_the_commands_exchange_to_the_events(
    channel: AbstractChannel, names: Topology
) -> object:
    underlay = await channel.get_underlay_channel()
    return await underlay.exchange_bind(
        names.commands_exchange, names.events_exchange, routing_key="#"
    )


async def bind_the_commands_queue_to_a_built_in_exchange(
    channel: AbstractChannel, names: Topology
) -> object:
    underlay = await channel.get_underlay_channel()
    return await underlay.queue_bind(names.commands_queue, "amq.topic", routing_key="#")


async def tap_the_commands(channel: AbstractChannel, names: Topology) -> object:
    underlay = await channel.get_underlay_channel()
    declared = await underlay.queue_declare("", exclusive=True, auto_delete=True)
    assert declared.queue is not None
    return await underlay.queue_bind(declared.queue, names.commands_exchange, routing_key="#")


ATTACKS: list[Attack] = [
    publish_an_event,
    consume_the_commands_queue,
    delete_the_commands_exchange,
    delete_the_commands_queue,
    purge_the_commands_queue,
    bind_the_commands_queue_to_the_events,
    bind_the_commands_exchange_to_the_events,
    bind_the_commands_queue_to_a_built_in_exchange,
    tap_the_commands,
]


@pytest.mark.parametrize(
    ("command", "options"),
    [("grant-agent", ("--agents", "*", "--subscribe")), ("grant-subscriber", ())],
    ids=["agent-that-subscribes", "subscriber"],
)
async def test_no_other_role_can_forge_events_or_touch_the_commands_queue(
    worker: Worker, admin: Admin, command: str, options: tuple[str, ...]
) -> None:
    """Issue 9, test 4 (and more): the broker refuses each attack with ACCESS_REFUSED."""
    names = Topology(worker.settings.prefix)
    user = admin.grant(command, command.removeprefix("grant-"), names.prefix, *options)
    connection = await aio_pika.connect(user.url)
    try:
        for attack in ATTACKS:
            channel = await connection.channel(publisher_confirms=True)
            with pytest.raises(ChannelAccessRefused):
                await attack(channel, names)
    finally:
        await connection.close()
    # the registry's objects are as they were: commands still route to the queue
    async with Announcement(
        a2a_card("still-works"), worker.settings.broker_url, prefix=names.prefix, ttl_s=60
    ):
        pass


async def first_event(
    connection: aio_pika.abc.AbstractConnection,
    subscribe: Callable[
        [AbstractChannel, Callable[[AbstractIncomingMessage], Awaitable[None]]], Awaitable[object]
    ],
    agent_id: str,
) -> AbstractIncomingMessage:
    """Subscribe with `subscribe`; the first event about `agent_id` it delivers."""
    got: asyncio.Future[AbstractIncomingMessage] = asyncio.get_running_loop().create_future()

    async def on_message(message: AbstractIncomingMessage) -> None:
        await message.ack()
        if orjson.loads(message.body).get("agent_id") == agent_id and not got.done():
            got.set_result(message)

    channel = await connection.channel()
    await channel.set_qos(prefetch_count=100)  # a stream consumer needs a prefetch
    await subscribe(channel, on_message)
    return await asyncio.wait_for(got, 30)


async def test_an_agent_that_subscribes_reads_the_events_stream(
    worker: Worker, admin: Admin
) -> None:
    """--subscribe: the events log stream, replayed from its start, with no exchange rights."""
    names = Topology(worker.settings.prefix)
    user = admin.grant("grant-agent", "agent", names.prefix, "--agents", "weather-*", "--subscribe")
    async with Announcement(a2a_card("weather-3"), user.url, prefix=names.prefix, ttl_s=60):

        async def from_the_stream(
            channel: AbstractChannel,
            on_message: OnMessage,
        ) -> object:
            stream = await channel.get_queue(names.events_log, ensure=False)
            return await stream.consume(on_message, arguments={"x-stream-offset": "first"})

        connection = await aio_pika.connect(user.url)
        try:
            message = await first_event(connection, from_the_stream, "weather-3")
        finally:
            await connection.close()
    assert message.type == "agent.joined"


async def test_a_subscriber_binds_a_queue_of_its_own_to_the_events_exchange(
    worker: Worker, admin: Admin
) -> None:
    """grant-subscriber: a server-named queue, bound to the events exchange, consumed."""
    names = Topology(worker.settings.prefix)
    user = admin.grant("grant-subscriber", "subscriber", names.prefix)

    async def own_queue(
        channel: AbstractChannel,
        on_message: OnMessage,
    ) -> object:
        exchange = await channel.get_exchange(names.events_exchange)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="agent.*.*")
        subscribed.set()
        return await queue.consume(on_message)

    subscribed = asyncio.Event()
    connection = await aio_pika.connect(user.url)
    try:
        waiting = asyncio.create_task(first_event(connection, own_queue, "watched"))
        await subscribed.wait()
        async with Announcement(
            a2a_card("watched"), worker.settings.broker_url, prefix=names.prefix, ttl_s=60
        ):
            message = await waiting
    finally:
        await connection.close()
    assert message.type == "agent.joined"


async def test_a_registry_with_exactly_its_grant_runs_and_signs_its_events(
    settings: Settings, cleanup: None, events: EventCollector, admin: Admin
) -> None:
    """grant-registry suffices for a worker; its events carry its validated user_id."""
    registry = admin.grant("grant-registry", "registry", settings.prefix)
    own = settings.model_copy(update={"broker_url": registry.url})
    async with create_worker(own):
        async with Announcement(
            a2a_card("signed"), settings.broker_url, prefix=settings.prefix, ttl_s=60
        ):
            await events.wait_until(lambda evs: any(e.agent_id == "signed" for e in evs))
        await events.wait_until(
            lambda evs: any(e.agent_id == "signed" and e.kind == "left" for e in evs)
        )
        async with RawPublisher(settings.broker_url, settings.prefix) as raw:
            await raw.send("agent.signed.register", b"not json")  # dead-lettered by the worker
        [parked] = await drain_queue(
            settings.broker_url, Topology(settings.prefix).dead_letter_queue, 1
        )
    assert parked.headers[REASON_HEADER] == "malformed-json"
    signed = [e for e in events.events if e.agent_id == "signed"]
    assert [e.kind for e in signed] == ["joined", "left"]
    assert {e.user_id for e in signed} == {registry.name}
