"""Splitting a gateway heartbeat batch (registry/batch.py): refused whole only for what
concerns all of it; otherwise each item prepared, or rejected, as its single heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from agentroster.contracts.gateway import HEARTBEAT_BATCH_KEY, MAX_BATCH_HEARTBEATS
from agentroster.registry.batch import split_batch
from agentroster.registry.prepare import Limits, Rejected

GATEWAY = "registry"
LIMITS = Limits(gateway_users=frozenset({GATEWAY}), max_message_bytes=64 * 1024)


def command(agent_id: Any = "weather", **more: Any) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "instance_id": "i1",
        "seq": 3,
        "sent_at": datetime.now(UTC).isoformat(),
        "ttl_s": 30.0,
        "card_digest": "",
    } | more


def batch(*items: Any) -> bytes:
    return orjson.dumps({"heartbeats": list(items)})


@pytest.mark.parametrize(
    ("body", "user", "reason"),
    [
        (batch({"principal": "p", "command": command()}), "mallory", "forbidden"),
        (batch({"principal": "p", "command": command()}), None, "forbidden"),
        (b"x" * (64 * 1024 + 1), GATEWAY, "message-too-large"),
        (b"{", GATEWAY, "malformed-json"),
        (b"[]", GATEWAY, "invalid-schema"),
        (orjson.dumps({"heartbeats": []}), GATEWAY, "invalid-schema"),
        (orjson.dumps({"heartbeats": [], "more": 1}), GATEWAY, "invalid-schema"),
        (orjson.dumps({"heartbeats": [1] * (MAX_BATCH_HEARTBEATS + 1)}), GATEWAY, "invalid-schema"),
    ],
)
def test_what_concerns_the_whole_message_refuses_it_whole(
    body: bytes, user: str | None, reason: str
) -> None:
    """Not a gateway user, too large, not a batch: the message is dead-lettered as it came."""
    with pytest.raises(Rejected) as refused:
        split_batch(body, user, LIMITS)
    assert refused.value.reason == reason


def test_each_item_is_prepared_or_rejected_as_its_single_heartbeat() -> None:
    """Valid items carry their principal's identity; a bad item is rejected alone, with the
    routing key and body its single message would have had."""
    parts = split_batch(
        batch(
            {"principal": "team-a", "command": command("weather")},
            {"principal": "team-b", "command": command("rain", seq=0)},
            {"principal": "", "command": command("sun")},
            {"principal": "p", "command": command("Not An Id")},
            {"principal": 7, "command": command("fog")},
            {"principal": "p"},
            "junk",
        ),
        GATEWAY,
        LIMITS,
    )
    weather, rain, sun, bad_id, bad_principal, no_command, junk = parts
    assert weather.prepared is not None
    assert weather.prepared.user_id == "key:team-a"
    assert weather.routing_key == "agent.weather.heartbeat"
    assert weather.headers == {"x-agentroster-principal": "team-a"}
    assert sun.prepared is not None
    assert sun.prepared.user_id == ""
    assert rain.rejected is not None
    assert rain.rejected.reason == "invalid-schema"
    assert rain.routing_key == "agent.rain.heartbeat"
    assert orjson.loads(rain.body)["seq"] == 0
    assert rain.principal == "team-b"
    for part in (bad_id, no_command, junk):
        assert part.rejected is not None
        assert part.rejected.reason == "invalid-schema"
        assert part.routing_key == HEARTBEAT_BATCH_KEY
    assert bad_principal.rejected is not None
    assert bad_principal.rejected.reason == "invalid-schema"


def test_identity_required_applies_to_each_item() -> None:
    """With identity mandatory, an item without a principal is refused alone."""
    limits = Limits(gateway_users=frozenset({GATEWAY}), require_identity=True)
    with_one, without = split_batch(
        batch(
            {"principal": "team-a", "command": command("weather")},
            {"principal": "", "command": command("rain")},
        ),
        GATEWAY,
        limits,
    )
    assert with_one.prepared is not None
    assert without.rejected is not None
    assert without.rejected.reason == "identity-required"
