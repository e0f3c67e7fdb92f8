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
    DETAIL_HEADER,
    EVENT_KINDS,
    REASON_HEADER,
    CommandKind,
    EventKind,
    Topology,
)

__all__ = [
    "AMQP_BINDING_URI",
    "CE_HEADERS",
    "COMMAND_KINDS",
    "COMMAND_MODELS",
    "CORE_BINDINGS",
    "DEFAULT_MAX_CARD_BYTES",
    "DETAIL_HEADER",
    "EVENT_KINDS",
    "REASON_HEADER",
    "AgentEvent",
    "AgentView",
    "CardFormat",
    "Command",
    "CommandKind",
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
