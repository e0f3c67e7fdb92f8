"""Counting what a fault cost: events lost, duplicate transitions, false deaths; the outcome row.

Events are identified by their id, `<prefix>-<epoch>-<revision>`: a re-published event keeps
its id (at-least-once delivery is not a duplicate transition), and the epoch tells the
revisions of a Redis that lost its data from those before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from agentroster.store.keys import Keys
from tests.helpers import EventCollector, ReceivedEvent


def identity(event: ReceivedEvent, prefix: str) -> tuple[str, int]:
    """(epoch, revision) of an event, from its id."""
    event_id = event.message_id or str(event.headers.get("cloudEvents_id", ""))
    epoch, _, revision = event_id.removeprefix(f"{prefix}-").rpartition("-")
    return epoch, int(revision)


def distinct(events: Iterable[ReceivedEvent], prefix: str) -> list[ReceivedEvent]:
    """Each event once (the first delivery of each id), in arrival order."""
    seen: set[tuple[str, int]] = set()
    unique = []
    for event in events:
        key = identity(event, prefix)
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


#: Where a scenario's events are: an epoch and its first and last revision in the outbox.
Position = tuple[str, int, int]


async def outbox_position(redis: Redis, keys: Keys) -> Position:
    """The registry's epoch and the revisions its outbox holds (the rig keeps every event in
    the outbox's window). After a data loss revisions go on from a new start, so the first is
    read from the outbox rather than assumed to be 1."""
    epoch, revision = await redis.mget(keys.epoch, keys.revision)
    last = int(revision or 0)
    epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch or "")
    oldest: Any = await redis.xrange(keys.outbox, count=1)
    first = int(oldest[0][0].split(b"-")[0]) if oldest else last + 1
    return epoch, first, last


async def settle(
    collector: EventCollector, redis: Redis, keys: Keys, *, timeout: float = 60.0
) -> Position:
    """Wait until the relay published the whole outbox and the tap received it (bounded: what
    is still missing then is lost); returns the position that was awaited."""
    epoch, first, last = await outbox_position(redis, keys)
    wanted = {(epoch, r) for r in range(first, last + 1)}

    async def done() -> None:
        while True:
            relayed = int(await redis.get(keys.relayed) or 0)
            got = {identity(e, keys.prefix) for e in collector.events}
            if relayed >= last and wanted <= got:
                return
            await asyncio.sleep(0.05)

    with contextlib.suppress(TimeoutError):  # what is still missing then is counted as lost
        await asyncio.wait_for(done(), timeout)
    return epoch, first, last


def missing(events: Iterable[ReceivedEvent], prefix: str, position: Position) -> int:
    """Revisions of `position` that never arrived."""
    epoch, first, last = position
    got = {r for e, r in (identity(ev, prefix) for ev in events) if e == epoch}
    return sum(1 for r in range(first, last + 1) if r not in got)


def duplicate_transitions(events: Iterable[ReceivedEvent], prefix: str) -> int:
    """Transitions reported twice: a second `agent.joined` while the agent is available, or a
    second `agent.left` while it is not (per epoch, in revision order, deliveries deduplicated)."""
    by_epoch: dict[str, list[ReceivedEvent]] = {}
    for event in distinct(events, prefix):
        by_epoch.setdefault(identity(event, prefix)[0], []).append(event)
    duplicates = 0
    for epoch_events in by_epoch.values():
        available: dict[str, bool] = {}
        for event in sorted(epoch_events, key=lambda e: e.revision):
            before = available.get(event.agent_id)
            if event.kind == "joined":
                duplicates += before is True
                available[event.agent_id] = True
            elif event.kind == "left":
                duplicates += before is False
                available[event.agent_id] = False
            else:  # updated: live or idle, both available
                available[event.agent_id] = event.data.get("status") != "offline"
    return duplicates


def left_agents(events: Iterable[ReceivedEvent], prefix: str) -> dict[str, list[str]]:
    """agent -> reasons of its `agent.left` events (deliveries deduplicated)."""
    left: dict[str, list[str]] = {}
    for event in distinct(events, prefix):
        if event.kind == "left":
            left.setdefault(event.agent_id, []).append(str(event.data.get("reason")))
    return left


def joined_agents(events: Iterable[ReceivedEvent], prefix: str) -> dict[str, list[str]]:
    """agent -> reasons of its `agent.joined` events (deliveries deduplicated)."""
    joined: dict[str, list[str]] = {}
    for event in distinct(events, prefix):
        if event.kind == "joined":
            joined.setdefault(event.agent_id, []).append(str(event.data.get("reason")))
    return joined


@dataclass
class Outcome:
    """One scenario's row: what it sent and what the faults cost (all zero when it held)."""

    scenario: str
    heartbeats: int = 0
    commands_lost: int = 0
    events_lost: int = 0
    false_left: int = 0
    duplicate_transitions: int = 0
    recover_s: float | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def expect(self, holds: bool, problem: str) -> None:
        """Record a scenario-specific expectation that did not hold."""
        if not holds:
            self.problems.append(problem)

    def recovered_after(self, seconds: float) -> None:
        """Keep the longest time to recover of the scenario's faults."""
        self.recover_s = max(self.recover_s or 0.0, seconds)

    def count_events(
        self,
        events: Sequence[ReceivedEvent],
        prefix: str,
        *,
        positions: Iterable[Position],
        stay: Iterable[str],
    ) -> None:
        """Events lost (per outbox position awaited), duplicate transitions, and false
        `agent.left`: any for an agent in `stay` (it kept heartbeating and never left)."""
        self.events_lost += sum(missing(events, prefix, p) for p in positions)
        self.duplicate_transitions += duplicate_transitions(events, prefix)
        left = left_agents(events, prefix)
        self.false_left += sum(len(left.get(agent, ())) for agent in set(stay))

    def summary(self) -> str:
        """One line for a failure message."""
        recover = "-" if self.recover_s is None else f"{self.recover_s:.1f}s"
        return (
            f"{self.scenario}: heartbeats {self.heartbeats}, commands lost {self.commands_lost}, "
            f"events lost {self.events_lost}, false agent.left {self.false_left}, duplicate "
            f"transitions {self.duplicate_transitions}, recover {recover}; problems: "
            f"{self.problems or 'none'}"
        )
