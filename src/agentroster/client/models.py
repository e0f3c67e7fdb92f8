"""The discovery API's answers as the client reads them: tolerant readers of the wire format.

These are the client's own models, not the API's: a field the API adds later is ignored
(`extra="ignore"`), a field it stops sending falls back to a default, and open sets (a status,
a card format, a transport) are plain strings, so an older client keeps working against a newer
registry. Only what the client cannot do without (an agent's id and status, a page's revision)
is required.

    AgentPage       one page of `GET /v1/agents`: revision, agents, next_cursor
    Agent           one listed agent: status, `LeaseInfo`, live instances, and its `AgentInfo`
    └── DetailedAgent  `GET /v1/agents/{agent_id}`: also each live `InstanceInfo`
    AgentInfo       what the card says: name, endpoints (`EndpointInfo`), skills (`SkillInfo`)

The names differ from the API's response models (`api/models.py`: `AgentSummary`,
`AgentDetail`, `AgentList`...) and from the store's records (`store/reader.py`: `Stored*`): one
name, one meaning, one layer.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Agent",
    "AgentInfo",
    "AgentPage",
    "DetailedAgent",
    "EndpointInfo",
    "InstanceInfo",
    "LeaseInfo",
    "SkillInfo",
]


class _Reader(BaseModel):
    """Base of every response model: unknown fields are ignored, never an error."""

    model_config = ConfigDict(extra="ignore")


class EndpointInfo(_Reader):
    """One way to reach an agent: an HTTP `url`, or an AMQP `exchange` and `routing_key`."""

    transport: str = Field(description="`http`, `amqp`, or another transport.")
    protocol: str = Field(description="`a2a`, `mcp`, `acp`, `custom`, ...")
    protocol_version: str | None = None
    binding: str | None = Field(
        default=None, description="`JSONRPC`, `GRPC`, `HTTP+JSON`, MCP's `streamable-http`, ..."
    )
    url: str | None = None
    exchange: str | None = Field(
        default=None, description="AMQP exchange; empty routes to the queue named by the key."
    )
    routing_key: str | None = None

    @property
    def address(self) -> str:
        """Where to send to, in one string: the url, `exchange/routing_key`, or the queue."""
        if self.url:
            return self.url
        if self.exchange:
            return f"{self.exchange}/{self.routing_key or ''}"
        return self.routing_key or ""


class SkillInfo(_Reader):
    """One skill of an agent, as discovery lists it."""

    id: str
    name: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)


class AgentInfo(_Reader):
    """What discovery knows of an agent's card: name, endpoints, skills, tags, labels."""

    name: str = ""
    description: str = ""
    version: str = ""
    card_format: str = Field(
        default="",
        description="`a2a/1.0`, `a2a/0.3`, `mcp/server`, `acp/manifest` or `generic`.",
    )
    endpoints: list[EndpointInfo] = Field(default_factory=list)
    skills: list[SkillInfo] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="Union of the skills' tags.")
    labels: dict[str, str] = Field(default_factory=dict)
    no_endpoint_reason: str | None = Field(
        default=None,
        description="Why the agent has no network endpoint (e.g. a local-only MCP server).",
    )


class LeaseInfo(_Reader):
    """How the agent's instances keep their leases (seconds)."""

    ttl_s: float | None = Field(default=None, description="Lease length each renewal grants.")
    interval_s: float | None = Field(default=None, description="Heartbeat interval, if set.")
    idle_ttl_s: float | None = Field(
        default=None, description="How long the agent stays `idle` after its last lease ended."
    )


class InstanceInfo(_Reader):
    """One live instance of an agent."""

    instance_id: str
    lease_deadline: datetime | None = Field(
        default=None, description="When the lease expires unless renewed."
    )
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class Agent(_Reader):
    """One agent as discovery lists it.

    `status` is `live` (an instance holds a lease), `idle` (scaled to zero, still reachable
    through its queue) or `offline`; a status a newer registry introduces is kept as it is.
    """

    agent_id: str
    status: str
    revision: int = Field(default=0, description="Registry revision of the agent's last change.")
    card_digest: str = Field(default="", description="Digest of the registered card (its ETag).")
    live_instances: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    lease: LeaseInfo = Field(default_factory=LeaseInfo)
    verified: bool | None = Field(
        default=None,
        description="Whether the registry fetched the agent's well-known card and it matched; "
        "None while not checked.",
    )
    signature: str | None = Field(
        default=None,
        description="The check of the card's signatures: `valid`, `invalid` or `unsigned`; "
        "None while a signed card is not checked yet (or from an older registry).",
    )
    agent: AgentInfo = Field(
        default_factory=AgentInfo, description="Name, description, endpoints, skills, labels."
    )

    @property
    def name(self) -> str:
        """The agent's name, from its card."""
        return self.agent.name

    @property
    def endpoints(self) -> list[EndpointInfo]:
        """The ways to reach the agent, from its card (or as registered explicitly)."""
        return self.agent.endpoints


class DetailedAgent(Agent):
    """One agent read on its own: the listed fields, its live instances, the registry revision."""

    instances: list[InstanceInfo] = Field(
        default_factory=list, description="Live instances, soonest lease deadline first."
    )
    registry_revision: int | None = Field(
        default=None, description="Registry revision at the moment of the read."
    )


class AgentPage(_Reader):
    """One page of discovery, and the revision to follow events from (list + watch)."""

    revision: int = Field(description="The registry revision the page is at least as new as.")
    agents: list[Agent] = Field(default_factory=list)
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; None on the last page."
    )
