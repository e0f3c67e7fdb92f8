"""Steps the scenarios share: wait until the registry caught up, check the queues are drained,
and a barrier that proves the reaper has looked at every lease renewed before a point."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime

from tests.faults.audit import Outcome, left_agents, settle
from tests.faults.fleet import Fleet, SimAgent, TrackedBeacon, confirmed_of, unapplied
from tests.faults.harness import Rig
from tests.helpers import EventCollector


async def caught_up(
    rig: Rig, agents: Sequence[SimAgent | TrackedBeacon], *, timeout: float = 60.0
) -> int:
    """Wait (bounded) until the registry applied every confirmed command of these agents;
    returns how many it did not (0: nothing lost)."""
    return await caught_up_with(rig, confirmed_of(agents), timeout=timeout)


async def caught_up_with(
    rig: Rig, confirmed: Sequence[tuple[str, str, int]], *, timeout: float = 60.0
) -> int:
    """`caught_up` for a snapshot of (agent, instance, confirmed seq)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (behind := await unapplied(rig.redis, rig.keys, confirmed)) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return behind


async def drained(
    rig: Rig, outcome: Outcome, *, dead_letters: int = 0, timeout: float = 60.0
) -> None:
    """Stop the workers once the commands queue is empty: nothing may be left in it (every
    command acknowledged), and exactly `dead_letters` commands dead-lettered."""
    queue = rig.names.commands_queue
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await rig.queue_messages(queue) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    await rig.stop_workers()
    left = await rig.queue_messages(queue)
    outcome.expect(left == 0, f"{left} commands still in {queue} after the workers stopped")
    parked = await rig.queue_messages(rig.names.dead_letter_queue)
    outcome.expect(
        parked == dead_letters, f"{parked} commands dead-lettered, expected {dead_letters}"
    )


def expiry_bound(ttl_s: float) -> float:
    """How long a stopped agent may take to leave before a scenario gives up waiting (a guard
    against a hang, not an assertion): its own TTL, a full TTL of grace after a gap, one held
    by the mass-expiry brake, the 2 TTL recovery window after a data loss, and slack."""
    return 5 * ttl_s + 20


async def departed(
    events: EventCollector, agent_ids: Iterable[str], *, timeout: float = 60.0
) -> bool:
    """Wait (bounded) until every one of these agents' `agent.left` arrived.

    Used as a barrier after stopping a sentinel agent: its lease ends one TTL after its last
    renewal, like that of any agent the registry failed to hear from since; once its
    `agent.left` arrived (events leave in revision order), a false expiry the faults before
    could cause would have arrived too.
    """
    wanted = set(agent_ids)
    try:
        await events.wait_until(
            lambda evs: wanted <= {e.agent_id for e in evs if e.kind == "left"}, timeout=timeout
        )
    except AssertionError:
        return False
    return True


def assert_clean(outcome: Outcome, rig: Rig) -> None:
    """Nothing lost, no false or duplicate event, every scenario-specific expectation held."""
    detail = f"{outcome.summary()}\n{rig.worker_logs()}"
    assert outcome.heartbeats > 0, detail
    assert outcome.commands_lost == 0, detail
    assert outcome.events_lost == 0, detail
    assert outcome.false_left == 0, detail
    assert outcome.duplicate_transitions == 0, detail
    assert outcome.problems == [], detail


async def recover_from_outage(
    rig: Rig,
    events: EventCollector,
    outcome: Outcome,
    fleet: Fleet,
    *,
    backlog: Sequence[tuple[str, str, int]],
    healed: float,
    stopped: Sequence[SimAgent],
    steady: Sequence[SimAgent],
    sentinel: SimAgent,
    ttl_s: float,
    timeout: float = 60.0,
) -> None:
    """After an outage that ended at loop time `healed`: the registry applies the `backlog`
    (time to recover), the agents that stopped during the outage leave, then the sentinel,
    stopped last, leaves too (its agent.left proves the reaper looked at every earlier lease);
    then the fleet stops beating and every last command is applied."""
    outcome.commands_lost += await caught_up_with(rig, backlog, timeout=timeout)
    outcome.recovered_after(asyncio.get_running_loop().time() - healed)
    stopped_left = await departed(
        events, [a.agent_id for a in stopped], timeout=expiry_bound(ttl_s)
    )
    outcome.expect(stopped_left, "the agents that stopped during the outage did not leave")
    if stopped_left:  # else the sentinel would not leave either
        fleet.crash([sentinel])
        outcome.expect(
            await departed(events, [sentinel.agent_id], timeout=expiry_bound(ttl_s)),
            "the sentinel agent did not leave when it stopped",
        )
    await fleet.stop_beating()
    outcome.commands_lost += await caught_up(rig, steady)
    outcome.heartbeats = fleet.heartbeats


async def account_outage(
    rig: Rig,
    events: EventCollector,
    outcome: Outcome,
    *,
    stopped: Sequence[SimAgent],
    steady: Sequence[SimAgent],
    ended_at: datetime,
    during: str,
) -> Outcome:
    """After an outage: every event accounted for, each stopped agent left once (expired),
    and no agent.left was published before the outage ended (`during` names the outage)."""
    position = await settle(events, rig.redis, rig.keys)
    await drained(rig, outcome)
    outcome.count_events(
        events.events, rig.prefix, positions=[position], stay=[a.agent_id for a in steady]
    )
    left = left_agents(events.events, rig.prefix)
    wrong = [a.agent_id for a in stopped if left.get(a.agent_id) != ["expired"]]
    outcome.expect(not wrong, f"{len(wrong)} stopped agents without one agent.left: {wrong[:5]}")
    early = [
        e.agent_id
        for e in events.of("left")
        if datetime.fromisoformat(e.headers["cloudEvents_time"]) < ended_at
    ]
    outcome.expect(not early, f"agent.left {during}: {early[:5]}")
    return outcome
