"""Every AMQP name of one registry, derived from its prefix (design section 3).

Two registries with different prefixes share a broker without touching each other's
exchanges or queues. Nothing else in the code spells a name by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

CommandKind = Literal["register", "heartbeat", "deregister"]
EventKind = Literal["joined", "updated", "left", "deleted"]

COMMAND_KINDS: tuple[CommandKind, ...] = ("register", "heartbeat", "deregister")
EVENT_KINDS: tuple[EventKind, ...] = ("joined", "updated", "left", "deleted")

#: The prefix of every name of a registry unless configured (`AGENTROSTER_PREFIX`).
DEFAULT_PREFIX = "agentroster"
#: The broker a registry and its agents use unless configured (`AGENTROSTER_BROKER_URL`): the
#: local RabbitMQ with its development user.
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: Quorum queues count redeliveries; past this a message is dead-lettered (poison message).
DEFAULT_DELIVERY_LIMIT = 5
#: The event log stream keeps events this long (replay for late subscribers).
DEFAULT_EVENT_LOG_MAX_AGE = "7D"
#: Header that carries why agentroster dead-lettered a message.
REASON_HEADER = "x-agentroster-reason"
#: Header with a human-readable detail of the reason (e.g. the validation error).
DETAIL_HEADER = "x-agentroster-detail"
#: The detail is cut to this many characters.
DETAIL_MAX_CHARS = 1000
#: Header with the routing key the dead-lettered command was published with.
ROUTING_KEY_HEADER = "x-agentroster-routing-key"
#: Header with the broker-validated `user_id` of the dead-lettered command, if it had one.
USER_ID_HEADER = "x-agentroster-user-id"
#: Every reason agentroster dead-letters a command with (the value of `REASON_HEADER`).
DeadLetterReason = Literal[
    "malformed-json",
    "invalid-schema",
    "unknown-kind",
    "bad-routing-key",
    "agent-id-mismatch",
    "invalid-card",
    "card-too-large",
    "message-too-large",
    "registration-too-large",
    "forbidden",
    "identity-required",
    "quota-exceeded",
    "wrong-exchange",
    "undecodable",
    "internal-error",
]
DEAD_LETTER_REASONS: tuple[DeadLetterReason, ...] = get_args(DeadLetterReason)


@dataclass(frozen=True, slots=True)
class Topology:
    """Exchange, queue and routing-key names for one registry prefix."""

    prefix: str = DEFAULT_PREFIX

    @property
    def commands_exchange(self) -> str:
        """Topic exchange agents publish register/heartbeat/deregister to."""
        return f"{self.prefix}.commands"

    @property
    def commands_queue(self) -> str:
        """Quorum queue the worker replicas share."""
        return f"{self.prefix}.commands"

    #: Binding of the commands queue: `agent.<agent_id>.<kind>`.
    commands_binding: str = "agent.*.*"

    @property
    def dead_letter_exchange(self) -> str:
        """Fanout exchange for rejected commands."""
        return f"{self.prefix}.dead-letter"

    @property
    def dead_letter_queue(self) -> str:
        """Quorum queue keeping every rejected command with its reason."""
        return f"{self.prefix}.dead-letter"

    @property
    def events_exchange(self) -> str:
        """Topic exchange the registry publishes agent.joined/updated/left to."""
        return f"{self.prefix}.events"

    @property
    def events_log(self) -> str:
        """Stream queue bound to every event, for replay."""
        return f"{self.prefix}.events.log"

    #: Binding of the events log to the events exchange: every event.
    events_log_binding: str = "#"

    @property
    def exchanges(self) -> tuple[str, str, str]:
        """Every exchange of this registry: commands, dead-letter, events."""
        return (self.commands_exchange, self.dead_letter_exchange, self.events_exchange)

    @property
    def queues(self) -> tuple[str, str, str]:
        """Every queue of this registry: commands, dead-letter, the events log."""
        return (self.commands_queue, self.dead_letter_queue, self.events_log)

    @staticmethod
    def command_key(agent_id: str, kind: CommandKind) -> str:
        """Routing key of one command: `agent.<agent_id>.<kind>`."""
        return f"agent.{agent_id}.{kind}"

    @staticmethod
    def parse_command_key(routing_key: str) -> tuple[str, str] | None:
        """(agent_id, kind) of a routing key `agent.<agent_id>.<kind>`, or None if it is not of
        that shape; the parts are not validated (the kind may be unknown, the id invalid)."""
        parts = routing_key.split(".")
        if len(parts) != 3 or parts[0] != "agent":
            return None
        return parts[1], parts[2]

    @staticmethod
    def event_key(kind: EventKind, agent_id: str) -> str:
        """Routing key of one event: `agent.<kind>.<agent_id>`."""
        return f"agent.{kind}.{agent_id}"

    @staticmethod
    def event_name(kind: EventKind) -> str:
        """An event's AMQP `type` and SSE `event` name: `agent.<kind>`."""
        return f"agent.{kind}"

    def event_type(self, kind: EventKind) -> str:
        """CloudEvents `type` of an event kind, e.g. `agentroster.agent.joined`."""
        return f"agentroster.agent.{kind}"
