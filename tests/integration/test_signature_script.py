"""apply.lua and signature.lua on real Redis: an unsigned card is `unsigned` with its
registration (index term, the joined event, no extra event); a signed one is null until a check
is recorded for the state it was made for, each change of value is one revision and one
`agent.updated` (reason signature), the index sets follow it, a new card resets it, and flap
damping delivers a held-back signature as the final state."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agentroster.registry.prepare import Prepared
from agentroster.registry.terms import SIGNATURE_TERMS
from agentroster.store.redis_store import RedisStore
from tests.integration.leases import deregister, outbox_events, register


def signed(agent_id: str, **more: Any) -> Prepared:
    """A registration of a signed card (the worker checks it after the batch)."""
    return replace(register(agent_id, **more), signature="")


def unsigned(agent_id: str, **more: Any) -> Prepared:
    """A registration of a card without signatures, as `prepare` makes it."""
    return replace(register(agent_id, **more), signature="unsigned")


async def members(store: RedisStore) -> dict[str, set[Any]]:
    """Who is in each signature index set."""
    found: dict[str, set[Any]] = {}
    for term in SIGNATURE_TERMS:
        found[term] = set(await store.redis.zrange(store.keys.index(term), 0, -1))
    return found


async def field(store: RedisStore, agent_id: str, name: str) -> bytes | None:
    """One field of the agent's hash."""
    value = await store.redis.hget(store.keys.agent(agent_id), name)
    assert value is None or isinstance(value, bytes)
    return value


async def test_unsigned_recorded_with_the_registration(store: RedisStore) -> None:
    """`unsigned` at once: field, index term and the joined event; nothing more published."""
    await store.apply([unsigned("plain")])
    assert await field(store, "plain", "signature") == b"unsigned"
    assert (await members(store))["signature:unsigned"] == {b"plain"}
    terms = await field(store, "plain", "terms")
    assert terms is not None
    assert terms.endswith(b"signature:unsigned")
    events = await outbox_events(store)
    assert [(e.kind, e.reason, e.signature) for e in events] == [
        ("joined", "registered", "unsigned")
    ]
    assert b'"signature":"unsigned"' in events[0].body()


async def test_signed_recorded_with_one_event_per_change(store: RedisStore) -> None:
    """null, then valid (one event), valid again (none), invalid (one): the index set follows
    and the event carries the card."""
    command = signed("sig")
    await store.apply([command])
    assert await field(store, "sig", "signature") is None
    assert await store.card_to_check("sig", command.state_digest) == command.card
    first = await store.record_signature("sig", command.state_digest, "valid")
    assert (first.recorded, first.changed) == (True, True)
    assert await store.card_to_check("sig", command.state_digest) is None
    again = await store.record_signature("sig", command.state_digest, "valid")
    assert (again.recorded, again.changed) == (True, False)
    assert (await members(store))["signature:valid"] == {b"sig"}
    await store.record_signature("sig", command.state_digest, "invalid")
    assert await members(store) == {
        "signature:valid": set(),
        "signature:invalid": {b"sig"},
        "signature:unsigned": set(),
    }
    events = await outbox_events(store)
    assert [(e.kind, e.reason, e.signature) for e in events] == [
        ("joined", "registered", None),
        ("updated", "signature", "valid"),
        ("updated", "signature", "invalid"),
    ]
    assert events[1].card is not None
    terms = await field(store, "sig", "terms")
    assert terms is not None
    assert terms.count(b"signature:") == 1


async def test_not_recorded_for_another_state(store: RedisStore) -> None:
    """A check of a card the agent no longer has, of an unknown or an offline agent changes
    nothing; a new unsigned card resets the signature to `unsigned` and its index term."""
    old, new = signed("moving", version="1"), unsigned("moving", seq=2, version="2")
    await store.apply([old])
    await store.record_signature("moving", old.state_digest, "valid")
    await store.apply([new])
    assert await field(store, "moving", "signature") == b"unsigned"
    assert await field(store, "moving", "gdigest") is None
    assert await members(store) == {
        "signature:valid": set(),
        "signature:invalid": set(),
        "signature:unsigned": {b"moving"},
    }
    late = await store.record_signature("moving", old.state_digest, "valid")
    assert not late.recorded
    assert not (await store.record_signature("nobody", old.state_digest, "valid")).recorded
    await store.apply([deregister("moving", seq=3)])
    assert not (await store.record_signature("moving", new.state_digest, "valid")).recorded
    events = await outbox_events(store)
    assert [(e.reason, e.signature) for e in events] == [
        ("registered", None),
        ("signature", "valid"),
        ("card-changed", "unsigned"),
        ("deregistered", "unsigned"),
    ]


async def test_damped_signature_is_delivered_at_the_window_end(store: RedisStore) -> None:
    """A flapping agent's signature change is held back, then delivered as its final state."""
    damped = RedisStore(store.redis, store.keys.prefix, flap_window_ms=60_000, flap_max_events=1)
    command = signed("flappy")
    await damped.apply([command])
    held = await damped.record_signature("flappy", command.state_digest, "valid")
    assert held.recorded
    assert held.damped == ("flappy",)
    assert len(await outbox_events(damped)) == 1
    await damped.redis.zadd(damped.keys.damped, {"flappy": 1})
    await damped.redis.delete(damped.keys.flap("flappy"))
    await damped.reap()
    final = (await outbox_events(damped))[-1]
    assert (final.kind, final.reason, final.signature) == ("updated", "signature", "valid")
