"""Scenarios where processes die or race: kill -9 mid-batch (1), the whole registry down for
3 x TTL (2), three workers racing on the same expiries (6), a poison message (7)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from tests.faults.audit import Outcome, joined_agents, left_agents, settle
from tests.faults.fleet import Fleet, SimAgent, confirmed_of, numbered
from tests.faults.harness import Rig, eventually
from tests.faults.steps import (
    account_outage,
    caught_up,
    departed,
    drained,
    expiry_bound,
    recover_from_outage,
)
from tests.helpers import drain_queue


def _slices(items: Sequence[SimAgent], parts: int) -> list[list[SimAgent]]:
    size = len(items)
    return [list(items[k * size // parts : (k + 1) * size // parts]) for k in range(parts)]


async def kill_minus_nine(
    rig: Rig,
    *,
    agents: int = 2000,
    rounds: int = 10,
    kills: int = 5,
    churn: int = 100,
    ttl_s: float = 15.0,
) -> Outcome:
    """Scenario 1: `kill -9` of the worker mid-batch, `kills` times, while `agents` agents
    send `rounds` heartbeats each, and `churn` more agents join and deregister meanwhile.

    Each kill is made mid-batch for certain: half of a round is applied, the worker's Redis
    proxy hangs, the other half is published, and the worker is killed once the proxy holds
    its heartbeat batch (a script call in flight, its commands unacknowledged). On even kills
    the proxy then resets (the batch dies with the worker); on odd ones it heals, and the
    batch commits in Redis after its worker died (its redelivery must be a no-op). A new
    worker takes over. Every round waits until the registry applied all of it, so a lost
    command is counted exactly (its instance's seq stays behind).
    """
    outcome = Outcome("1 kill -9 mid-batch")
    loop = asyncio.get_running_loop()
    redis_proxy = await rig.proxy(rig.redis_server.url)
    settings = rig.settings(redis_proxy=redis_proxy)
    events = await rig.tap()
    worker = await rig.worker(settings, "worker-0")
    kill_rounds = {1 + k * rounds // kills for k in range(kills)}
    steady_ids, churn_ids = numbered("steady", agents), numbered("churn", churn)
    async with Fleet(rig.broker_url, rig.prefix, steady_ids + churn_ids, ttl_s=ttl_s) as fleet:
        steady, churners = fleet.agents[:agents], fleet.agents[agents:]
        half = len(steady) // 2
        await fleet.register(steady)
        outcome.commands_lost += await caught_up(rig, steady)
        joining = _slices(churners, rounds)
        for r in range(1, rounds + 1):
            joins = joining[r - 1]
            leaves = joining[r - 3] if r >= 3 else []  # joined two rounds ago
            if r not in kill_rounds:
                await asyncio.gather(
                    fleet.beat(steady), fleet.register(joins), fleet.deregister(leaves)
                )
            else:
                kill = len([k for k in kill_rounds if k < r])
                await asyncio.gather(fleet.beat(steady[:half]), fleet.register(joins))
                outcome.commands_lost += await caught_up(rig, [*steady[:half], *joins])
                redis_proxy.hang()
                await asyncio.gather(fleet.beat(steady[half:]), fleet.deregister(leaves))
                # a batch is in flight, unacknowledged: its script call is held, or the new
                # connection it waits for (redis-py opens one with HELLO when none is idle:
                # the reaper's or the relay's call may hold the idle one), and every heartbeat
                # was delivered to the worker
                await redis_proxy.held(b"heartbeat", b"HELLO")
                await eventually(
                    lambda: _delivered(rig), "the worker holds every heartbeat, unacknowledged"
                )
                killed_at = loop.time()
                await worker.crash()
                if kill % 2 == 0:
                    redis_proxy.cut()  # the batch in flight dies with its worker
                redis_proxy.restore()  # on odd kills it reaches Redis after the worker died
                worker = await rig.worker(settings, f"worker-{kill + 1}")
            outcome.commands_lost += await caught_up(rig, [*steady, *joins, *leaves])
            if r in kill_rounds:
                outcome.recovered_after(loop.time() - killed_at)
        rest = [a for a in churners if a.state == "beating"]
        await fleet.deregister(rest)
        outcome.commands_lost += await caught_up(rig, rest)
        outcome.heartbeats = fleet.heartbeats
    position = await settle(events, rig.redis, rig.keys)
    await drained(rig, outcome)
    outcome.count_events(events.events, rig.prefix, positions=[position], stay=steady_ids)
    joined, left = joined_agents(events.events, rig.prefix), left_agents(events.events, rig.prefix)
    unjoined = [a for a in steady_ids + churn_ids if joined.get(a) != ["registered"]]
    outcome.expect(not unjoined, f"{len(unjoined)} agents without one agent.joined: {unjoined[:5]}")
    unleft = [a for a in churn_ids if left.get(a) != ["deregistered"]]
    outcome.expect(
        not unleft, f"{len(unleft)} agents deregistered without agent.left: {unleft[:5]}"
    )
    return outcome


async def registry_down(
    rig: Rig,
    *,
    agents: int = 1000,
    ttl_s: float = 4.0,
    workers: int = 2,
    stopping: float = 0.1,
    backlog_limit: int | None = None,
) -> Outcome:
    """Scenario 2: every worker stops for 3 x TTL (one killed, the others gracefully) while
    the agents heartbeat into the queue; a share of them (`stopping`) really stops meanwhile.

    The reaper's backlog limit is one heartbeat per agent (unless `backlog_limit` says
    otherwise), so the 3 x TTL of heartbeats waiting at the restart pause the reapers, and the
    recovery must come out of that pause once the backlog is applied. After the restart no
    agent that kept heartbeating may leave; those that stopped leave, after the recovery.
    Time to recover: from the restart until every heartbeat sent until then is applied.
    """
    outcome = Outcome("2 registry down 3 x TTL")
    loop = asyncio.get_running_loop()
    limit = agents if backlog_limit is None else backlog_limit
    settings = rig.settings(reaper_backlog_limit=limit)
    events = await rig.tap()
    replicas = [await rig.worker(settings, f"worker-{n}") for n in range(workers)]
    ids = [*numbered("agent", agents), "sentinel"]
    async with Fleet(rig.broker_url, rig.prefix, ids, ttl_s=ttl_s) as fleet:
        await fleet.register()
        outcome.commands_lost += await caught_up(rig, fleet.agents)
        fleet.start_beating(ttl_s / 4)
        stopped = fleet.agents[: max(1, int(agents * stopping))]
        steady, sentinel = fleet.agents[len(stopped) : agents], fleet.agents[agents]
        await replicas[0].crash()
        await asyncio.gather(*(w.stop() for w in replicas[1:]))
        fleet.crash(stopped)  # these really stop during the outage
        await asyncio.sleep(3 * ttl_s)  # the outage: the others' heartbeats wait in the queue
        restart = datetime.now(UTC)
        restarted, backlog = loop.time(), confirmed_of(fleet.where("beating"))
        for n in range(workers):
            await rig.worker(settings, f"worker-{workers + n}")
        await recover_from_outage(
            rig,
            events,
            outcome,
            fleet,
            backlog=backlog,
            healed=restarted,
            stopped=stopped,
            steady=steady,
            sentinel=sentinel,
            ttl_s=ttl_s,
        )
    return await account_outage(
        rig,
        events,
        outcome,
        stopped=stopped,
        steady=steady,
        ended_at=restart,
        during="during the outage, before any worker ran",
    )


async def racing_expiries(
    rig: Rig, *, agents: int = 600, leaving: float = 0.4, ttl_s: float = 3.0, workers: int = 3
) -> Outcome:
    """Scenario 6: `workers` workers racing on the same expiries. A share of the agents
    (`leaving`, under the mass-expiry brake's half) renews at one instant and stops, so their
    leases fall due together in the sweeps of every worker; one worker reaches Redis through
    a proxy that delays every chunk, so the sweeps interleave differently. Each expiry must
    yield exactly one `agent.left`, and no other agent may leave.
    """
    outcome = Outcome(f"6 {workers} workers racing on expiries")
    redis_proxy = await rig.proxy(rig.redis_server.url)
    redis_proxy.delay(2)
    events = await rig.tap()
    for n in range(workers):
        proxy = redis_proxy if n == workers - 1 else None
        await rig.worker(rig.settings(redis_proxy=proxy), f"worker-{n}")
    async with Fleet(rig.broker_url, rig.prefix, numbered("agent", agents), ttl_s=ttl_s) as fleet:
        await fleet.register()
        outcome.commands_lost += await caught_up(rig, fleet.agents)
        fleet.start_beating(ttl_s / 4)
        leavers = fleet.agents[: int(agents * leaving)]
        steady = fleet.agents[len(leavers) :]
        fleet.crash(leavers)
        await fleet.beat(leavers)  # their last renewals, at one instant
        outcome.commands_lost += await caught_up(rig, leavers)
        outcome.expect(
            await departed(events, [a.agent_id for a in leavers], timeout=expiry_bound(ttl_s)),
            "the stopped agents did not all leave",
        )
        await fleet.stop_beating()
        outcome.commands_lost += await caught_up(rig, steady)
        outcome.heartbeats = fleet.heartbeats
    position = await settle(events, rig.redis, rig.keys)
    await drained(rig, outcome)
    outcome.count_events(
        events.events, rig.prefix, positions=[position], stay=[a.agent_id for a in steady]
    )
    deliveries = [e.agent_id for e in events.of("left")]
    left = left_agents(events.events, rig.prefix)
    wrong = [a.agent_id for a in leavers if left.get(a.agent_id) != ["expired"]]
    outcome.expect(not wrong, f"{len(wrong)} expiries without exactly one agent.left: {wrong[:5]}")
    outcome.notes.append(f"{len(deliveries)} agent.left deliveries for {len(left)} agents")
    return outcome


async def poison_message(
    rig: Rig, *, agents: int = 500, poisons: int = 5, rounds: int = 4, workers: int = 2
) -> Outcome:
    """Scenario 7: commands that crash the handler among good ones. The poison agents' keys
    in Redis have the wrong type, so every script touching them fails: each such command is
    redelivered until the quorum queue's delivery limit dead-letters it, while every command
    around it (in the same batches) is applied.
    """
    outcome = Outcome("7 poison message")
    settings = rig.settings()
    events = await rig.tap()
    for n in range(workers):
        await rig.worker(settings, f"worker-{n}")
    good_ids, bad_ids = numbered("agent", agents), numbered("poison", poisons)
    for agent_id in bad_ids:
        await rig.redis.set(rig.keys.agent(agent_id), "not a hash")
    async with Fleet(rig.broker_url, rig.prefix, good_ids + bad_ids, ttl_s=60.0) as fleet:
        good, bad = fleet.agents[:agents], fleet.agents[agents:]
        for chunk, poison in zip(_slices(good, poisons), bad, strict=True):
            await fleet.register(chunk)
            await fleet.register([poison])  # between two chunks of good commands
        for _ in range(rounds):
            await fleet.beat(good)
        outcome.commands_lost += await caught_up(rig, good)
        outcome.heartbeats = fleet.heartbeats
    parked = await drain_queue(rig.broker_url, rig.names.dead_letter_queue, poisons, timeout=120)
    outcome.expect(
        sorted(m.routing_key or "" for m in parked)
        == sorted(f"agent.{a}.register" for a in bad_ids),
        f"dead-lettered: {[m.routing_key for m in parked]}",
    )
    reasons = {str((m.headers or {}).get("x-first-death-reason")) for m in parked}
    outcome.expect(reasons == {"delivery_limit"}, f"dead-letter reasons: {reasons}")
    position = await settle(events, rig.redis, rig.keys)
    await drained(rig, outcome)
    outcome.count_events(events.events, rig.prefix, positions=[position], stay=good_ids)
    joined = joined_agents(events.events, rig.prefix)
    outcome.expect(set(joined) == set(good_ids), "agent.joined not exactly for the good agents")
    return outcome


async def _delivered(rig: Rig) -> bool:
    """Whether no command waits in the queue (the worker has them all, acknowledged or not)."""
    return await rig.queue_messages(rig.names.commands_queue) == 0
