"""The messages of the wire contract as AsyncAPI message objects: what FastStream cannot say.

FastStream documents a message by its payload schema only. A client generated from the
documents also needs the AMQP properties (content type, `type`, delivery mode), the headers
(CloudEvents attributes on events, the reason on dead letters) and an example of each; they are
written here, from the contracts, so they cannot drift from the models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from agentroster.contracts import (
    CE_HEADERS,
    COMMAND_KINDS,
    COMMAND_MODELS,
    DEAD_LETTER_REASONS,
    DETAIL_HEADER,
    DETAIL_MAX_CHARS,
    EVENT_KINDS,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
    AgentEvent,
    CommandKind,
    Deregister,
    EventKind,
    Heartbeat,
    Register,
    Topology,
    agent_view,
    card_digest,
)
from agentroster.contracts.events import CE_SPECVERSION
from agentroster.contracts.gateway import (
    HEARTBEAT_BATCH_KEY,
    HEARTBEAT_BATCH_TYPE,
    MAX_BATCH_HEARTBEATS,
    PRINCIPAL_HEADER,
    HeartbeatBatch,
)
from agentroster.contracts.ids import AGENT_ID_PATTERN
from agentroster.store.outbox import OutboxEvent
from agentroster.tracing import MAX_TRACESTATE, TRACEPARENT, TRACEPARENT_PATTERN, TRACESTATE
from agentroster.worker.relay import event_headers

JSON = "application/json"
#: Version of the AMQP bindings the documents use (asyncapi/bindings, amqp 0.3.0).
AMQP_BINDING_VERSION = "0.3.0"
CLOUD_EVENTS_HEADERS = "CloudEventsHeaders"
TRACE_CONTEXT_HEADERS = "TraceContextHeaders"
DEAD_LETTER_HEADERS = "DeadLetterHeaders"


@dataclass(frozen=True)
class MessageSpec:
    """One message of the contract: its component id, AMQP `type`, headers and example."""

    id: str
    title: str
    summary: str
    description: str
    payload: str  # component schema name
    message_type: str | None  # the AMQP `type` property; None where it is not fixed
    headers: str | None = None  # component schema name
    example: dict[str, Any] = field(default_factory=dict)  # AsyncAPI Message Example object


def command_message_id(kind: CommandKind) -> str:
    """`register`, `heartbeat`, `deregister`."""
    return kind


def event_message_id(kind: EventKind) -> str:
    """`agentJoined`, `agentUpdated`, `agentLeft`."""
    return f"agent{kind.title()}"


DEAD_LETTER_MESSAGE = "rejectedCommand"
HEARTBEAT_BATCH_MESSAGE = "heartbeatBatch"
REPLY_MESSAGE = "commandReply"
DEAD_LETTER_PAYLOAD = "RejectedCommand"

# --- examples, built with the contract's own models so they always validate ------------------

_SENT_AT = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
_EXAMPLE_AGENT = "weather"
_EXAMPLE_INSTANCE = "weather-7d9f-5c2a1b3e"
#: The example events follow each other: joined, then updated, then left.
_EXAMPLE_REVISIONS: dict[EventKind, int] = {"joined": 42, "updated": 43, "left": 44, "deleted": 45}
_EXAMPLE_EPOCH = "3f2a9c1d8e7b6a50"
#: A revision in decimal (the `cloudEvents_revision` header): a positive 64-bit integer.
REVISION_PATTERN = r"^[1-9][0-9]{0,18}$"
_EXAMPLE_CARD: dict[str, Any] = {
    "name": "Weather",
    "description": "Forecasts for any city.",
    "version": "1.0.0",
    "supportedInterfaces": [
        {
            "url": "https://weather.example/a2a",
            "protocolBinding": "JSONRPC",
            "protocolVersion": "1.0",
        }
    ],
    "skills": [{"id": "forecast", "name": "Forecast", "tags": ["weather"]}],
}
_EXAMPLE_LABELS = {"team": "forecasting"}
_EXAMPLE_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _dump(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def command_example(kind: CommandKind) -> dict[str, Any]:
    """A valid body of one command (the same agent instance throughout)."""
    common: dict[str, Any] = {
        "agent_id": _EXAMPLE_AGENT,
        "instance_id": _EXAMPLE_INSTANCE,
        "sent_at": _SENT_AT,
    }
    match kind:
        case "register":
            return _dump(
                Register(
                    **common,
                    seq=1,
                    ttl_s=30,
                    interval_s=10,
                    card=_EXAMPLE_CARD,
                    labels=_EXAMPLE_LABELS,
                )
            )
        case "heartbeat":
            return _dump(
                Heartbeat(**common, seq=2, ttl_s=30, card_digest=card_digest(_EXAMPLE_CARD))
            )
        case "deregister":
            return _dump(Deregister(**common, seq=3, reason="shutdown"))


def event_example(kind: EventKind) -> dict[str, Any]:
    """A valid body of one event about the example agent."""
    left = kind in ("left", "deleted")
    return _dump(
        AgentEvent(
            agent_id=_EXAMPLE_AGENT,
            revision=_EXAMPLE_REVISIONS[kind],
            status="offline" if left else "live",
            live_instances=0 if left else 1,
            reason={
                "joined": "registered",
                "updated": "card-changed",
                "left": "deregistered",
                "deleted": "retention",
            }[kind],
            agent=agent_view(_EXAMPLE_CARD, None, _EXAMPLE_LABELS),
            card=None if left else _EXAMPLE_CARD,
        )
    )


def event_headers_example(topology: Topology, kind: EventKind, source: str) -> dict[str, Any]:
    """The CloudEvents headers of `event_example(kind)`, built by the relay's own code."""
    body = event_example(kind)
    event = OutboxEvent(
        revision=body["revision"],
        kind=kind,
        agent_id=body["agent_id"],
        status=body["status"],
        live_instances=body["live_instances"],
        reason=body["reason"],
        time_ms=round(_SENT_AT.timestamp() * 1000),
        epoch=_EXAMPLE_EPOCH,
        view=b"{}",
        card=None,
    )
    return event_headers(event, topology, source)


# --- header schemas ---------------------------------------------------------------------------


def cloud_events_headers_schema(topology: Topology, source: str) -> dict[str, Any]:
    """The `cloudEvents_*` headers of every event (CloudEvents 1.0, AMQP binary mode)."""
    attributes: dict[str, dict[str, Any]] = {
        "cloudEvents_specversion": {
            "type": "string",
            "const": CE_SPECVERSION,
            "description": "CloudEvents specification version.",
        },
        "cloudEvents_id": {
            "type": "string",
            "description": "Unique event id, `<prefix>-<epoch>-<revision>`; also the AMQP "
            "`message_id`, and the same every time one event is re-published (drop duplicates "
            "by it).",
            "examples": [f"{topology.prefix}-{_EXAMPLE_EPOCH}-{_EXAMPLE_REVISIONS['joined']}"],
        },
        "cloudEvents_type": {
            "type": "string",
            "enum": [topology.event_type(kind) for kind in EVENT_KINDS],
            "description": "Event type: the routing key's kind, prefixed `agentroster.agent.`.",
        },
        "cloudEvents_source": {
            "type": "string",
            "format": "uri-reference",
            "description": "The registry that published the event (`AGENTROSTER_EVENT_SOURCE`).",
            "examples": [source],
        },
        "cloudEvents_subject": {
            "type": "string",
            "pattern": AGENT_ID_PATTERN,
            "description": "The agent the event is about: its `agent_id`.",
            "examples": [_EXAMPLE_AGENT],
        },
        "cloudEvents_time": {
            "type": "string",
            "format": "date-time",
            "description": "When the change happened, by the registry's (Redis) clock.",
        },
        "cloudEvents_revision": {
            "type": "string",
            "pattern": REVISION_PATTERN,
            "description": "Extension attribute: the registry revision of the change in "
            "decimal, the same as the body's `revision`. A CloudEvents `String`: revisions "
            "exceed the 32-bit `Integer` type once they continue from the clock in ms (after "
            "Redis lost the registry's data); parse it as a 64-bit integer.",
            "examples": [str(_EXAMPLE_REVISIONS["joined"])],
        },
    }
    if set(attributes) != set(CE_HEADERS):  # a new attribute must be documented here
        raise RuntimeError(f"document every CloudEvents header: {sorted(CE_HEADERS)}")
    return {
        "title": CLOUD_EVENTS_HEADERS,
        "description": "CloudEvents 1.0 attributes of an event in binary mode: AMQP headers "
        "prefixed `cloudEvents_`; the body is the event data.",
        "type": "object",
        "properties": {
            **{name: attributes[name] for name in CE_HEADERS},
            **trace_context_properties(
                "the context of the command that caused the event (with tracing on in the "
                "registry, of its relay's span, a child of the worker's span for that command)"
            ),
        },
        "required": list(CE_HEADERS),
    }


def trace_context_properties(whose: str) -> dict[str, Any]:
    """The W3C Trace Context headers, optional on every command and event (`tracing`)."""
    return {
        TRACEPARENT: {
            "type": "string",
            "pattern": f"^{TRACEPARENT_PATTERN}$",
            "description": f"W3C Trace Context `traceparent`: {whose}. Only when the sender "
            "traces (OpenTelemetry); the registry drops a malformed one and applies the "
            "command all the same.",
            "examples": [_EXAMPLE_TRACEPARENT],
        },
        TRACESTATE: {
            "type": "string",
            "maxLength": MAX_TRACESTATE,
            "description": "W3C Trace Context `tracestate` (vendor data), with `traceparent` "
            "only; printable ASCII.",
        },
    }


def trace_context_headers_schema() -> dict[str, Any]:
    """The optional trace context headers of a command."""
    return {
        "title": TRACE_CONTEXT_HEADERS,
        "description": "Optional headers of a command: the W3C trace context of its publisher, "
        "which the worker's span for the command continues and the command's events carry on. "
        "A gateway's command (HTTP writes) also carries `x-agentroster-principal` (see the "
        "document's description).",
        "type": "object",
        "properties": trace_context_properties("the publisher's span for this command"),
    }


def dead_letter_headers_schema() -> dict[str, Any]:
    """Headers the worker adds to a rejected command (its own headers are kept)."""
    return {
        "title": DEAD_LETTER_HEADERS,
        "description": "Why a command was rejected; the original message's headers are kept.",
        "type": "object",
        "properties": {
            REASON_HEADER: {
                "type": "string",
                "enum": list(DEAD_LETTER_REASONS),
                "description": "Why the command was rejected. (A command parked by the quorum "
                "delivery limit, after failing inside Redis every time, has no such header: "
                "RabbitMQ's `x-first-death-reason` is `delivery_limit`.)",
            },
            DETAIL_HEADER: {
                "type": "string",
                "maxLength": DETAIL_MAX_CHARS,
                "description": "A human-readable detail of the reason (e.g. the validation error).",
            },
            ROUTING_KEY_HEADER: {
                "type": "string",
                "description": "The routing key the command was published with.",
                "examples": [Topology.command_key(_EXAMPLE_AGENT, "register")],
            },
            USER_ID_HEADER: {
                "type": "string",
                "description": "The broker-validated `user_id` of the original message, if any.",
            },
        },
        "required": [REASON_HEADER, DETAIL_HEADER, ROUTING_KEY_HEADER],
    }


# --- the catalog --------------------------------------------------------------------------------


#: What `user_id` is on a command (the agent's identity) and on an event (the registry's).
COMMAND_USER_ID = (
    "`user_id`: the broker user name of the publishing connection, on every command (RabbitMQ "
    "refuses a message whose `user_id` is not the connection's user, so it cannot be forged; "
    "the registry binds an agent to the identity of its first registration)"
)
EVENT_USER_ID = (
    "`user_id`: the registry's broker user name, validated by RabbitMQ against the publishing "
    "connection; only the registry's user may publish to the events exchange, so a subscriber "
    "that compares `user_id` with the registry's user knows the event came from the registry"
)


def heartbeat_batch_example() -> dict[str, Any]:
    """A valid heartbeat batch: the example heartbeat, for two principals."""
    heartbeat = command_example("heartbeat")
    other = {**heartbeat, "agent_id": "rain", "instance_id": "rain-1"}
    return _dump(
        HeartbeatBatch.model_validate(
            {
                "heartbeats": [
                    {"principal": "weather-team", "command": heartbeat},
                    {"principal": "rain-team", "command": other},
                ]
            }
        )
    )


def _properties(message_type: str, *, user_id: str) -> str:
    return (
        f"AMQP properties: `content_type: {JSON}`, `type: {message_type}`, persistent "
        f"(`delivery_mode: 2`), a unique `message_id`, `timestamp`, and {user_id}."
    )


def messages(topology: Topology, source: str) -> dict[str, MessageSpec]:
    """Every message of the contract, by component id."""
    catalog: dict[str, MessageSpec] = {}
    for command in COMMAND_KINDS:
        model = COMMAND_MODELS[command]
        catalog[command_message_id(command)] = MessageSpec(
            id=command_message_id(command),
            title=f"{command} command",
            summary=(model.__doc__ or command).strip().splitlines()[0],
            description=(
                f"Published by an agent to `{topology.commands_exchange}` with routing key "
                f"`{topology.command_key('<agent_id>', command)}`. "
                + _properties(command, user_id=COMMAND_USER_ID)
                + " Unknown fields are errors: a command the registry cannot apply is "
                f"dead-lettered to `{topology.dead_letter_exchange}` with the reason."
            ),
            payload=model.__name__,
            message_type=command,
            headers=TRACE_CONTEXT_HEADERS,
            example={
                "name": command,
                "summary": f"A {command} of the example agent, from a publisher that traces",
                "headers": {TRACEPARENT: _EXAMPLE_TRACEPARENT},
                "payload": command_example(command),
            },
        )
    catalog[HEARTBEAT_BATCH_MESSAGE] = MessageSpec(
        id=HEARTBEAT_BATCH_MESSAGE,
        title="heartbeat batch (gateway only)",
        summary="HTTP agents' heartbeats the API's write gateway publishes as one message.",
        description=(
            f"Published by the API's write gateway to `{topology.commands_exchange}` with "
            f"routing key `{HEARTBEAT_BATCH_KEY}` (`_gateway` is no agent id, so no agent's "
            "topic permission covers it), when HTTP heartbeats without `?wait` arrive while its "
            f"last publish awaits the broker's confirm: 1 to {MAX_BATCH_HEARTBEATS} items, each "
            f"an API key principal (what `{PRINCIPAL_HEADER}` names on a single command) and a "
            "heartbeat. "
            + _properties(
                HEARTBEAT_BATCH_TYPE, user_id="the gateway's own broker user as `user_id`"
            )
            + " The registry applies it only from a gateway user "
            "(`AGENTROSTER_GATEWAY_USERS`); from anyone else it is dead-lettered whole as "
            "`forbidden`. Each item is applied exactly as its single heartbeat would be, with "
            "its principal's identity; an item the registry refuses is dead-lettered alone, as "
            "that single heartbeat (its routing key, body, `type: heartbeat` and principal "
            "header), with the reason."
        ),
        payload=HeartbeatBatch.__name__,
        message_type=HEARTBEAT_BATCH_TYPE,
        example={
            "name": "two-keys",
            "summary": "Heartbeats of two HTTP agents with different keys",
            "payload": heartbeat_batch_example(),
        },
    )
    for kind in EVENT_KINDS:
        message_type = Topology.event_name(kind)  # as the outbox relay publishes it
        catalog[event_message_id(kind)] = MessageSpec(
            id=event_message_id(kind),
            title=f"agent.{kind} event",
            summary={
                "joined": "An agent became available (live or idle).",
                "updated": "An available agent's card or live/idle status changed.",
                "left": "An agent stopped being available.",
                "deleted": "An offline agent's record was deleted at the end of its retention "
                "period (`reason: retention`); it is no longer listed, even with `status=all`.",
            }[kind],
            description=(
                f"Published by the registry to `{topology.events_exchange}` with routing key "
                f"`{topology.event_key(kind, '<agent_id>')}`, once per transition; delivery is "
                "at least once (drop duplicates by `cloudEvents_id` or `revision`). CloudEvents "
                "1.0 in binary mode: the attributes are the `cloudEvents_*` headers, the body is "
                "the event data. " + _properties(message_type, user_id=EVENT_USER_ID)
            ),
            payload=AgentEvent.__name__,
            message_type=message_type,
            headers=CLOUD_EVENTS_HEADERS,
            example={
                "name": message_type,
                "summary": f"agent.{kind} of the example agent",
                "headers": event_headers_example(topology, kind, source),
                "payload": event_example(kind),
            },
        )
    catalog[DEAD_LETTER_MESSAGE] = MessageSpec(
        id=DEAD_LETTER_MESSAGE,
        title="rejected command",
        summary="A command the registry cannot apply, with the reason.",
        description=(
            f"Published by the registry to the fanout exchange `{topology.dead_letter_exchange}` "
            "before the original is acknowledged. The body is the original's, unchanged (it "
            "may be malformed: that can be the reason), and so are its routing key and its "
            "properties (`content_type`, `type`, `message_id`, `timestamp`); the message is "
            "persistent and gains the `x-agentroster-*` headers. An item of a heartbeat batch "
            "refused alone is parked as its single heartbeat: the item's command as body, "
            "`agent.<agent_id>.heartbeat` as routing key, `type: heartbeat`, and its principal "
            f"in `{PRINCIPAL_HEADER}`."
        ),
        payload=DEAD_LETTER_PAYLOAD,
        message_type=None,  # the original's `type`
        headers=DEAD_LETTER_HEADERS,
        example={
            "name": "agent-id-mismatch",
            "summary": "A heartbeat whose routing key names another agent than its body",
            "headers": {
                REASON_HEADER: "agent-id-mismatch",
                DETAIL_HEADER: f"routing key names 'rain', body names '{_EXAMPLE_AGENT}'",
                ROUTING_KEY_HEADER: Topology.command_key("rain", "heartbeat"),
            },
            "payload": command_example("heartbeat"),
        },
    )
    catalog[REPLY_MESSAGE] = MessageSpec(
        id=REPLY_MESSAGE,
        title="command reply",
        summary="What became of a gateway command that asked (HTTP writes, `?wait=true`).",
        description=(
            "Published by the registry through the default exchange to the command's "
            "`reply_to`, with its `correlation_id`, after the command's batch committed "
            "(`applied`) or after it was dead-lettered (`rejected`), only for a command of a "
            "gateway user (`AGENTROSTER_GATEWAY_USERS`) whose `reply_to` is a direct reply-to "
            "name (`amq.rabbitmq.reply-to.*`). Transient, best effort: a gateway that stopped "
            "waiting has answered without it."
        ),
        payload="CommandReply",
        message_type=None,
        example={
            "name": "applied",
            "summary": "A heartbeat the registry applied",
            "payload": {"outcome": "applied", "reason": "applied", "message": ""},
        },
    )
    return catalog


def payload_examples() -> dict[str, list[dict[str, Any]]]:
    """Examples of the payload schemas, by schema name."""
    return {
        **{COMMAND_MODELS[kind].__name__: [command_example(kind)] for kind in COMMAND_KINDS},
        HeartbeatBatch.__name__: [heartbeat_batch_example()],
        AgentEvent.__name__: [event_example("joined")],
    }
