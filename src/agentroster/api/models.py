"""Response models of the read API, built from what `RegistryReader` returns.

Times are RFC 3339 (UTC), read from the Redis clock; durations are seconds. `revision` on an
agent is the global revision of its last change; the list's `revision` is the global revision
the page shows exactly (see `store/reader.py` for list + watch).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.config import JsonDict

from agentroster.contracts import AgentView, Status
from agentroster.contracts.events import SignatureStatus
from agentroster.store.reader import StoredAgent, StoredAgentDetail, StoredInstance

log = logging.getLogger(__name__)

_VIEW_EXAMPLE: JsonDict = {
    "name": "Weather",
    "description": "Forecasts by city",
    "version": "1.2.0",
    "card_format": "a2a/1.0",
    "endpoints": [
        {
            "transport": "http",
            "protocol": "a2a",
            "protocol_version": "1.0",
            "binding": "JSONRPC",
            "url": "https://weather.example/a2a",
            "exchange": None,
            "routing_key": None,
        }
    ],
    "skills": [{"id": "forecast", "name": "Forecast", "description": "", "tags": ["weather"]}],
    "tags": ["weather"],
    "labels": {"team": "geo"},
}
_SUMMARY_EXAMPLE: JsonDict = {
    "agent_id": "weather",
    "status": "live",
    "revision": 41,
    "card_digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "live_instances": 2,
    "first_seen": "2025-05-01T09:00:00Z",
    "last_seen": "2025-05-01T09:30:10Z",
    "lease": {"ttl_s": 30.0, "interval_s": 10.0, "idle_ttl_s": None},
    "verified": True,
    "signature": "valid",
    "agent": _VIEW_EXAMPLE,
}
_INSTANCE_EXAMPLE: JsonDict = {
    "instance_id": "weather-7d9f-5c2a1b3e",
    "lease_deadline": "2025-05-01T09:30:40Z",
    "first_seen": "2025-05-01T09:00:00Z",
    "last_seen": "2025-05-01T09:30:10Z",
}


class Lease(BaseModel):
    """How the agent's instances keep their leases."""

    ttl_s: float = Field(description="Lease length each renewal grants.", examples=[30.0])
    interval_s: float | None = Field(
        description="Heartbeat interval of a persistent agent; null when not set.",
        examples=[10.0],
    )
    idle_ttl_s: float | None = Field(
        description="How long a queue-addressed agent stays `idle` after its last lease "
        "expired; null when it goes offline at once.",
        examples=[None],
    )


class Instance(BaseModel):
    """One live instance of an agent."""

    instance_id: str = Field(examples=["weather-7d9f-5c2a1b3e"])
    lease_deadline: datetime = Field(description="When the lease expires unless renewed.")
    first_seen: datetime | None = Field(description="This instance's first registration.")
    last_seen: datetime | None = Field(description="This instance's last applied renewal.")

    @classmethod
    def from_record(cls, record: StoredInstance) -> Instance:
        """Convert what the reader returns."""
        return cls(**_instance_fields(record))


class AgentSummary(BaseModel):
    """An agent as discovery lists it: status, lease, and its view (name, endpoints, skills)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUMMARY_EXAMPLE]})

    agent_id: str = Field(examples=["weather"])
    status: Status = Field(
        description="`live`: an instance holds a lease; `idle`: scaled to zero, still "
        "reachable through its queue; `offline`: kept for reading until its retention ends."
    )
    revision: int = Field(description="Global revision of the agent's last change.")
    card_digest: str = Field(description="Digest of the registered card (its ETag).")
    live_instances: int = Field(ge=0, description="Instances holding a lease now.")
    first_seen: datetime | None = Field(description="The agent's first registration.")
    last_seen: datetime | None = Field(description="The agent's last applied renewal.")
    lease: Lease
    verified: bool | None = Field(
        default=None,
        description="Whether the agent's well-known card, fetched by the registry, matched "
        "the registered one (same name, a common endpoint url); null while not checked.",
    )
    signature: SignatureStatus | None = Field(
        default=None,
        description="The check of the card's signatures (JWS over its JCS form, keys from the "
        "registry's trust store or the signer's JWKS URL): `valid`, `invalid` or `unsigned`; "
        "null while a signed card is not checked yet.",
    )
    agent: AgentView = Field(description="Name, description, endpoints, skills, tags, labels.")

    @classmethod
    def fields_from_record(cls, record: StoredAgent) -> dict[str, Any]:
        """The summary's fields, converted from what the reader returns."""
        return _record_fields(record, _view(record.agent_id, record.view))

    @classmethod
    def from_record(cls, record: StoredAgent) -> AgentSummary:
        """Convert what the reader returns."""
        return cls(**cls.fields_from_record(record))


class AgentDetail(AgentSummary):
    """One agent: the summary, its live instances, and the registry revision of the read."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {**_SUMMARY_EXAMPLE, "instances": [_INSTANCE_EXAMPLE], "registry_revision": 57}
            ]
        }
    )

    instances: list[Instance] = Field(
        description="Live instances, soonest lease deadline first (at most 1000)."
    )
    registry_revision: int = Field(description="Global revision at the moment of the read.")

    @classmethod
    def from_detail(cls, record: StoredAgentDetail) -> AgentDetail:
        """Convert what the reader returns."""
        return cls(
            **cls.fields_from_record(record),
            instances=[Instance.from_record(i) for i in record.instances],
            registry_revision=record.registry_revision,
        )


class AgentList(BaseModel):
    """One page of discovery."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"revision": 57, "agents": [_SUMMARY_EXAMPLE], "next_cursor": "weather"}]
        }
    )

    revision: int = Field(
        description="Global revision the page shows exactly: follow events after it."
    )
    agents: list[AgentSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page. A page "
        "shorter than `limit` (even an empty one) that has a cursor is not the end: the request "
        "spent its budget (ids examined, or the text `q` read) before the page filled; follow "
        "the cursor until it is null.",
        examples=["weather"],
    )


class Health(BaseModel):
    """The process is up."""

    status: str = Field(examples=["ok"])


class Safeguards(BaseModel):
    """Holds on lease expiry in force now: the registry distrusts absence for a while."""

    recovery_ms_left: int = Field(
        0, ge=0, description="Left of the recovery window after Redis lost its data (0: none)."
    )
    brake_held_leases: int = Field(
        0, ge=0, description="Leases the mass-expiry brake holds now (0: not braking)."
    )
    brake_ms_left: int = Field(0, ge=0, description="Left of the brake's hold.")


class ReadModelStatus(BaseModel):
    """The in-memory read model discovery is answered from."""

    ready: bool = Field(description="Loaded and caught up; false while it loads or rebuilds.")
    revision: int = Field(description="The registry revision the model shows exactly.")
    lag: int | None = Field(
        description="Revisions the registry is ahead of the model (null: Redis did not answer)."
    )
    agents: int = Field(ge=0, description="Agents held.")
    loads: int = Field(ge=0, description="Loads completed: the first one, then every rebuild.")


class Readiness(BaseModel):
    """Whether the API can serve: every dependency answers and the read model has loaded and
    caught up. Holds on expiry (recovery window, mass-expiry brake) do not make it unready;
    `safeguards` shows them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ready": True,
                    "checks": {"redis": "ok", "rabbitmq": "ok", "read_model": "ok"},
                    "safeguards": {
                        "recovery_ms_left": 0,
                        "brake_held_leases": 25,
                        "brake_ms_left": 28500,
                    },
                },
                {
                    "ready": False,
                    "checks": {
                        "redis": "ConnectionError: Error 111 connecting to 127.0.0.1:6379.",
                        "rabbitmq": "ok",
                    },
                },
            ]
        }
    )

    ready: bool
    checks: dict[str, str] = Field(description="`ok`, or what went wrong, per dependency.")
    safeguards: Safeguards | None = Field(None, description="Absent when Redis does not answer.")
    read_model: ReadModelStatus | None = Field(
        None,
        description="Absent when discovery reads Redis (`AGENTROSTER_DISCOVERY_SOURCE=redis`); "
        "the API is not ready until the read model is.",
    )


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


#: The view's field names (`AgentView.model_fields` builds a new mapping at each access).
_VIEW_FIELDS = frozenset(AgentView.model_fields)


def _view(agent_id: str, raw: dict[str, Any]) -> AgentView:
    """The stored view as the contract's `AgentView`; fields a newer worker added are dropped.

    A view that does not validate (it never should) is logged and shown as an empty one
    rather than failing the whole response.
    """
    known = {key: value for key, value in raw.items() if key in _VIEW_FIELDS}
    try:
        return AgentView.model_validate(known)
    except ValidationError as exc:
        log.warning("agent %s: stored view does not validate: %s", agent_id, exc)
        return AgentView(name=str(raw.get("name") or ""), card_format="generic")


def summary_json(record: StoredAgent) -> dict[str, Any]:
    """`AgentSummary.from_record(record)` as plain data for orjson, without pydantic."""
    return _record_fields(record, _view_json(record))


def detail_json(record: StoredAgentDetail) -> dict[str, Any]:
    """`AgentDetail.from_detail(record)` as plain data for orjson, without pydantic."""
    fields = _record_fields(record, _view_json(record))
    fields["instances"] = [_instance_fields(instance) for instance in record.instances]
    fields["registry_revision"] = record.registry_revision
    return fields


def _view_json(record: StoredAgent) -> Any:
    """The stored view as the answer embeds it. The worker wrote it from a validated
    `AgentView`: it is passed on as it is when it has exactly the view's fields (validating it
    again per read was a fifth of a `GET /v1/agents/{id}`'s CPU), and converted as the model
    does otherwise (a field a newer worker added, or one an older worker did not write)."""
    view: Any = record.view
    if view.keys() != _VIEW_FIELDS:
        view = _view(record.agent_id, view).model_dump(mode="json")
    return view


def _record_fields(record: StoredAgent, agent: Any) -> dict[str, Any]:
    """A summary's fields, the view `agent` last, as plain data (pydantic validates them as
    they are): the one builder of both `AgentSummary` and `summary_json`.
    """
    return {
        "agent_id": record.agent_id,
        "status": record.status,
        "revision": record.revision,
        "card_digest": record.digest,
        "live_instances": record.live_instances,
        "first_seen": _time(record.first_seen_ms),
        "last_seen": _time(record.last_seen_ms),
        "lease": {
            "ttl_s": record.ttl_ms / 1000,
            "interval_s": record.interval_ms / 1000 or None,
            "idle_ttl_s": record.idle_ttl_ms / 1000 or None,
        },
        "verified": record.verified,
        "signature": record.signature,
        "agent": agent,
    }


def _instance_fields(record: StoredInstance) -> dict[str, Any]:
    """An instance's fields as plain data: the one builder of `Instance` and `detail_json`."""
    return {
        "instance_id": record.instance_id,
        "lease_deadline": _time(record.lease_deadline_ms) or datetime.fromtimestamp(0, UTC),
        "first_seen": _time(record.first_seen_ms),
        "last_seen": _time(record.last_seen_ms),
    }
