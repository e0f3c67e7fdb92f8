"""An agent's view of the registry, declared in FastStream only to be documented.

The broker built here is never connected: it declares what an agent does (publish register,
heartbeat, deregister to the commands exchange; receive agent.joined/updated/left from the
events exchange) from the same contracts and topology as the worker, so `agent.yaml` is
generated the way `registry.yaml` is. Its subscribers have no handler (nothing here consumes):
their messages' payloads come from the contract catalog (`_messages.py`), as the worker's
commands subscriber's do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from faststream.rabbit import RabbitBroker, RabbitQueue
from faststream.rabbit.publisher import RabbitPublisher
from faststream.rabbit.subscriber import RabbitSubscriber

from agentroster.contracts import (
    COMMAND_KINDS,
    COMMAND_MODELS,
    EVENT_KINDS,
    CommandKind,
    EventKind,
    Topology,
)
from agentroster.specification._messages import event_message_id
from agentroster.worker.topology import RabbitTopology

#: The path parameter of every per-agent routing key.
AGENT_ID = "{agent_id}"


@dataclass
class AgentBroker:
    """The agent's declarations: one publisher per command, one subscriber per event."""

    broker: RabbitBroker
    publishers: dict[CommandKind, RabbitPublisher]
    subscribers: dict[EventKind, RabbitSubscriber]


def agent_broker(broker_url: str, names: Topology, rabbit: RabbitTopology) -> AgentBroker:
    """Declare the agent's side of the contract on a broker that is never connected."""
    broker = RabbitBroker(
        broker_url,
        logger=logging.getLogger("agentroster.specification"),
        description="The registry's RabbitMQ, as an agent sees it.",
    )
    publishers = {
        kind: broker.publisher(
            exchange=rabbit.commands_exchange,
            routing_key=names.command_key(AGENT_ID, kind),
            persist=True,
            mandatory=True,
            title=kind,
            description=f"{kind} commands of one agent, to the commands exchange.",
            schema=COMMAND_MODELS[kind],
        )
        for kind in COMMAND_KINDS
    }
    subscribers: dict[EventKind, RabbitSubscriber] = {}
    for kind in EVENT_KINDS:
        # the subscriber's own queue: private, server-named, bound by the event's routing key
        queue = RabbitQueue(
            "",
            durable=False,
            exclusive=True,
            auto_delete=True,
            routing_key=names.event_key(kind, AGENT_ID),
        )
        subscriber = broker.subscriber(
            queue,
            rabbit.events_exchange,
            title=event_message_id(kind),
            description=f"agent.{kind} events, from the events exchange.",
        )
        subscribers[kind] = subscriber
    return AgentBroker(broker, publishers, subscribers)
