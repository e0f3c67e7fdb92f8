"""Test your own agent's registration and shutdown without RabbitMQ: `FakeRegistry`.

A `FakeRegistry` stands in for the broker and the registry in one process. Point your agent at
its `broker_url` (a `memory://` URL) and its `prefix`, by argument or through the environment
the client reads (`AGENTROSTER_BROKER_URL`, `AGENTROSTER_PREFIX`); every `Beacon`,
`announce()` or `CommandPublisher`-based publish then lands in the fake, which records each
command and keeps the leases the way the registry does::

    from agentroster import Beacon
    from agentroster.client.testing import FakeRegistry

    async def test_my_agent_registers_and_leaves() -> None:
        async with FakeRegistry() as registry:
            async with Beacon(MY_CARD, registry.broker_url, prefix=registry.prefix):
                assert registry.live_agents() == {"my-agent"}
            assert registry.live_agents() == set()
            assert registry.deregistrations("my-agent") == ["shutdown"]

What it checks as the registry would: every command is serialised and validated against the
wire contract (a command the registry would dead-letter raises `InvalidCommand` here, loudly,
in your test); the routing key names the command's agent; a `seq` not above the instance's last
one is ignored as a duplicate; a lease lasts `ttl_s` from its last renewal (bounded like the
registry's default, 5 s to 24 h), on the clock you give (`clock=`, default `time.monotonic`).
What it does not do: the registry's events, discovery, ownership by broker identity.
`registry.unreachable = True` makes publishes fail as with a broker outage (the Beacon retries).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError

from agentroster.client._errors import RegistryNotDeclared
from agentroster.client._publisher import MEMORY_SCHEME
from agentroster.contracts import (
    COMMAND_MODELS,
    CommandKind,
    Deregister,
    Heartbeat,
    Register,
    Topology,
)
from agentroster.contracts.commands import command_json
from agentroster.contracts.topology import DEFAULT_PREFIX

__all__ = ["FakeLease", "FakeRegistry", "InvalidCommand", "RecordedCommand"]

#: The registry's default TTL bounds (`AGENTROSTER_TTL_MIN_S`, `AGENTROSTER_TTL_MAX_S`).
TTL_MIN_S, TTL_MAX_S = 5.0, 24 * 3600.0

#: The open fakes of this process, by broker URL.
_OPEN: dict[str, FakeRegistry] = {}


class InvalidCommand(ValueError):
    """A command the registry would dead-letter (its reason as the registry names it)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class RecordedCommand:
    """One command as the fake received it."""

    kind: CommandKind
    routing_key: str
    command: Register | Heartbeat | Deregister
    user_id: str | None

    @property
    def agent_id(self) -> str:
        """The agent the command is for."""
        return self.command.agent_id


@dataclass
class FakeLease:
    """One live instance: its deadline on the fake's clock, and the last `seq` applied."""

    agent_id: str
    instance_id: str
    deadline: float
    seq: int
    card: dict[str, Any] = field(default_factory=dict)


class FakeRegistry:
    """An in-process broker and registry for tests (see the module docstring)."""

    def __init__(
        self, *, prefix: str = DEFAULT_PREFIX, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.prefix = prefix
        self.broker_url = f"{MEMORY_SCHEME}://fake-{secrets.token_hex(6)}/"
        self.clock = clock
        #: Every command received, valid or not, in order.
        self.commands: list[RecordedCommand] = []
        #: While True, publishes fail like an unreachable broker (`ConnectionError`).
        self.unreachable = False
        self._leases: dict[tuple[str, str], FakeLease] = {}
        self._last_seq: dict[tuple[str, str], int] = {}
        self._cards: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Condition()

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> Self:
        """Make `broker_url` reachable (as if the registry's worker had started)."""
        _OPEN[self.broker_url] = self
        return self

    def close(self) -> None:
        """Make `broker_url` unknown again (a publisher then gets `RegistryNotDeclared`)."""
        _OPEN.pop(self.broker_url, None)

    async def __aenter__(self) -> Self:
        return self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- what the registry knows ------------------------------------------------------------

    def live_agents(self) -> set[str]:
        """Agents with at least one unexpired lease."""
        now = self.clock()
        return {lease.agent_id for lease in self._leases.values() if lease.deadline > now}

    def live_instances(self, agent_id: str) -> set[str]:
        """The unexpired instances of one agent."""
        now = self.clock()
        return {
            lease.instance_id
            for lease in self._leases.values()
            if lease.agent_id == agent_id and lease.deadline > now
        }

    def lease(self, agent_id: str, instance_id: str) -> FakeLease | None:
        """One instance's lease (also an expired one), or None if it never registered or left."""
        return self._leases.get((agent_id, instance_id))

    def card(self, agent_id: str) -> dict[str, Any] | None:
        """The agent's card as last registered."""
        return self._cards.get(agent_id)

    def of_kind(self, kind: CommandKind, agent_id: str | None = None) -> list[RecordedCommand]:
        """The commands of one kind received, optionally for one agent only."""
        return [
            c
            for c in self.commands
            if c.kind == kind and (agent_id is None or c.agent_id == agent_id)
        ]

    def deregistrations(self, agent_id: str) -> list[str]:
        """The reasons of the agent's deregister commands (e.g. `shutdown`, `sigterm`)."""
        return [
            c.command.reason
            for c in self.of_kind("deregister", agent_id)
            if isinstance(c.command, Deregister)
        ]

    async def wait_for(self, predicate: Callable[[FakeRegistry], bool]) -> None:
        """Wait until `predicate(self)` holds, checked on every command received (bound the
        wait with `asyncio.timeout` against a hang)."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    # --- what a publisher calls ---------------------------------------------------------------

    async def receive(
        self, kind: CommandKind, routing_key: str, body: bytes, user_id: str | None
    ) -> None:
        """Take one command as the broker and the registry would; raises `InvalidCommand`."""
        if self.unreachable:
            raise ConnectionError(f"{self.broker_url} is unreachable (FakeRegistry.unreachable)")
        try:
            command = COMMAND_MODELS[kind].model_validate_json(body)
        except ValidationError as exc:
            raise InvalidCommand("invalid-schema", str(exc)) from None
        self.commands.append(RecordedCommand(kind, routing_key, command, user_id))
        parsed = Topology.parse_command_key(routing_key)
        if parsed is None or parsed != (command.agent_id, kind):
            raise InvalidCommand(
                "agent-id-mismatch", f"routing key {routing_key!r} for a {kind} of {command}"
            )
        self._apply(command)
        async with self._changed:
            self._changed.notify_all()

    def _apply(self, command: Register | Heartbeat | Deregister) -> None:
        key = (command.agent_id, command.instance_id)
        if command.seq <= self._last_seq.get(key, 0):
            return  # a duplicate or late command: the registry ignores it too
        self._last_seq[key] = command.seq
        if isinstance(command, Deregister):
            self._leases.pop(key, None)
            return
        ttl_s = min(max(command.ttl_s, TTL_MIN_S), TTL_MAX_S)
        deadline = self.clock() + ttl_s
        lease = self._leases.get(key)
        if isinstance(command, Register):
            self._cards[command.agent_id] = command.card
            self._leases[key] = FakeLease(
                command.agent_id, command.instance_id, deadline, command.seq, command.card
            )
        elif lease is not None and lease.deadline > self.clock():  # a heartbeat renews only
            lease.deadline, lease.seq = deadline, command.seq


class MemoryPublisher:
    """What `CommandPublisher` is for a `memory://` URL: publishes into a `FakeRegistry`."""

    def __init__(self, broker_url: str, *, prefix: str, user_id: str | None) -> None:
        self._url = broker_url
        self._exchange = Topology(prefix).commands_exchange
        self._prefix = prefix
        self._registry: FakeRegistry | None = None
        self.user_id = user_id or None
        #: Never set: an in-memory broker does not reconnect.
        self.reconnected = asyncio.Event()

    async def connect(self) -> Self:
        """Find the open `FakeRegistry` of this URL and prefix, as the exchange lookup would."""
        self._registry = self._lookup()
        return self

    def _lookup(self) -> FakeRegistry:
        registry = _OPEN.get(self._url)
        if registry is None or registry.prefix != self._prefix:
            raise RegistryNotDeclared(self._exchange, f"no open FakeRegistry at {self._url}")
        return registry

    async def publish(self, kind: CommandKind, command: Register | Heartbeat | Deregister) -> None:
        """Serialise the command as on the wire and hand it to the fake."""
        if self._registry is None:
            raise RuntimeError("MemoryPublisher.connect() was not awaited")
        registry = self._lookup()
        body = command_json(command)
        await registry.receive(
            kind, Topology.command_key(command.agent_id, kind), body, self.user_id
        )

    async def close(self) -> None:
        """Forget the registry."""
        self._registry = None
