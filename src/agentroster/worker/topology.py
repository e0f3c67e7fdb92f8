"""The worker's RabbitMQ objects (design section 3), as FastStream declarations.

Both queues have a length bound (invariant 8), each with the overflow policy its role needs:

- commands: `reject-publish`. Past `commands_max_length` RabbitMQ nacks new commands, so a
  flood shows up at the publishers as failed publishes (the `Beacon` retries with backoff)
  instead of growing the queue without limit; what is queued is never dropped. Quorum queues
  with at-least-once dead-lettering accept only this policy.
- dead letters: `drop-head`. Past `dead_letter_max_length` the oldest dead letters go. The
  worker publishes a rejected command there before acknowledging it: with `reject-publish` a
  full dead-letter queue would refuse that publish, the command would be requeued, retried,
  and finally parked by RabbitMQ into the same full queue, so a flood of bad messages would
  stall the command path. The newest dead letters are the ones that explain a current
  problem, and every dead letter is counted in `agentroster_dead_lettered_total` anyway.

A bound of 0 declares the queue without one, exactly as earlier versions did: RabbitMQ refuses
to redeclare an existing queue with other arguments (see the README, "Queue bounds").
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas.queue import QuorumQueueArgs

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
    names: Topology,
    *,
    delivery_limit: int,
    event_log_max_age: str,
    commands_max_length: int,
    dead_letter_max_length: int,
) -> RabbitTopology:
    """Build the declarations; the quorum queue's delivery limit parks poison messages."""
    commands_args: QuorumQueueArgs = {
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": names.dead_letter_exchange,
        # at-least-once dead-lettering needs reject-publish overflow
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    if commands_max_length:
        commands_args["x-max-length"] = commands_max_length
    dead_letter_args: QuorumQueueArgs | None = None
    if dead_letter_max_length:
        dead_letter_args = {"x-max-length": dead_letter_max_length, "x-overflow": "drop-head"}
    return RabbitTopology(
        commands_exchange=RabbitExchange(
            names.commands_exchange, type=ExchangeType.TOPIC, durable=True
        ),
        commands_queue=RabbitQueue(
            names.commands_queue,
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key=names.commands_binding,
            arguments=commands_args,
        ),
        dead_letter_exchange=RabbitExchange(
            names.dead_letter_exchange, type=ExchangeType.FANOUT, durable=True
        ),
        dead_letter_queue=RabbitQueue(
            names.dead_letter_queue,
            queue_type=QueueType.QUORUM,
            durable=True,
            arguments=dead_letter_args,
        ),
        events_exchange=RabbitExchange(
            names.events_exchange, type=ExchangeType.TOPIC, durable=True
        ),
        events_log=RabbitQueue(
            names.events_log,
            queue_type=QueueType.STREAM,
            durable=True,
            routing_key=names.events_log_binding,
            arguments={"x-max-age": event_log_max_age},
        ),
    )
