"""Redis restarted empty, Redis unreachable, RabbitMQ connections cut (scenarios 3, 4, 5 of
issue 5): nothing lost, no false death."""

from __future__ import annotations

import pytest

from tests.faults.harness import Rig
from tests.faults.outages import broker_cut, redis_hang, redis_restarted_empty
from tests.faults.steps import assert_clean

pytestmark = pytest.mark.connected


async def test_redis_restarted_empty_loses_no_agent(rig: Rig) -> None:
    """Scenario 3: Redis restarts empty under 100 heartbeating Beacons (TTL 6 s): no
    agent.left, every agent back within 2 x TTL, joined again with reason `recovered`."""
    outcome = await redis_restarted_empty(rig, agents=100, ttl_s=6.0)
    assert_clean(outcome, rig)


async def test_redis_unreachable_for_30_seconds_loses_no_heartbeat(rig: Rig) -> None:
    """Scenario 4: the workers' Redis connections hang for 30 s (6 x TTL) while 300 agents
    heartbeat and 30 stop: every heartbeat applied, only those 30 leave."""
    outcome = await redis_hang(rig, agents=300, ttl_s=5.0, outage_s=30.0)
    assert_clean(outcome, rig)


async def test_worker_broker_connection_cut_for_half_a_ttl(rig: Rig) -> None:
    """Scenario 5, worker side: its RabbitMQ connections reset and refused for 4 s (TTL / 2):
    it reconnects, the queued heartbeats are applied, nobody leaves."""
    outcome = await broker_cut(rig, side="worker", agents=50, ttl_s=8.0)
    assert_clean(outcome, rig)


async def test_agents_broker_connections_cut_for_half_a_ttl(rig: Rig) -> None:
    """Scenario 5, agent side: 50 Beacons (interval TTL / 4) lose RabbitMQ for 4 s (TTL / 2):
    they reconnect and heartbeat again in time, nobody leaves."""
    outcome = await broker_cut(rig, side="agents", agents=50, ttl_s=8.0)
    assert_clean(outcome, rig)
