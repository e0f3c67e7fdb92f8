"""The worker's RabbitMQ objects (design section 3), as FastStream declarations."""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from agentroster.contracts import Topology


@dataclass(frozen=True)
class RabbitTopology:
    """Exchanges and queues of one registry, with the arguments they are declared with."""

    commands_exchange: RabbitExchange
    commands_queue: RabbitQueue
    dead_letter_exchange: RabbitExchange
    dead_letter_queue: RabbitQueue
    events_exchange: RabbitExchange
    events_log: RabbitQueue


def rabbit_topology(
    names: Topology, *, delivery_limit: int, event_log_max_age: str
) -> RabbitTopology:
    """Build the declarations; the quorum queue's delivery limit parks poison messages."""
    return RabbitTopology(
        commands_exchange=RabbitExchange(
            names.commands_exchange, type=ExchangeType.TOPIC, durable=True
        ),
        commands_queue=RabbitQueue(
            names.commands_queue,
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key=names.commands_binding,
            arguments={
                "x-delivery-limit": delivery_limit,
                "x-dead-letter-exchange": names.dead_letter_exchange,
                # at-least-once dead-lettering needs reject-publish overflow
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        ),
        dead_letter_exchange=RabbitExchange(
            names.dead_letter_exchange, type=ExchangeType.FANOUT, durable=True
        ),
        dead_letter_queue=RabbitQueue(
            names.dead_letter_queue, queue_type=QueueType.QUORUM, durable=True
        ),
        events_exchange=RabbitExchange(
            names.events_exchange, type=ExchangeType.TOPIC, durable=True
        ),
        events_log=RabbitQueue(
            names.events_log,
            queue_type=QueueType.STREAM,
            durable=True,
            routing_key="#",
            arguments={"x-max-age": event_log_max_age},
        ),
    )
