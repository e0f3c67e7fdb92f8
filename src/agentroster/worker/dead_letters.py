"""Park a command the registry cannot apply, with the reason, before acknowledging it.

RabbitMQ's own dead-lettering (reject without requeue) cannot say why; publishing the message
to the dead-letter exchange ourselves, with publisher confirms, keeps its body and properties
and adds the reason. Only after the confirm is the original acknowledged: nothing is lost.

Whatever the message carried must be publishable again, or a bad message would be requeued
until RabbitMQ parks it without a reason: header values that are raw bytes (a long string that
is not UTF-8) travel as byte arrays, text that was not UTF-8 (see `amqp_decoding`) is written
with `\\xff` escapes, and header tables nested deeper than `MAX_HEADER_DEPTH` are cut there.
"""

from __future__ import annotations

import datetime
import decimal
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
from agentroster.registry.batch import BatchPart
from agentroster.registry.prepare import Rejected
from agentroster.worker.amqp_decoding import printable
from agentroster.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

#: Header tables nested deeper than this are cut in the dead letter (the encoder recurses too).
MAX_HEADER_DEPTH = 32


class DeadLetters:
    """Publishes rejected commands to the dead-letter exchange (a declared publisher)."""

    def __init__(self, publisher: RabbitPublisher, metrics: WorkerMetrics) -> None:
        self._publisher = publisher
        self._metrics = metrics
        self._logged: set[str] = set()

    async def park(
        self, message: AbstractIncomingMessage, rejected: Rejected, part: BatchPart | None = None
    ) -> None:
        """Publish `message` with its reason; returns once RabbitMQ confirmed it.

        With `part` (one heartbeat of a gateway's batch), what is parked is that heartbeat as
        its own message would have been: its body, routing key, type and principal header,
        with the batch's other properties.
        """
        reason, detail = rejected.reason, rejected.detail
        headers = publishable_headers(
            message.headers if part is None else {**(message.headers or {}), **part.headers}
        )
        headers[REASON_HEADER] = reason
        headers[DETAIL_HEADER] = printable(detail)[:DETAIL_MAX_CHARS]
        routing_key = printable((message.routing_key or "") if part is None else part.routing_key)
        headers[ROUTING_KEY_HEADER] = routing_key
        if message.user_id:
            # user_id cannot travel as a property: the broker checks it against our own user
            headers[USER_ID_HEADER] = printable(message.user_id)
        await self._publisher.publish(
            message.body if part is None else part.body,
            routing_key=routing_key,
            headers=headers,
            content_type=_printable_or_none(message.content_type),
            message_id=_printable_or_none(message.message_id),
            timestamp=message.timestamp,
            message_type=_printable_or_none(message.type) if part is None else "heartbeat",
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


def publishable_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """A copy of a delivery's headers that pamqp can encode again (see the module docstring)."""
    return {printable(str(key)): _publishable(value, 1) for key, value in headers.items()}


def _publishable(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, bytes | bytearray):
        return bytearray(value)
    if isinstance(value, dict | list) and depth >= MAX_HEADER_DEPTH:
        return f"(nested deeper than {MAX_HEADER_DEPTH} levels: cut)"
    if isinstance(value, dict):
        return {printable(str(k)): _publishable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_publishable(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float | decimal.Decimal | datetime.datetime):
        return value
    return repr(value)  # nothing pamqp decodes is left; a safe stand-in all the same


def _printable_or_none(value: str | None) -> str | None:
    return None if value is None else printable(value)
