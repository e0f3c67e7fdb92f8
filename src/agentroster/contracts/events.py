"""Events the registry publishes: agent.joined, agent.updated, agent.left, agent.deleted.

CloudEvents 1.0 in binary mode: the body is the event data below, the attributes travel as
AMQP headers prefixed `cloudEvents_` (`cloudEvents_id` is also the AMQP `message_id`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from agentroster.contracts.cards import AgentView
from agentroster.contracts.ids import Int64

# Named aliases: the JSON schemas give each its own definition (`$defs`, and a component schema
# in the AsyncAPI documents), so a generated client names the type after it.
AgentStatus = TypeAliasType(
    "AgentStatus",
    Annotated[
        Literal["live", "idle", "offline"],
        Field(
            description="`live`: at least one instance holds a lease. `idle`: none does, but the "
            "agent registered an `idle_ttl_s` and stays reachable through its queue until that "
            "runs out. `offline`: neither."
        ),
    ],
)
ChangeReason = TypeAliasType(
    "ChangeReason",
    Annotated[
        Literal[
            "registered",
            "card-changed",
            "scaled-to-zero",
            "woke",
            "deregistered",
            "expired",
            "recovered",
            "retention",
            "verified",
            "signature",
        ],
        Field(
            description="`registered`, `recovered` (back after the registry lost its data), "
            "`card-changed`, `scaled-to-zero` (now idle), `woke` (idle, now live again), "
            "`deregistered`, `expired` (its last lease, or its idle TTL, ran out), `retention` "
            "(agent.deleted: offline for the retention period, its record is deleted), `verified` "
            "(agent.updated: the check of its well-known card changed `verified`), `signature` "
            "(agent.updated: the check of its signed card's signatures changed `signature`)."
        ),
    ],
)
SignatureStatus = TypeAliasType(
    "SignatureStatus",
    Annotated[
        Literal["valid", "invalid", "unsigned"],
        Field(
            description="The agent's card signatures (A2A `signatures`, JWS over the JCS form "
            "of the card): `valid` (one verifies with a trusted key), `invalid` (none does, or "
            "none could be checked), `unsigned` (the card has none)."
        ),
    ],
)


def _absent_when_unknown(schema: dict[str, Any]) -> None:
    """Document a field the registry leaves out, rather than sends as null, when unknown.

    A nullable enum does not generate in every language (specification/_portable.py), and
    the outbox never writes null for it (store/outbox.py).
    """
    options = schema.pop("anyOf")
    schema.pop("default", None)
    schema.update(next(option for option in options if option.get("type") != "null"))


#: The same types by the names the rest of the code imports.
Status = AgentStatus
Reason = ChangeReason

CE_PREFIX = "cloudEvents_"
CE_SPECVERSION = "1.0"
#: Every CloudEvents attribute header an event carries.
CE_HEADERS = (
    "cloudEvents_specversion",
    "cloudEvents_id",
    "cloudEvents_type",
    "cloudEvents_source",
    "cloudEvents_subject",
    "cloudEvents_time",
    "cloudEvents_revision",
)


def cloudevents_headers(
    *, event_id: str, event_type: str, source: str, subject: str, time: datetime, revision: int
) -> dict[str, str]:
    """One event's CloudEvents attributes as AMQP headers (binary mode), in `CE_HEADERS` order;
    `time` is written in UTC to the millisecond. Every attribute is a string: the extension
    `revision` too, in decimal, as CloudEvents' `Integer` (32-bit) cannot hold a revision that
    continues from the clock in ms after Redis lost its data."""
    values: tuple[str, ...] = (
        CE_SPECVERSION,
        event_id,
        event_type,
        source,
        subject,
        time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        str(revision),
    )
    return dict(zip(CE_HEADERS, values, strict=True))


class AgentEvent(BaseModel):
    """The data of agent.joined / agent.updated / agent.left / agent.deleted."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str
    revision: Int64 = Field(
        description="Global registry revision of this change; strictly increasing. After "
        "Redis lost the registry's data it goes on from the Redis clock in ms, above every "
        "earlier revision."
    )
    status: AgentStatus = Field(description="The agent's status after the change.")
    live_instances: int = Field(ge=0)
    reason: ChangeReason = Field(
        description="Why the event was published. An agent flapping past the registry's limit "
        "gets, per flap window, one event with its final state instead of every transition."
    )
    agent: AgentView = Field(description="Name, endpoints, skills, tags, labels.")
    card: dict[str, Any] | None = Field(
        default=None, description="The native card, on joined and updated."
    )
    verified: bool | None = Field(
        default=None,
        description="Whether the agent's well-known card, fetched by the registry, matched the "
        "registered one; absent or null while not checked (or after the card changed).",
    )
    signature: SignatureStatus | None = Field(
        default=None,
        description="The check of the card's signatures; absent while a signed card is not "
        "checked yet.",
        json_schema_extra=_absent_when_unknown,
    )
