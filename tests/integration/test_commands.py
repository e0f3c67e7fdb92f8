"""Instances, card changes, replays, bad input and ownership, against the real services.

"No event" is asserted with a barrier: the worker applies commands in queue order and the
relay publishes in revision order, so once a later marker agent's `agent.joined` arrived, any
event the earlier commands could have caused would have arrived before it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from agentroster.client import Announcement, Beacon
from agentroster.contracts import REASON_HEADER, Topology, card_digest
from agentroster.settings import Settings
from agentroster.worker import Worker, create_worker
from tests.helpers import EventCollector, RawPublisher, drain_queue
from tests.integration.agents import a2a_card
from tests.integration.broker_users import Admin, BrokerUser


async def barrier(worker: Worker, events: EventCollector) -> None:
    """Register a marker agent and wait for its joined (see the module docstring)."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    async with Announcement(
        a2a_card(marker), worker.settings.broker_url, ttl_s=60, prefix=worker.settings.prefix
    ):
        await events.wait_until(
            lambda evs: any(e.agent_id == marker and e.kind == "joined" for e in evs)
        )


def kinds_for(events: EventCollector, agent_id: str) -> list[tuple[str, str]]:
    return [(e.kind, e.data["reason"]) for e in events.events if e.agent_id == agent_id]


def announcement(worker: Worker, card: dict[str, Any], **options: Any) -> Announcement:
    options.setdefault("ttl_s", 60)
    return Announcement(card, worker.settings.broker_url, prefix=worker.settings.prefix, **options)


async def test_one_of_two_instances_deregisters_without_event_then_the_last_leaves(
    worker: Worker, events: EventCollector
) -> None:
    """Test 4: an agent with two instances stays available until its last instance goes."""
    card = a2a_card("twin")
    first = await announcement(worker, card).open()
    second = await announcement(worker, card).open()
    assert first.instance_id != second.instance_id
    await events.wait_until(lambda evs: any(e.agent_id == "twin" for e in evs))
    await first.close()
    await barrier(worker, events)
    assert kinds_for(events, "twin") == [("joined", "registered")]
    await second.close()
    await events.wait_until(lambda evs: any(e.agent_id == "twin" and e.kind == "left" for e in evs))
    assert kinds_for(events, "twin") == [("joined", "registered"), ("left", "deregistered")]
    (left,) = [e for e in events.of("left") if e.agent_id == "twin"]
    assert left.data["live_instances"] == 0
    assert left.data["status"] == "offline"


async def test_changed_card_is_one_update_and_unchanged_reregistration_is_none(
    worker: Worker, events: EventCollector
) -> None:
    """Test 5: a new card gives one agent.updated (card-changed); the same card gives none."""
    agent = await announcement(worker, a2a_card("shifty", version="1")).open()
    await agent.register()  # unchanged
    await barrier(worker, events)
    assert kinds_for(events, "shifty") == [("joined", "registered")]
    agent.card = a2a_card("shifty", version="2")
    agent.digest = card_digest(agent.card)
    await agent.register()
    await events.wait_until(
        lambda evs: any(e.agent_id == "shifty" and e.kind == "updated" for e in evs)
    )
    await agent.register()  # unchanged again
    await barrier(worker, events)
    assert kinds_for(events, "shifty") == [("joined", "registered"), ("updated", "card-changed")]
    (updated,) = [e for e in events.of("updated") if e.agent_id == "shifty"]
    assert updated.data["card"]["version"] == "2"
    await agent.close()


async def test_replayed_and_reordered_messages_change_nothing(
    worker: Worker, events: EventCollector
) -> None:
    """Test 8: messages with a seq not above the last applied one are ignored."""
    now = datetime.now(UTC).isoformat()
    card = a2a_card("replayed")
    base = {"agent_id": "replayed", "instance_id": "inst-1", "sent_at": now}
    register = {**base, "seq": 5, "ttl_s": 60, "card": card}
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        await raw.send("agent.replayed.register", register)
        await events.wait_until(lambda evs: any(e.agent_id == "replayed" for e in evs))
        lease_key = worker.store.keys.instance("replayed", "inst-1")
        deadline_before = await worker.redis.hget(lease_key, "deadline")
        # the same message again, a late deregister, a late heartbeat, a late changed card
        await raw.send("agent.replayed.register", register)
        await raw.send("agent.replayed.deregister", {**base, "seq": 4, "reason": "late"})
        await raw.send(
            "agent.replayed.heartbeat",
            {**base, "seq": 3, "ttl_s": 60, "card_digest": card_digest(card)},
        )
        await raw.send(
            "agent.replayed.register",
            {**register, "seq": 2, "card": a2a_card("replayed", version="9")},
        )
        await barrier(worker, events)
    assert kinds_for(events, "replayed") == [("joined", "registered")]
    assert await worker.redis.hget(lease_key, "deadline") == deadline_before
    agent = await worker.redis.hgetall(worker.store.keys.agent("replayed"))
    assert agent[b"status"] == b"live"
    assert b'"version":"1.0.0"' in agent[b"card"]
    assert worker.metrics.commands.labels("register", "duplicate")._value.get() == 2
    assert worker.metrics.commands.labels("deregister", "duplicate")._value.get() == 1
    assert worker.metrics.commands.labels("heartbeat", "duplicate")._value.get() == 1


async def test_bad_input_is_dead_lettered_with_its_reason_and_good_input_goes_on(
    worker: Worker, events: EventCollector
) -> None:
    """Test 9: each bad message lands in the dead-letter queue with its reason."""
    now = datetime.now(UTC).isoformat()
    good = {"instance_id": "i-1", "seq": 1, "ttl_s": 60, "sent_at": now}
    bad: dict[str, tuple[str, bytes | dict[str, Any]]] = {
        "malformed-json": ("agent.broken.register", b'{"agent_id": "broken", '),
        "invalid-schema": ("agent.noschema.register", {"agent_id": "noschema", "seq": 1}),
        "card-too-large": (
            "agent.huge.register",
            {**good, "agent_id": "huge", "card": {"name": "huge", "blob": "x" * 70_000}},
        ),
        "unknown-kind": ("agent.odd.explode", {**good, "agent_id": "odd", "card": a2a_card("odd")}),
        "agent-id-mismatch": (
            "agent.honest.register",
            {**good, "agent_id": "liar", "card": a2a_card("liar")},
        ),
    }
    bad["invalid-schema-agent-id"] = (
        "agent.BadId.register",
        {**good, "agent_id": "BadId", "card": a2a_card("BadId")},
    )
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        for n, (routing_key, body) in enumerate(bad.values()):
            await raw.send(routing_key, body)
            agent_id = f"good-{n}"
            await raw.send(
                f"agent.{agent_id}.register",
                {**good, "agent_id": agent_id, "card": a2a_card(agent_id)},
            )
    await events.wait_until(lambda evs: len(evs) >= len(bad))
    assert sorted(e.agent_id for e in events.events) == [f"good-{n}" for n in range(len(bad))]

    parked = await drain_queue(
        worker.settings.broker_url, Topology(worker.settings.prefix).dead_letter_queue, len(bad)
    )
    by_key = {m.routing_key: m for m in parked}
    for reason, (routing_key, body) in bad.items():
        message = by_key[routing_key]
        assert message.headers[REASON_HEADER] == reason.removesuffix("-agent-id")
        sent = body if isinstance(body, bytes) else None
        if sent is not None:
            assert message.body == sent  # kept exactly as it came
    reasons = {r.removesuffix("-agent-id") for r in bad}
    counted = sum(worker.metrics.dead_lettered.labels(r)._value.get() for r in reasons)
    assert counted == len(bad)


@pytest.fixture
def broker_users(worker: Worker, admin: Admin) -> list[BrokerUser]:
    """Two agent users for every agent id, made by `agentroster broker grant-agent`."""
    prefix = worker.settings.prefix
    return [
        admin.grant("grant-agent", who, prefix, "--agents", "*") for who in ("alice", "mallory")
    ]


async def test_a_second_broker_user_cannot_speak_for_an_owned_agent(
    worker: Worker, events: EventCollector, broker_users: list[BrokerUser]
) -> None:
    """Test 10: commands with another user_id for an owned agent are dead-lettered forbidden."""
    alice, mallory = (user.name for user in broker_users)
    alice_url, mallory_url = (user.url for user in broker_users)
    owner = Beacon(
        a2a_card("owned"),
        alice_url,
        prefix=worker.settings.prefix,
        user_id=alice,
        handle_signals=False,
        interval_s=60,
    )
    await owner.open()
    await events.wait_until(lambda evs: any(e.agent_id == "owned" for e in evs))
    intruder = Announcement(
        a2a_card("owned", version="evil"),
        mallory_url,
        prefix=worker.settings.prefix,
        user_id=mallory,
        ttl_s=60,
    )
    await intruder.open()  # register: forbidden
    await intruder.renew()  # heartbeat: forbidden
    await intruder.close()  # deregister: forbidden
    parked = await drain_queue(
        worker.settings.broker_url, Topology(worker.settings.prefix).dead_letter_queue, 3
    )
    assert sorted(m.routing_key or "" for m in parked) == sorted(
        f"agent.owned.{kind}" for kind in ("register", "heartbeat", "deregister")
    )
    assert {m.headers[REASON_HEADER] for m in parked} == {"forbidden"}
    assert {m.headers["x-agentroster-user-id"] for m in parked} == {mallory}
    await barrier(worker, events)
    assert kinds_for(events, "owned") == [("joined", "registered")]
    await owner.close()
    await events.wait_until(
        lambda evs: any(e.agent_id == "owned" and e.kind == "left" for e in evs)
    )


async def test_queue_agent_scales_to_zero_wakes_and_finally_leaves(
    worker: Worker, events: EventCollector
) -> None:
    """An agent with idle_ttl_s goes idle when its last instance ends, wakes, then expires."""
    card = a2a_card("queued")
    first = await announcement(worker, card, idle_ttl_s=0.5).open()
    await events.wait_until(lambda evs: any(e.agent_id == "queued" for e in evs))
    await first.close()
    await events.wait_until(lambda evs: len(kinds_for(events, "queued")) >= 2)
    second = await announcement(worker, card, idle_ttl_s=0.5).open()
    await events.wait_until(lambda evs: len(kinds_for(events, "queued")) >= 3)
    await second.close()
    await events.wait_until(lambda evs: len(kinds_for(events, "queued")) >= 5)
    assert kinds_for(events, "queued") == [
        ("joined", "registered"),
        ("updated", "scaled-to-zero"),
        ("updated", "woke"),
        ("updated", "scaled-to-zero"),
        ("left", "expired"),
    ]
    statuses = [e.data["status"] for e in events.events if e.agent_id == "queued"]
    assert statuses == ["live", "idle", "live", "idle", "offline"]


async def test_offline_agent_stays_readable_for_the_retention_then_is_deleted(
    settings: Settings, events: EventCollector
) -> None:
    """An offline agent keeps its last card until the retention ends, then its keys go and
    `agent.deleted` (reason `retention`) tells the subscribers."""
    async with create_worker(settings.model_copy(update={"retention_s": 0.5})) as worker:
        agent = await announcement(worker, a2a_card("fleeting")).open()
        await events.wait_until(lambda evs: any(e.agent_id == "fleeting" for e in evs))
        await agent.close()
        await events.wait_until(lambda evs: len(kinds_for(events, "fleeting")) >= 2)
        keys = worker.store.keys
        assert await worker.redis.hget(keys.agent("fleeting"), "status") == b"offline"
        assert await worker.redis.hget(keys.agent("fleeting"), "card") is not None

        async def deleted() -> None:
            while await worker.redis.exists(keys.agent("fleeting")):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(deleted(), 30)
        assert await worker.redis.zscore(keys.agents, "fleeting") is None
        assert await worker.redis.zscore(keys.retain, "fleeting") is None
        await events.wait_until(lambda evs: len(kinds_for(events, "fleeting")) >= 3)
        gone = [e for e in events.events if e.agent_id == "fleeting"][-1]
        assert (gone.kind, gone.data["reason"], gone.routing_key) == (
            "deleted",
            "retention",
            "agent.deleted.fleeting",
        )


async def test_a_poison_message_is_parked_after_the_delivery_limit(
    worker: Worker, events: EventCollector
) -> None:
    """A command that fails inside Redis is redelivered until the quorum queue's delivery limit
    dead-letters it; the commands around it in the same batches are applied."""
    # a key of the wrong type where the agent's hash belongs: every script touching it fails
    await worker.redis.set(worker.store.keys.agent("poison"), "not a hash")
    now = datetime.now(UTC).isoformat()
    base = {"instance_id": "i", "seq": 1, "ttl_s": 60, "sent_at": now}
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        await raw.send(
            "agent.before.register", {**base, "agent_id": "before", "card": a2a_card("before")}
        )
        await raw.send(
            "agent.poison.register", {**base, "agent_id": "poison", "card": a2a_card("poison")}
        )
        await raw.send(
            "agent.after.register", {**base, "agent_id": "after", "card": a2a_card("after")}
        )
    await events.wait_until(lambda evs: {"before", "after"} <= {e.agent_id for e in evs})
    (parked,) = await drain_queue(
        worker.settings.broker_url, Topology(worker.settings.prefix).dead_letter_queue, 1
    )
    assert parked.routing_key == "agent.poison.register"
    assert parked.headers["x-first-death-reason"] == "delivery_limit"
    assert "poison" not in {e.agent_id for e in events.events}
