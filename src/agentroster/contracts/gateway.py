"""How the API speaks for an API key on the broker (design invariant 6, HTTP writes).

The API publishes an HTTP agent's commands with its own broker user as `user_id` (RabbitMQ
validates it) and names the key's principal in the `PRINCIPAL_HEADER` header. The worker takes
that header only from a gateway user (`AGENTROSTER_GATEWAY_USERS`, by default the registry's own
broker user); from anyone else a command carrying it is dead-lettered as `forbidden`. The
identity the command gets is `IDENTITY_PREFIX + principal` (an empty header: no identity), a
namespace no broker user is in by accident, so a key can never speak for a broker user nor a
broker user for a key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentroster.contracts.commands import Heartbeat

#: The header naming the API key principal a gateway command speaks for.
PRINCIPAL_HEADER = "x-agentroster-principal"
#: Identities of API key principals start with this; broker users' identities are their names.
IDENTITY_PREFIX = "key:"


def key_identity(principal: str) -> str:
    """The identity of an API key principal ("" stays "": no identity)."""
    return IDENTITY_PREFIX + principal if principal else ""


#: RabbitMQ's direct reply-to pseudo-queue. The gateway consumes it (no-ack) on the channel it
#: publishes on and sets it as `reply_to`; the broker rewrites that to a name starting with
#: `REPLY_TO_PREFIX`, which routes back to that channel only.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
#: The worker answers only `reply_to` names starting with this, and only for gateway users:
#: a reply can never be made to land in an ordinary queue.
REPLY_TO_PREFIX = DIRECT_REPLY_TO + "."


class CommandReply(BaseModel):
    """The worker's answer to a gateway command that asked for one (HTTP `?wait=true`).

    Sent to the command's `reply_to` (direct reply-to) with its `correlation_id`, after the
    command's batch committed (`applied`: `reason` is the store's outcome, e.g. `applied`,
    `duplicate`, `unknown-agent`, `stale-card`) or after it was dead-lettered (`rejected`:
    `reason` is the dead-letter reason).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Literal["applied", "rejected"]
    reason: str = Field(max_length=64)
    message: str = Field(default="", max_length=1024)


#: Routing key of a gateway's heartbeat batch. It matches the commands queue's binding
#: `agent.*.*`, so the topology is unchanged, and `_gateway` is no agent id (a DNS label cannot
#: start with `_`), so no agent's topic permission covers it.
HEARTBEAT_BATCH_KEY = "agent._gateway.heartbeats"
#: The AMQP `type` of a heartbeat batch.
HEARTBEAT_BATCH_TYPE = "heartbeats"
#: Most heartbeats one batch may carry.
MAX_BATCH_HEARTBEATS = 1000


class BatchedHeartbeat(BaseModel):
    """One HTTP heartbeat of a batch: the API key principal it speaks for, and the command."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: str = Field(
        max_length=128,
        description="The API key principal, as the `x-agentroster-principal` header names it "
        "on a single command (empty: no identity).",
    )
    command: Heartbeat = Field(description="The heartbeat, exactly as it would be published.")


class HeartbeatBatch(BaseModel):
    """Heartbeats of HTTP agents the API's write gateway publishes as one message.

    Gateway-only: the registry applies it only from a gateway user
    (`AGENTROSTER_GATEWAY_USERS`); from anyone else it is dead-lettered `forbidden`. Each item
    is applied exactly as the single heartbeat would be, with its own principal's identity,
    and an item the registry refuses is dead-lettered alone, as that single heartbeat (routing
    key `agent.<agent_id>.heartbeat`, the principal header), with its reason.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    heartbeats: list[BatchedHeartbeat] = Field(min_length=1, max_length=MAX_BATCH_HEARTBEATS)
