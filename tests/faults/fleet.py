"""Agents for the fault scenarios, and what the registry recorded of them.

- `Fleet`: many simulated agents publishing raw commands over one connection (thousands of
  Beacons would need thousands of connections), each instance numbering its messages; every
  command counts as sent only once the broker confirmed it.
- `TrackedBeacon`: the real `Beacon` (its reconnection and re-registration are under test),
  counting the commands the broker confirmed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aio_pika
import orjson
from redis.asyncio import Redis

from agentroster.client import Beacon
from agentroster.client._publisher import CommandPublisher
from agentroster.contracts import CommandKind, Deregister, Heartbeat, Register, card_digest
from agentroster.contracts.topology import Topology
from agentroster.store.keys import Keys
from tests.integration.agents import a2a_card

State = Literal["new", "beating", "stopped", "deregistered"]


@dataclass(eq=False)
class SimAgent:
    """One simulated agent instance and what the broker confirmed of it."""

    agent_id: str
    card: dict[str, Any]
    instance_id: str = "i"
    state: State = "new"
    next_seq: int = 1
    confirmed: int = 0  #: the highest seq the broker confirmed
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.digest = card_digest(self.card)

    def take_seq(self) -> int:
        """The next seq: messages of one instance are numbered 1, 2, 3..."""
        seq = self.next_seq
        self.next_seq += 1
        return seq


class Fleet:
    """Simulated agents over one confirmed publisher channel; `ttl_s` is every lease's TTL.

    `clock_skew_s` shifts the agents' `sent_at` (the registry must ignore it).
    """

    def __init__(
        self,
        broker_url: str,
        prefix: str,
        agent_ids: Iterable[str],
        *,
        ttl_s: float,
        clock_skew_s: float = 0.0,
        window: int = 500,
    ) -> None:
        self.agents = [SimAgent(a, a2a_card(a)) for a in agent_ids]
        self.by_id = {a.agent_id: a for a in self.agents}
        self.ttl_s = ttl_s
        self.clock_skew = timedelta(seconds=clock_skew_s)
        self.sent: Counter[str] = Counter()  #: confirmed commands by kind
        self._url = broker_url
        self._names = Topology(prefix)
        self._window = asyncio.Semaphore(window)
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._beating: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Fleet:
        self._connection = await aio_pika.connect(self._url)
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await channel.declare_exchange(
            self._names.commands_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_beating()
        if self._connection is not None:
            await self._connection.close()

    @property
    def heartbeats(self) -> int:
        """Heartbeats the broker confirmed."""
        return self.sent["heartbeat"]

    def where(self, *states: State) -> list[SimAgent]:
        """The agents in one of `states`."""
        return [a for a in self.agents if a.state in states]

    def command(self, kind: CommandKind, agent: SimAgent, seq: int) -> dict[str, Any]:
        """The body of one command, as `Beacon` would send it."""
        sent_at = datetime.now(UTC) + self.clock_skew
        agent_id, instance_id = agent.agent_id, agent.instance_id
        model: Register | Heartbeat | Deregister
        if kind == "register":
            model = Register(
                agent_id=agent_id,
                instance_id=instance_id,
                seq=seq,
                ttl_s=self.ttl_s,
                card=agent.card,
                sent_at=sent_at,
            )
        elif kind == "heartbeat":
            model = Heartbeat(
                agent_id=agent_id,
                instance_id=instance_id,
                seq=seq,
                ttl_s=self.ttl_s,
                card_digest=agent.digest,
                sent_at=sent_at,
            )
        else:
            model = Deregister(agent_id=agent_id, instance_id=instance_id, seq=seq, sent_at=sent_at)
        body: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
        return body

    async def send(
        self, kind: CommandKind, agent: SimAgent, *, seq: int | None = None, **override: Any
    ) -> None:
        """Publish one command (the agent's next seq unless given) and wait for the confirm."""
        assert self._exchange is not None, "use the fleet with `async with`"
        number = agent.take_seq() if seq is None else seq
        body = self.command(kind, agent, number) | override
        async with self._window:
            await self._exchange.publish(
                aio_pika.Message(
                    orjson.dumps(body),
                    content_type="application/json",
                    type=kind,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=Topology.command_key(agent.agent_id, kind),
                mandatory=True,
            )
        agent.confirmed = max(agent.confirmed, number)
        self.sent[kind] += 1

    async def register(self, agents: Sequence[SimAgent] | None = None) -> None:
        """Register (the not yet registered agents by default); they heartbeat from then on."""
        chosen = self.where("new") if agents is None else agents
        await asyncio.gather(*(self.send("register", a) for a in chosen))
        for a in chosen:
            a.state = "beating"

    async def beat(self, agents: Sequence[SimAgent] | None = None) -> None:
        """One heartbeat from each agent (the beating ones by default)."""
        chosen = self.where("beating") if agents is None else agents
        await asyncio.gather(*(self.send("heartbeat", a) for a in chosen))

    async def deregister(self, agents: Sequence[SimAgent]) -> None:
        """Deregister these agents (a graceful shutdown)."""
        for a in agents:
            a.state = "deregistered"
        await asyncio.gather(*(self.send("deregister", a) for a in agents))

    def crash(self, agents: Sequence[SimAgent]) -> None:
        """These agents stop without a word (their leases must expire)."""
        for a in agents:
            a.state = "stopped"

    def start_beating(self, interval_s: float, slices: int = 5) -> None:
        """Heartbeat every beating agent every `interval_s`, spread over the interval."""
        self._beating = asyncio.create_task(self._beat_forever(interval_s, slices))

    async def stop_beating(self) -> None:
        """Stop the heartbeat loop (a heartbeat being confirmed may still arrive)."""
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
            self._beating = None

    async def _beat_forever(self, interval_s: float, slices: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            beating = self.where("beating")
            for k in range(slices):  # an agent stopped meanwhile sends nothing more
                await self.beat([a for a in beating[k::slices] if a.state == "beating"])
                await asyncio.sleep(max(0.0, started + (k + 1) * interval_s / slices - loop.time()))


class CountingPublisher(CommandPublisher):
    """A `CommandPublisher` that remembers what the broker confirmed."""

    def __init__(self, broker_url: str, *, prefix: str) -> None:
        super().__init__(broker_url, prefix=prefix)
        self.confirmed = 0  #: the highest seq confirmed
        self.sent: Counter[str] = Counter()

    async def publish(self, kind: CommandKind, command: Register | Heartbeat | Deregister) -> None:
        """Publish; count it once the broker confirmed it."""
        await super().publish(kind, command)
        self.confirmed = max(self.confirmed, command.seq)
        self.sent[kind] += 1


class TrackedBeacon(Beacon):
    """A real `Beacon` that counts its confirmed commands (no signal handlers)."""

    def __init__(self, agent_id: str, broker_url: str, *, prefix: str, **options: Any) -> None:
        super().__init__(
            a2a_card(agent_id), broker_url, prefix=prefix, handle_signals=False, **options
        )
        self.counting = CountingPublisher(broker_url, prefix=prefix)
        self._publisher = self.counting

    @property
    def confirmed(self) -> int:
        """The highest seq the broker confirmed."""
        return self.counting.confirmed

    async def crash(self) -> None:
        """Stop beating and vanish without deregistering."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        await self._publisher.close()


async def open_spread(beacons: Sequence[TrackedBeacon], over_s: float) -> None:
    """Open the Beacons spread over `over_s` (one interval): like agents started at different
    times, they beat at every phase of the interval, so a fault finds some just before their
    next beat (the longest silence) and some just after."""

    async def start(beacon: TrackedBeacon, delay: float) -> None:
        await asyncio.sleep(delay)
        await beacon.open()

    count = len(beacons)
    await asyncio.gather(*(start(b, k * over_s / count) for k, b in enumerate(beacons)))


async def recorded_seqs(
    redis: Redis, keys: Keys, instances: Sequence[tuple[str, str]]
) -> list[int]:
    """The last applied seq of each (agent, instance), 0 when the registry has no record."""
    values: list[Any] = []
    for start in range(0, len(instances), 2000):
        async with redis.pipeline(transaction=False) as pipe:
            for agent_id, instance_id in instances[start : start + 2000]:
                pipe.hget(keys.instance(agent_id, instance_id), "seq")
            values += await pipe.execute()
    return [int(v or 0) for v in values]


async def unapplied(redis: Redis, keys: Keys, confirmed: Sequence[tuple[str, str, int]]) -> int:
    """Commands the broker confirmed that the registry has not applied (yet): for each
    instance, how far its recorded seq is below the last confirmed one."""
    recorded = await recorded_seqs(redis, keys, [(a, i) for a, i, _ in confirmed])
    return sum(max(0, seq - got) for (_, _, seq), got in zip(confirmed, recorded, strict=True))


def confirmed_of(agents: Iterable[SimAgent | TrackedBeacon]) -> list[tuple[str, str, int]]:
    """(agent, instance, last confirmed seq) of each agent."""
    return [(a.agent_id, a.instance_id, a.confirmed) for a in agents]


async def live_agents(redis: Redis, keys: Keys) -> set[str]:
    """The agents the registry holds live."""
    members: Any = await redis.zrange(keys.status("live"), 0, -1)
    return {m.decode() for m in members}


def numbered(stem: str, count: int, start: int = 0) -> list[str]:
    """Agent ids `stem-00000`, `stem-00001`..."""
    return [f"{stem}-{n:05d}" for n in itertools.islice(itertools.count(start), count)]
