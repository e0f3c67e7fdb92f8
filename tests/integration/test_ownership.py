"""Trust I against the real services: every attack of one broker user on another's agent.

Each hostile command is sent next to the victim's own traffic; afterwards the victim's agent is
live with its own card, its heartbeats renew its lease, and each hostile command sits in the
dead-letter queue as `forbidden`. Also: identity required, quotas, stuck instances, the
commands queue bound to another exchange, and the operator's release and transfer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import aio_pika
import orjson
import pytest

from agentroster.client import Announcement
from agentroster.contracts import DETAIL_HEADER, REASON_HEADER, Topology
from agentroster.settings import Settings
from agentroster.worker import Worker, create_worker
from tests.helpers import EventCollector, RawPublisher, drain_queue
from tests.integration.agents import a2a_card, command_body
from tests.integration.broker_users import Admin, BrokerUser


@pytest.fixture
def users(settings: Settings, admin: Admin) -> dict[str, BrokerUser]:
    """Two agent users made by `agentroster broker grant-agent`, both for every agent id: the
    broker lets either speak for any agent, so only the ownership rule stands between them."""
    return {
        who: admin.grant("grant-agent", who, settings.prefix, "--agents", "*")
        for who in ("victim", "mallory")
    }


async def deadline(worker: Worker, agent_id: str, instance_id: str) -> float:
    """The lease deadline of one instance (ms, Redis clock)."""
    score = await worker.redis.zscore(worker.store.keys.instances(agent_id), instance_id)
    assert score is not None, f"{agent_id}/{instance_id} holds no lease"
    return score


async def parked(worker: Worker, count: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """The first `count` dead letters of the test registry."""
    names = Topology(worker.settings.prefix)
    return await drain_queue(worker.settings.broker_url, names.dead_letter_queue, count)


async def test_no_broker_user_can_end_capture_or_rewrite_another_users_agent(
    worker: Worker, events: EventCollector, users: dict[str, BrokerUser]
) -> None:
    """Deregister (with and without user_id), a second instance with another card, the
    victim's instance id with a huge seq: all forbidden; the victim stays live and renews."""
    broker = worker.settings.broker_url
    victim = await Announcement(
        a2a_card("victim"),
        users["victim"].url,
        prefix=worker.settings.prefix,
        ttl_s=60,
    ).open()
    await events.wait_until(lambda evs: any(e.agent_id == "victim" for e in evs))
    victim_instance = victim.instance_id
    evil = {"card": a2a_card("victim", version="evil") | {"url": "http://evil.example/"}}
    attacks = [
        ("deregister", victim_instance, 10**6, {}),
        ("register", "evil-1", 1, evil),
        ("register", victim_instance, 2**53 - 1, evil),
        ("heartbeat", victim_instance, 2**53 - 1, {}),
    ]
    mallory = users["mallory"].name
    async with (
        RawPublisher(users["mallory"].url, worker.settings.prefix) as as_mallory,
        RawPublisher(broker, worker.settings.prefix) as anonymous,
    ):
        for kind, instance, seq, more in attacks:
            await as_mallory.send(
                f"agent.victim.{kind}",
                command_body("victim", kind, instance, seq, **more),
                user_id=mallory,
            )
        await anonymous.send(  # no user_id at all
            "agent.victim.deregister", command_body("victim", "deregister", victim_instance, 10**6)
        )
    before = await deadline(worker, "victim", victim_instance)
    hostile = await parked(worker, len(attacks) + 1)
    assert [m.headers[REASON_HEADER] for m in hostile] == ["forbidden"] * (len(attacks) + 1)
    # the victim's own heartbeat, after all that, still renews its lease
    await victim.renew()

    async def renewed() -> None:
        while await deadline(worker, "victim", victim_instance) <= before:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(renewed(), 30)
    card = orjson.loads(await worker.redis.hget(worker.store.keys.agent("victim"), "card") or b"")
    assert card == a2a_card("victim")
    assert await worker.redis.zrange(worker.store.keys.instances("victim"), 0, -1) == [
        victim_instance.encode()
    ]
    assert worker.metrics.dead_lettered.labels("forbidden")._value.get() == len(attacks) + 1
    assert [(e.kind, e.data["reason"]) for e in events.events if e.agent_id == "victim"] == [
        ("joined", "registered")
    ]
    await victim.close()
    await events.wait_until(
        lambda evs: any(e.agent_id == "victim" and e.kind == "left" for e in evs)
    )


async def test_an_agent_registered_without_identity_cannot_be_captured(
    worker: Worker, events: EventCollector, users: dict[str, BrokerUser]
) -> None:
    """No identity is an identity too: a register with a user_id is forbidden, and the
    anonymous owner's commands go on being applied."""
    broker, prefix = worker.settings.broker_url, worker.settings.prefix
    mallory = users["mallory"].name
    async with (
        RawPublisher(broker, prefix) as anonymous,
        RawPublisher(users["mallory"].url, prefix) as as_mallory,
    ):
        await anonymous.send("agent.open.register", command_body("open", "register", "own", 1))
        await events.wait_until(lambda evs: any(e.agent_id == "open" for e in evs))
        await as_mallory.send(
            "agent.open.register", command_body("open", "register", "mine", 1), user_id=mallory
        )
        await anonymous.send("agent.open.deregister", command_body("open", "deregister", "own", 2))
    (refused,) = await parked(worker, 1)
    assert refused.headers[REASON_HEADER] == "forbidden"
    await events.wait_until(lambda evs: any(e.agent_id == "open" and e.kind == "left" for e in evs))
    owner = await worker.redis.hget(worker.store.keys.agent("open"), "owner")
    assert owner == b""


async def test_with_identity_required_a_command_without_user_id_is_dead_lettered(
    settings: Settings, events: EventCollector, users: dict[str, BrokerUser]
) -> None:
    """AGENTROSTER_REQUIRE_IDENTITY: no user_id is refused with its own reason; a command with
    one, sent right after it, is applied."""
    async with create_worker(settings.model_copy(update={"require_identity": True})) as worker:
        broker, prefix, victim = settings.broker_url, settings.prefix, users["victim"].name
        async with (
            RawPublisher(broker, prefix) as anonymous,
            RawPublisher(users["victim"].url, prefix) as identified,
        ):
            await anonymous.send(
                "agent.nobody.register", command_body("nobody", "register", "i", 1)
            )
            await identified.send(
                "agent.somebody.register",
                command_body("somebody", "register", "i", 1),
                user_id=victim,
            )
        (refused,) = await parked(worker, 1)
        assert refused.headers[REASON_HEADER] == "identity-required"
        assert "user_id" in str(refused.headers[DETAIL_HEADER])
        await events.wait_until(lambda evs: any(e.agent_id == "somebody" for e in evs))
        assert "nobody" not in {e.agent_id for e in events.events}
        assert worker.metrics.dead_lettered.labels("identity-required")._value.get() == 1


async def test_quotas_refuse_only_the_command_over_the_limit(
    settings: Settings, events: EventCollector
) -> None:
    """Two agents per identity, two instances per agent: the third of each is dead-lettered as
    quota-exceeded and changes nothing; the others are applied."""
    limited = settings.model_copy(
        update={"max_agents_per_identity": 2, "max_instances_per_agent": 2}
    )
    async with create_worker(limited) as worker:
        async with RawPublisher(settings.broker_url, settings.prefix) as raw:
            for agent in ("q-1", "q-2", "q-3"):
                await raw.send(f"agent.{agent}.register", command_body(agent, "register", "i-1", 1))
            for instance in ("i-2", "i-3"):
                await raw.send("agent.q-1.register", command_body("q-1", "register", instance, 1))
            await raw.send("agent.q-2.register", command_body("q-2", "register", "i-2", 1))
        refused = await parked(worker, 2)
        assert [m.headers[REASON_HEADER] for m in refused] == ["quota-exceeded"] * 2
        assert [m.routing_key for m in refused] == ["agent.q-3.register", "agent.q-1.register"]
        assert "AGENTROSTER_MAX_AGENTS_PER_IDENTITY" in str(refused[0].headers[DETAIL_HEADER])
        assert "AGENTROSTER_MAX_INSTANCES_PER_AGENT" in str(refused[1].headers[DETAIL_HEADER])
        keys = worker.store.keys

        async def instances(agent: str) -> set[bytes]:
            members = await worker.redis.zrange(keys.instances(agent), 0, -1)
            return {m for m in members if isinstance(m, bytes)}

        async def applied() -> None:
            while await instances("q-2") != {b"i-1", b"i-2"}:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(applied(), 30)
        assert await instances("q-1") == {b"i-1", b"i-2"}
        assert not await worker.redis.exists(keys.agent("q-3"))


async def test_a_stuck_instance_is_reported_once(worker: Worker, events: EventCollector) -> None:
    """An instance whose seq went backwards: its ignored commands are counted once as stuck,
    and a command that counts on again is applied."""
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        await raw.send("agent.stuck.register", command_body("stuck", "register", "i", 10))
        await events.wait_until(lambda evs: any(e.agent_id == "stuck" for e in evs))
        for seq in range(1, 6):  # restarted with its counter back at 1
            await raw.send("agent.stuck.heartbeat", command_body("stuck", "heartbeat", "i", seq))
        await raw.send("agent.stuck.heartbeat", command_body("stuck", "heartbeat", "i", 11))

    async def renewed() -> None:
        key = worker.store.keys.instance("stuck", "i")
        while await worker.redis.hget(key, "seq") != b"11":
            await asyncio.sleep(0.02)

    await asyncio.wait_for(renewed(), 30)
    assert worker.metrics.stuck_instances._value.get() == 1
    assert worker.metrics.commands.labels("heartbeat", "duplicate")._value.get() == 5


async def test_commands_through_another_exchange_are_dead_lettered(
    worker: Worker, events: EventCollector
) -> None:
    """The commands queue bound to some other exchange is no way around the commands
    exchange's topic permissions: what comes through it is refused; the rest is applied."""
    names = Topology(worker.settings.prefix)
    side = f"{worker.settings.prefix}.side"
    connection = await aio_pika.connect(worker.settings.broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            side, aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        queue = await channel.declare_queue(names.commands_queue, passive=True)
        await queue.bind(exchange, routing_key="#")
        message = aio_pika.Message(orjson.dumps(command_body("sneaky", "register", "i", 1)))
        await exchange.publish(message, routing_key="agent.sneaky.register", mandatory=True)
        async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
            await raw.send("agent.honest.register", command_body("honest", "register", "i", 1))
        (refused,) = await parked(worker, 1)
        assert refused.headers[REASON_HEADER] == "wrong-exchange"
        await events.wait_until(lambda evs: any(e.agent_id == "honest" for e in evs))
        assert "sneaky" not in {e.agent_id for e in events.events}
        await queue.unbind(exchange, routing_key="#")
        await exchange.delete()
    finally:
        await connection.close()


def ownership_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`agentroster ownership ...` against the test registry's Redis."""
    env = {
        **os.environ,
        "AGENTROSTER_REDIS_URL": settings.redis_url,
        "AGENTROSTER_PREFIX": settings.prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "agentroster", "ownership", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_operator_transfers_and_releases_an_agent(
    worker: Worker, events: EventCollector, users: dict[str, BrokerUser]
) -> None:
    """Transfer: the old owner is refused, the new one applied. Release: the next
    registration binds the agent to its identity."""
    settings = worker.settings
    victim, mallory = users["victim"].name, users["mallory"].name
    async with (
        RawPublisher(users["victim"].url, settings.prefix) as as_victim,
        RawPublisher(users["mallory"].url, settings.prefix) as as_mallory,
    ):
        await as_victim.send(
            "agent.handed.register", command_body("handed", "register", "v", 1), user_id=victim
        )
        await events.wait_until(lambda evs: any(e.agent_id == "handed" for e in evs))
        shown = ownership_cli(settings, "show", "handed")
        assert shown.returncode == 0, shown.stderr
        assert repr(victim) in shown.stdout

        moved = await asyncio.to_thread(
            ownership_cli, settings, "transfer", "handed", "--to", mallory
        )
        assert moved.returncode == 0, moved.stderr
        assert repr(mallory) in moved.stdout
        await as_victim.send(
            "agent.handed.heartbeat", command_body("handed", "heartbeat", "v", 2), user_id=victim
        )
        await as_mallory.send(
            "agent.handed.register", command_body("handed", "register", "m", 1), user_id=mallory
        )
        (refused,) = await parked(worker, 1)
        assert refused.routing_key == "agent.handed.heartbeat"
        assert refused.headers[REASON_HEADER] == "forbidden"

        released = await asyncio.to_thread(ownership_cli, settings, "release", "handed")
        assert released.returncode == 0, released.stderr
        await as_victim.send(
            "agent.handed.register", command_body("handed", "register", "v", 3), user_id=victim
        )

        async def rebound() -> None:
            key = worker.store.keys.agent("handed")
            while await worker.redis.hget(key, "owner") != victim.encode():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(rebound(), 30)
        assert await worker.redis.sismember(worker.store.keys.owned(victim), "handed")
        assert not await worker.redis.sismember(worker.store.keys.owned(mallory), "handed")
    unknown = await asyncio.to_thread(
        ownership_cli, settings, "show", f"nope-{uuid.uuid4().hex[:6]}"
    )
    assert unknown.returncode == 1
    assert "no agent" in unknown.stderr
