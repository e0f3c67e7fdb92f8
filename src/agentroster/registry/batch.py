"""Split a gateway's heartbeat batch (`contracts.gateway.HeartbeatBatch`) into the single
heartbeats it stands for, each prepared or rejected exactly as its own message would be.

The whole message is refused (`Rejected`) only for what concerns all of it: a publisher that
is not a gateway user (`forbidden`, as the principal header is), a body over the message
limit, or a body that is not a batch. Each item is then checked by `prepare`, with the
routing key and identity its single message would have had, so an item the worker cannot
apply is dead-lettered alone, as that single heartbeat, and the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from agentroster.contracts import Topology
from agentroster.contracts.gateway import (
    HEARTBEAT_BATCH_KEY,
    MAX_BATCH_HEARTBEATS,
    PRINCIPAL_HEADER,
)
from agentroster.contracts.ids import is_agent_id
from agentroster.registry.prepare import Limits, Prepared, Rejected, prepare, speaker

_ITEM_FIELDS = frozenset({"principal", "command"})


@dataclass(frozen=True, slots=True)
class BatchPart:
    """One heartbeat of a batch, as the single message it stands for."""

    #: `agent.<agent_id>.heartbeat` (the batch's own key when the item names no valid agent).
    routing_key: str
    #: The heartbeat's JSON: what its dead letter carries.
    body: bytes
    #: The API key principal it speaks for (the principal header of its dead letter).
    principal: str
    prepared: Prepared | None
    rejected: Rejected | None

    @property
    def headers(self) -> dict[str, Any]:
        """The headers its single message would have carried."""
        return {PRINCIPAL_HEADER: self.principal}


def split_batch(body: bytes, user_id: str | None, limits: Limits) -> list[BatchPart]:
    """The parts of a heartbeat batch from `user_id`; `Rejected` when the whole is refused."""
    if user_id not in limits.gateway_users:
        raise Rejected(
            "forbidden",
            "only a gateway user (AGENTROSTER_GATEWAY_USERS) may publish heartbeat batches "
            f"({HEARTBEAT_BATCH_KEY}); "
            f"{'user ' + repr(user_id) if user_id else 'a message without user_id'} is not one",
        )
    if len(body) > limits.max_message_bytes:
        raise Rejected(
            "message-too-large",
            f"the message is {len(body)} bytes, the limit is {limits.max_message_bytes} "
            "(AGENTROSTER_MAX_MESSAGE_BYTES)",
        )
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected("malformed-json", str(exc)[:200]) from None
    items = envelope.get("heartbeats") if isinstance(envelope, dict) else None
    if (
        not isinstance(envelope, dict)
        or set(envelope) != {"heartbeats"}
        or not isinstance(items, list)
        or not 1 <= len(items) <= MAX_BATCH_HEARTBEATS
    ):
        raise Rejected(
            "invalid-schema",
            "a heartbeat batch is an object with only `heartbeats`: a list of 1 to "
            f"{MAX_BATCH_HEARTBEATS} items",
        )
    return [_part(item, user_id, limits) for item in items]


def _part(item: Any, user_id: str | None, limits: Limits) -> BatchPart:
    """One item, prepared as its single heartbeat would be (or rejected with the reason)."""
    valid_item = isinstance(item, dict) and set(item) == _ITEM_FIELDS
    command = item.get("command") if valid_item else item
    principal = item.get("principal") if valid_item else None
    agent_id = command.get("agent_id") if isinstance(command, dict) else None
    routing_key = (
        Topology.command_key(agent_id, "heartbeat")
        if isinstance(agent_id, str) and is_agent_id(agent_id)
        else HEARTBEAT_BATCH_KEY
    )
    body = orjson.dumps(command)
    shown = principal if isinstance(principal, str) else ""
    try:
        if not valid_item:
            raise Rejected(
                "invalid-schema", "a batch item is an object with only `principal` and `command`"
            )
        if routing_key == HEARTBEAT_BATCH_KEY:
            raise Rejected("invalid-schema", "command.agent_id: not a valid agent id")
        identity = speaker(user_id, principal, limits)
        prepared = prepare(routing_key, body, identity, limits)
    except Rejected as rejected:
        return BatchPart(routing_key, body, shown, None, rejected)
    return BatchPart(routing_key, body, shown, prepared, None)
