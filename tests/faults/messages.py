"""Scenario 8: duplicate, reordered and late messages, and agent clocks an hour off."""

from __future__ import annotations

import asyncio

from tests.faults.audit import Outcome, joined_agents, left_agents, settle
from tests.faults.fleet import Fleet, SimAgent, numbered
from tests.faults.harness import Rig
from tests.faults.steps import caught_up, departed, drained, expiry_bound


async def _unruly_round(fleet: Fleet, agent: SimAgent) -> None:
    """Two renewals sent in the wrong order, the later one twice."""
    first, second = agent.take_seq(), agent.take_seq()
    await fleet.send("heartbeat", agent, seq=second)
    await fleet.send("heartbeat", agent, seq=first)  # late: overtaken by `second`
    await fleet.send("heartbeat", agent, seq=second)  # duplicate


async def unruly_messages(
    rig: Rig, *, agents: int = 200, rounds: int = 8, ttl_s: float = 4.0, workers: int = 2
) -> Outcome:
    """Scenario 8: agents whose clocks are an hour ahead (`sent_at` + 1 h) or behind (- 1 h)
    send every renewal out of order and twice; some deregister and are then sent late
    heartbeats, registrations and a duplicate deregistration; the others get a late
    deregistration (a seq below their last).

    Expected: liveness as if all were orderly, on the registry's clock: leases run TTL from
    each applied renewal (Redis time, whatever `sent_at` says); no agent leaves early (the
    clocks behind) and none lives longer (the clocks ahead leave when they stop); the
    deregistered stay gone; every agent joins once.
    """
    outcome = Outcome("8 duplicates, reordering, clocks 1 h off")
    settings = rig.settings()
    events = await rig.tap()
    for n in range(workers):
        await rig.worker(settings, f"worker-{n}")
    count = agents // 2
    url, prefix = rig.broker_url, rig.prefix
    async with (
        Fleet(url, prefix, numbered("ahead", count), ttl_s=ttl_s, clock_skew_s=3600) as ahead,
        Fleet(url, prefix, numbered("behind", count), ttl_s=ttl_s, clock_skew_s=-3600) as behind,
    ):
        await asyncio.gather(ahead.register(), behind.register())
        everyone = [*ahead.agents, *behind.agents]
        outcome.commands_lost += await caught_up(rig, everyone)
        leavers = [*ahead.agents[:5], *behind.agents[:5]]
        fleets = {id(a): f for f in (ahead, behind) for a in f.agents}
        for agent in leavers:
            fleet = fleets[id(agent)]
            await fleet.deregister([agent])
            await fleet.send("deregister", agent, seq=agent.next_seq - 1)  # duplicate
            await fleet.send("heartbeat", agent, seq=agent.next_seq - 2)  # late
            await fleet.send("register", agent, seq=1)  # late
        staying = [a for a in everyone if a.state == "beating"]
        for agent in staying:
            await fleets[id(agent)].send("deregister", agent, seq=agent.next_seq - 1)  # late
        loop = asyncio.get_running_loop()
        for _ in range(rounds):  # the renewals, every TTL / 4: TTL's worth twice over
            started = loop.time()
            await asyncio.gather(*(_unruly_round(fleets[id(a)], a) for a in staying))
            await asyncio.sleep(max(0.0, started + ttl_s / 4 - loop.time()))
        outcome.commands_lost += await caught_up(rig, staying)
        await _check_leases(rig, outcome, staying, ttl_s)
        # the clocks ahead stop: they must leave (not an hour later); those behind go on
        gone = ahead.where("beating")
        ahead.crash(gone)
        behind.start_beating(ttl_s / 4)
        stay_ids = [a.agent_id for a in behind.where("beating")]
        outcome.expect(
            await departed(events, [a.agent_id for a in gone], timeout=expiry_bound(ttl_s)),
            "agents with clocks an hour ahead did not leave when they stopped",
        )
        await behind.stop_beating()
        outcome.commands_lost += await caught_up(rig, behind.where("beating"))
        outcome.heartbeats = ahead.heartbeats + behind.heartbeats
    position = await settle(events, rig.redis, rig.keys)
    await drained(rig, outcome)
    outcome.count_events(events.events, rig.prefix, positions=[position], stay=stay_ids)
    joined, left = joined_agents(events.events, rig.prefix), left_agents(events.events, rig.prefix)
    twice = [a.agent_id for a in everyone if joined.get(a.agent_id) != ["registered"]]
    outcome.expect(not twice, f"{len(twice)} agents without exactly one agent.joined")
    wrong = [a.agent_id for a in leavers if left.get(a.agent_id) != ["deregistered"]]
    outcome.expect(not wrong, f"deregistered agents left otherwise than once: {wrong}")
    wrong = [a.agent_id for a in gone if left.get(a.agent_id) != ["expired"]]
    outcome.expect(not wrong, f"stopped agents left otherwise than once: {wrong[:5]}")
    return outcome


async def _check_leases(rig: Rig, outcome: Outcome, agents: list[SimAgent], ttl_s: float) -> None:
    """Every lease runs exactly TTL from its last renewal, both on the registry's clock."""
    seconds, micros = await rig.redis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    async with rig.redis.pipeline(transaction=False) as pipe:
        for a in agents:
            pipe.hmget(rig.keys.instance(a.agent_id, a.instance_id), "last_seen", "deadline")
        leases = await pipe.execute()
    ttl_ms = round(ttl_s * 1000)
    skewed = [
        a.agent_id
        for a, (seen, deadline) in zip(agents, leases, strict=True)
        if seen is None
        or int(deadline) - int(seen) != ttl_ms
        or not now_ms - ttl_ms <= int(seen) <= now_ms
    ]
    outcome.expect(not skewed, f"leases not reckoned on the registry's clock: {skewed[:5]}")
