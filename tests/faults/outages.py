"""Scenarios where a service goes away: Redis restarted empty (3), Redis unreachable (4),
RabbitMQ connections cut for the worker and for the agents (5)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Literal

from tests.faults.audit import Outcome, identity, joined_agents, settle
from tests.faults.fleet import (
    Fleet,
    TrackedBeacon,
    confirmed_of,
    live_agents,
    numbered,
    open_spread,
)
from tests.faults.harness import Rig
from tests.faults.steps import (
    account_outage,
    caught_up,
    departed,
    drained,
    expiry_bound,
    recover_from_outage,
)


async def redis_restarted_empty(
    rig: Rig, *, agents: int = 100, ttl_s: float = 6.0, workers: int = 2
) -> Outcome:
    """Scenario 3: Redis restarts empty (no persistence) under running workers while Beacons
    keep heartbeating. The workers notice the lost epoch; for 2 x the longest TTL no lease
    expires, and each Beacon's periodic full registration (at least once per TTL) brings its
    agent back, with `agent.joined` reason `recovered`. Expected: no `agent.left`, and every
    agent live again within 2 x TTL of the restart (time to recover).
    """
    outcome = Outcome("3 Redis restarted empty")
    loop = asyncio.get_running_loop()
    settings = rig.settings()
    events = await rig.tap()
    for n in range(workers):
        await rig.worker(settings, f"worker-{n}")
    ids = numbered("agent", agents)
    beacons = [
        TrackedBeacon(a, rig.broker_url, prefix=rig.prefix, interval_s=ttl_s / 4, ttl_s=ttl_s)
        for a in [*ids, "sentinel"]
    ]
    steady, sentinel = beacons[:agents], beacons[agents]
    await open_spread(beacons, ttl_s / 4)
    try:
        outcome.commands_lost += await caught_up(rig, beacons)
        before = await settle(events, rig.redis, rig.keys)
        await rig.restart_redis_empty()
        restarted = loop.time()

        # the sentinel too: a heartbeat alone cannot bring an agent back (the registry lost its
        # card), so a sentinel stopped before its full registration would never leave
        every = {*ids, sentinel.agent_id}

        async def all_back() -> bool:
            return every <= await live_agents(rig.redis, rig.keys)

        while not await all_back() and loop.time() - restarted < expiry_bound(ttl_s):
            await asyncio.sleep(0.05)
        outcome.recovered_after(loop.time() - restarted)
        back = len(every & await live_agents(rig.redis, rig.keys))
        outcome.expect(back == len(every), f"only {back} of {len(every)} agents came back")
        outcome.expect(
            (outcome.recover_s or 0) <= 2 * ttl_s,
            f"agents back after {outcome.recover_s:.1f}s, more than 2 x TTL ({2 * ttl_s:.0f}s)",
        )
        # the recovery window ends; then the sentinel's expiry shows no other lease expired
        await sentinel.crash()
        outcome.expect(
            await departed(events, [sentinel.agent_id], timeout=expiry_bound(ttl_s)),
            "the sentinel agent did not leave when it stopped",
        )
        for b in steady:
            await b.crash()
        outcome.commands_lost += await caught_up(rig, steady)
        outcome.heartbeats = sum(b.counting.sent["heartbeat"] for b in beacons)
    finally:
        await asyncio.gather(*(b.crash() for b in beacons))
    after = await settle(events, rig.redis, rig.keys)
    await drained(rig, outcome)
    outcome.count_events(events.events, rig.prefix, positions=[before, after], stay=ids)
    outcome.expect(before[0] != after[0], "the registry kept its epoch: no data loss was seen")
    rejoined = joined_agents(
        [e for e in events.events if identity(e, rig.prefix)[0] == after[0]], rig.prefix
    )
    wrong = [a for a in ids if rejoined.get(a) != ["recovered"]]
    outcome.expect(
        not wrong,
        f"{len(wrong)} agents without one agent.joined reason recovered after the restart: "
        f"{[(a, rejoined.get(a)) for a in wrong[:3]]}",
    )
    return outcome


async def redis_hang(
    rig: Rig,
    *,
    agents: int = 300,
    ttl_s: float = 5.0,
    outage_s: float = 30.0,
    workers: int = 2,
    stopping: float = 0.1,
) -> Outcome:
    """Scenario 4: Redis unreachable for `outage_s` (the workers' proxy hangs: bytes wait, as
    in a partition) while the agents heartbeat; a share of them (`stopping`) really stops.

    Expected: every heartbeat applied after the partition heals, no agent that kept
    heartbeating leaves, those that stopped leave (after the recovery). Time to recover:
    from the healing until every heartbeat sent until then is applied.
    """
    outcome = Outcome(f"4 Redis unreachable {outage_s:.0f}s")
    loop = asyncio.get_running_loop()
    redis_proxy = await rig.proxy(rig.redis_server.url)
    settings = rig.settings(redis_proxy=redis_proxy)
    events = await rig.tap()
    for n in range(workers):
        await rig.worker(settings, f"worker-{n}")
    ids = [*numbered("agent", agents), "sentinel"]
    async with Fleet(rig.broker_url, rig.prefix, ids, ttl_s=ttl_s) as fleet:
        await fleet.register()
        outcome.commands_lost += await caught_up(rig, fleet.agents)
        fleet.start_beating(ttl_s / 4)
        stopped = fleet.agents[: max(1, int(agents * stopping))]
        steady, sentinel = fleet.agents[len(stopped) : agents], fleet.agents[agents]
        redis_proxy.hang()
        fleet.crash(stopped)
        await asyncio.sleep(outage_s)  # the outage
        healed_at = datetime.now(UTC)
        healed, backlog = loop.time(), confirmed_of(fleet.where("beating"))
        redis_proxy.restore()
        await recover_from_outage(
            rig,
            events,
            outcome,
            fleet,
            backlog=backlog,
            healed=healed,
            stopped=stopped,
            steady=steady,
            sentinel=sentinel,
            ttl_s=ttl_s,
            timeout=120,
        )
    return await account_outage(
        rig,
        events,
        outcome,
        stopped=stopped,
        steady=steady,
        ended_at=healed_at,
        during="while Redis was unreachable",
    )


async def broker_cut(
    rig: Rig,
    *,
    side: Literal["worker", "agents", "both"] = "worker",
    agents: int = 50,
    ttl_s: float = 8.0,
    outage_s: float | None = None,
) -> Outcome:
    """Scenario 5: RabbitMQ connections reset, and refused for `outage_s` (default TTL / 2):
    the worker's, the agents' (real Beacons, heartbeating every TTL / 4), or both.

    Expected: the worker and the Beacons reconnect by themselves and heartbeats flow again
    (time to recover: from the healing until every agent published again and the registry
    applied it), and no agent leaves: the outage plus the time since an agent's last renewal
    before it (one interval) leave it one more interval to resume within its TTL.
    """
    outage = ttl_s / 2 if outage_s is None else outage_s
    outcome = Outcome(f"5 RabbitMQ cut {outage:.0f}s ({side})")
    loop = asyncio.get_running_loop()
    worker_proxy = await rig.proxy(rig.broker_url)
    agent_proxy = await rig.proxy(rig.broker_url)
    cut = {"worker": [worker_proxy], "agents": [agent_proxy], "both": [worker_proxy, agent_proxy]}
    events = await rig.tap()
    await rig.worker(rig.settings(broker_proxy=worker_proxy), "worker-0")
    ids = numbered("agent", agents)

    def beacon(agent_id: str, broker_url: str) -> TrackedBeacon:
        return TrackedBeacon(
            agent_id, broker_url, prefix=rig.prefix, interval_s=ttl_s / 4, ttl_s=ttl_s
        )

    beacons = [beacon(a, agent_proxy.url(rig.broker_url)) for a in ids]
    sentinel = beacon("sentinel", rig.broker_url)
    await open_spread([*beacons, sentinel], ttl_s / 4)
    try:
        outcome.commands_lost += await caught_up(rig, beacons)
        # steady state first: a few beats, and longer than aio-pika's reconnect interval (5 s,
        # which it waits after connecting before it watches for a loss), as for long-running
        # agents; the outage then finds each Beacon somewhere in its beat cycle
        beats = 1 + math.ceil(6 / (ttl_s / 4))
        while min(b.confirmed for b in beacons) < beats:
            await asyncio.sleep(0.05)
        for proxy in cut[side]:
            proxy.cut()
        await asyncio.sleep(outage)  # the outage
        marks = [b.confirmed for b in beacons]
        for proxy in cut[side]:
            proxy.restore()
        healed = loop.time()

        def silent() -> int:
            return sum(b.confirmed <= m for b, m in zip(beacons, marks, strict=True))

        while silent() and loop.time() - healed < 10 * ttl_s:
            await asyncio.sleep(0.05)
        outcome.commands_lost += await caught_up(rig, beacons)
        outcome.recovered_after(loop.time() - healed)
        outcome.expect(silent() == 0, f"{silent()} Beacons never published again")
        await sentinel.crash()
        outcome.expect(
            await departed(events, [sentinel.agent_id], timeout=expiry_bound(ttl_s)),
            "the sentinel agent did not leave when it stopped",
        )
        for b in beacons:
            await b.crash()
        outcome.commands_lost += await caught_up(rig, beacons)
        outcome.heartbeats = sum(b.counting.sent["heartbeat"] for b in [*beacons, sentinel])
    finally:
        await asyncio.gather(*(b.crash() for b in [*beacons, sentinel]))
    position = await settle(events, rig.redis, rig.keys)
    await drained(rig, outcome)
    outcome.count_events(events.events, rig.prefix, positions=[position], stay=ids)
    return outcome
