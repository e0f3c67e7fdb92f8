"""Park a command the registry cannot apply, with the reason, before acknowledging it.

RabbitMQ's own dead-lettering (reject without requeue) cannot say why; publishing the message
to the dead-letter exchange ourselves, with publisher confirms, keeps its body and properties
and adds the reason. Only after the confirm is the original acknowledged: nothing is lost.
"""

from __future__ import annotations

import logging
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from faststream.rabbit.publisher import RabbitPublisher

from agentroster.contracts import (
    DETAIL_HEADER,
    DETAIL_MAX_CHARS,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
)
from agentroster.registry.prepare import Rejected
from agentroster.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class DeadLetters:
    """Publishes rejected commands to the dead-letter exchange (a declared publisher)."""

    def __init__(self, publisher: RabbitPublisher, metrics: WorkerMetrics) -> None:
        self._publisher = publisher
        self._metrics = metrics
        self._logged: set[str] = set()

    async def park(self, message: AbstractIncomingMessage, rejected: Rejected) -> None:
        """Publish `message` with its reason; returns once RabbitMQ confirmed it."""
        reason, detail = rejected.reason, rejected.detail
        headers: dict[str, Any] = dict(message.headers or {})
        headers[REASON_HEADER] = reason
        headers[DETAIL_HEADER] = detail[:DETAIL_MAX_CHARS]
        headers[ROUTING_KEY_HEADER] = message.routing_key or ""
        if message.user_id:
            # user_id cannot travel as a property: the broker checks it against our own user
            headers[USER_ID_HEADER] = message.user_id
        await self._publisher.publish(
            message.body,
            routing_key=message.routing_key or "",
            headers=headers,
            content_type=message.content_type,
            message_id=message.message_id,
            timestamp=message.timestamp,
            message_type=message.type,
            persist=True,
        )
        self._metrics.dead_lettered.labels(reason).inc()
        if reason not in self._logged:  # log each reason once, count every occurrence
            self._logged.add(reason)
            log.warning(
                "dead-lettered a command (%s: %s); further ones are only counted in "
                "agentroster_dead_lettered_total",
                reason,
                detail,
            )
