"""Commands agents publish to the registry: register, heartbeat, deregister (design section 3).

Commands are strict (`extra="forbid"`): a field the registry does not know is an error, not a
silent drop. The kind travels in the routing key (`agent.<agent_id>.<kind>`) and the AMQP
`type` property.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agentroster.contracts.endpoints import PRINTABLE, Endpoint
from agentroster.contracts.ids import AgentId, InstanceId, Int64

#: A label key: no `:` or `=`, which the discovery filter `label=key:value` and the index
#: term `label:key=value` use as separators, and no control character (C0, DEL, C1).
LABEL_KEY_PATTERN = r"^[^:=\x00-\x1f\x7f-\x9f]{1,63}$"
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)]
#: A label value: at most 256 characters, none of them a control character.
LabelValue = Annotated[str, StringConstraints(max_length=256, pattern=PRINTABLE)]
#: Most endpoints one registration may list (the registry may be configured lower).
MAX_ENDPOINTS = 64
#: Most labels one registration may carry.
MAX_LABELS = 64


def _keys_by_property_names(schema: dict[str, Any]) -> None:
    """Say it with `propertyNames`: under pydantic's `patternProperties` any other key would pass.

    Validation is pydantic's, unchanged; only the JSON schema says it as the code does it.
    """
    [(pattern, value)] = schema.pop("patternProperties").items()
    schema["propertyNames"] = {"pattern": pattern}
    schema["additionalProperties"] = value


#: At most 64 labels; a key that does not match `LabelKey` is an error.
Labels = Annotated[
    dict[LabelKey, LabelValue],
    Field(max_length=MAX_LABELS, json_schema_extra=_keys_by_property_names),
]

#: A duration in seconds: finite, positive, at most ten years (the registry bounds it further).
Seconds = Annotated[float, Field(gt=0, le=10 * 365 * 24 * 3600, allow_inf_nan=False)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: AgentId = Field(description="The logical agent, a DNS label.", examples=["weather"])
    instance_id: InstanceId = Field(
        description="One running process of the agent, unique per process lifetime.",
        examples=["weather-7d9f-5c2a1b3e"],
    )
    seq: Int64 = Field(
        ge=1,
        le=2**53 - 1,  # the Lua scripts compare seqs as doubles
        description="Per-instance message number, 1, 2, 3...; a seq not greater than the last "
        "applied one is a duplicate or late, and is ignored.",
    )
    sent_at: datetime = Field(
        description="When the agent sent it (informational: the registry uses its own clock)."
    )


class Register(_Command):
    """Start or refresh an instance's lease and state the agent's card."""

    ttl_s: Seconds = Field(
        description="Lease length; the registry bounds it (default 5 s to 24 h)."
    )
    interval_s: Seconds | None = Field(
        default=None, description="Heartbeat interval of a persistent agent."
    )
    idle_ttl_s: Seconds | None = Field(
        default=None,
        description="A queue-addressed agent that scales to zero stays `idle` (reachable "
        "through its queue) this long after its last lease expired; the registry bounds it "
        "(default at most 7 days).",
    )
    card: dict[str, Any] = Field(
        description="The agent's native card (A2A v0.3, v1.0, or a generic card), as JSON: at "
        "most 64 KiB serialised by default, numbers finite (no `NaN` or `Infinity`), skill "
        "ids and tags without control characters."
    )
    endpoints: list[Endpoint] | None = Field(
        default=None,
        max_length=MAX_ENDPOINTS,
        description="How to reach the agent; derived from an A2A card when absent. The "
        "registry accepts at most 64 (by default 32, `AGENTROSTER_MAX_ENDPOINTS`), derived "
        "or given.",
    )
    labels: Labels | None = None
    verify: bool = Field(
        default=False,
        description="Ask the registry to fetch this agent's well-known card (A2A v1.0 path "
        "first, then v0.3) once for this card and record whether it matches (`verified` in "
        "discovery). The registry may be configured to verify every card, or none.",
    )


class Heartbeat(_Command):
    """Renew an instance's lease; `card_digest` says which card the instance runs."""

    ttl_s: Seconds = Field(description="Lease length; the registry bounds it.")
    card_digest: str = Field(
        max_length=128,
        description="Which card the instance runs: `sha256:` and the lowercase hex SHA-256 "
        "of the card it last registered, serialised as compact UTF-8 JSON (no whitespace, "
        "non-ASCII characters not escaped, array items in order, the keys of every object "
        "sorted by Unicode code point), as Python's orjson writes it with `OPT_SORT_KEYS`. A "
        "digest that differs from the registered card's still renews the lease (the registry "
        "counts a stale card); only `register` changes the card. The empty string states no "
        "card (e.g. an HTTP heartbeat without one): the lease is renewed, nothing counted.",
    )


class Deregister(_Command):
    """End one instance's lease (a graceful shutdown deregisters only its own instance)."""

    reason: str = Field(default="shutdown", max_length=256)


Command = Register | Heartbeat | Deregister
COMMAND_MODELS: dict[str, type[Register] | type[Heartbeat] | type[Deregister]] = {
    "register": Register,
    "heartbeat": Heartbeat,
    "deregister": Deregister,
}


def command_json(command: Register | Heartbeat | Deregister) -> bytes:
    """The command as clients publish it: no nulls, and `verify` only when asked for (a
    registry older than the field would refuse it as an unknown field)."""
    exclude = {"verify"} if isinstance(command, Register) and not command.verify else None
    return command.model_dump_json(exclude_none=True, exclude=exclude).encode()
