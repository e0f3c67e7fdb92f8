"""Events the registry publishes: agent.joined, agent.updated, agent.left.

CloudEvents 1.0 in binary mode: the body is the event data below, the attributes travel as
AMQP headers prefixed `cloudEvents_` (`cloudEvents_id` is also the AMQP `message_id`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentroster.contracts.cards import AgentView

Status = Literal["live", "idle", "offline"]
Reason = Literal[
    "registered", "card-changed", "scaled-to-zero", "woke", "deregistered", "expired", "recovered"
]

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


class AgentEvent(BaseModel):
    """The data of agent.joined / agent.updated / agent.left."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str
    revision: int = Field(
        description="Global registry revision of this change; strictly increasing."
    )
    status: Status = Field(description="The agent's status after the change.")
    live_instances: int = Field(ge=0)
    reason: Reason
    agent: AgentView = Field(description="Name, endpoints, skills, tags, labels.")
    card: dict[str, Any] | None = Field(
        default=None, description="The native card, on joined and updated."
    )
