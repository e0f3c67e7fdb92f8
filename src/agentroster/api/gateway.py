"""The API's way onto the broker: it publishes HTTP agents' commands, the worker applies them.

One `CommandGateway` per API process: one AMQP connection, a channel with publisher confirms,
commands published as an AMQP agent would (same exchange, routing key, properties), plus the
principal header (`contracts.gateway`). With `wait`, it asks the worker for the outcome through
RabbitMQ's direct reply-to and waits for it (read-your-write).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agentroster.api.auth import Principal
from agentroster.contracts.commands import Command


class BrokerUnavailable(Exception):
    """The broker did not take the command (down, or it refused the publish): retry later."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a command: `accepted` (confirmed by the broker, outcome not awaited),
    `applied` by the worker, or `rejected` (dead-lettered: `reason` is the dead-letter reason).
    """

    status: Literal["accepted", "applied", "rejected"]
    reason: str | None = None
    message: str | None = None


class CommandGateway:
    """Publishes commands for API keys; see the module docstring."""

    async def start(self) -> None:
        """Connect (lazily reconnects later; a broker down at start is not fatal)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Close the connection."""
        raise NotImplementedError

    async def send(
        self, command: Command, principal: Principal | None, *, wait: bool = False
    ) -> Outcome:
        """Publish `command` for `principal` (None: no identity) and wait for the confirm.

        With `wait`, also wait (at most `write_wait_s`) for the worker's outcome. Raises
        `BrokerUnavailable` when the broker does not confirm.
        """
        raise NotImplementedError
