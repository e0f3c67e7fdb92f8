"""Stand-ins for the API's `CommandGateway`: one records, one applies to Redis without a broker."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentroster.api.auth import Principal
from agentroster.api.gateway import BrokerUnavailable, CommandGateway, Outcome, command_kind
from agentroster.contracts import Topology
from agentroster.contracts.commands import Command
from agentroster.registry.prepare import Limits, Rejected, prepare
from agentroster.store.redis_store import FORBIDDEN, RedisStore


@dataclass(frozen=True)
class Sent:
    """One command the API sent, for whom, and whether it waited for the outcome."""

    command: Command
    principal: Principal | None
    wait: bool


@dataclass
class RecordingGateway(CommandGateway):
    """Records every command; answers `outcome` when set (else what `apply` makes of it), or
    raises `BrokerUnavailable` while `down`."""

    outcome: Outcome | None = None
    down: bool = False
    sent: list[Sent] = field(default_factory=list)
    started: bool = False
    stopped: bool = False

    async def start(self) -> None:
        """Note that the API started it."""
        self.started = True

    async def stop(self) -> None:
        """Note that the API stopped it."""
        self.stopped = True

    async def send(
        self, command: Command, principal: Principal | None, *, wait: bool = False
    ) -> Outcome:
        """Record the command; answer as configured."""
        if self.down:
            raise BrokerUnavailable("connection refused", retry_after_s=2)
        self.sent.append(Sent(command, principal, wait))
        if self.outcome is not None:
            return self.outcome
        return await self.apply(command, principal)

    async def apply(self, command: Command, principal: Principal | None) -> Outcome:
        """What became of the command: here, applied."""
        return Outcome("applied")


@dataclass
class StoreGateway(RecordingGateway):
    """Applies each command to Redis as the worker would (the same checks and script), with
    the principal's identity: the HTTP layer end to end, without a broker or a worker."""

    store: RedisStore | None = None
    limits: Limits = field(default_factory=Limits)

    async def apply(self, command: Command, principal: Principal | None) -> Outcome:
        """Prepare and apply the command; a rejection is the outcome the worker would report."""
        assert self.store is not None
        key = Topology.command_key(command.agent_id, command_kind(command))
        body = command.model_dump_json(exclude_none=True).encode()
        try:
            prepared = prepare(key, body, principal.identity if principal else "", self.limits)
        except Rejected as exc:
            return Outcome("rejected", exc.reason, exc.detail)
        [code] = (await self.store.apply([prepared])).codes
        if code == FORBIDDEN:
            return Outcome("rejected", "forbidden", "the agent belongs to another identity")
        return Outcome("applied")
