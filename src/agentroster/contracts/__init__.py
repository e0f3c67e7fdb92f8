"""Wire contract of agentroster: commands, events, cards, endpoints, topology names.

This package is a leaf: it imports nothing else of agentroster, so an agent needs only it and
the client.
"""

from agentroster.contracts.cards import (
    DEFAULT_MAX_CARD_BYTES,
    AgentView,
    CardFormat,
    Skill,
    agent_view,
    card_bytes,
    card_digest,
    card_format,
    derive_endpoints,
)
from agentroster.contracts.commands import (
    COMMAND_MODELS,
    Command,
    Deregister,
    Heartbeat,
    Register,
)
from agentroster.contracts.endpoints import AMQP_BINDING_URI, CORE_BINDINGS, Endpoint
from agentroster.contracts.events import CE_HEADERS, AgentEvent, Reason, Status
from agentroster.contracts.ids import derive_agent_id, is_agent_id, new_instance_id
from agentroster.contracts.topology import (
    COMMAND_KINDS,
    DEAD_LETTER_REASONS,
    DETAIL_HEADER,
    DETAIL_MAX_CHARS,
    EVENT_KINDS,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
    CommandKind,
    DeadLetterReason,
    EventKind,
    Topology,
)

__all__ = [
    "AMQP_BINDING_URI",
    "CE_HEADERS",
    "COMMAND_KINDS",
    "COMMAND_MODELS",
    "CORE_BINDINGS",
    "DEAD_LETTER_REASONS",
    "DEFAULT_MAX_CARD_BYTES",
    "DETAIL_HEADER",
    "DETAIL_MAX_CHARS",
    "EVENT_KINDS",
    "REASON_HEADER",
    "ROUTING_KEY_HEADER",
    "USER_ID_HEADER",
    "AgentEvent",
    "AgentView",
    "CardFormat",
    "Command",
    "CommandKind",
    "DeadLetterReason",
    "Deregister",
    "Endpoint",
    "EventKind",
    "Heartbeat",
    "Reason",
    "Register",
    "Skill",
    "Status",
    "Topology",
    "agent_view",
    "card_bytes",
    "card_digest",
    "card_format",
    "derive_agent_id",
    "derive_endpoints",
    "is_agent_id",
    "new_instance_id",
]
