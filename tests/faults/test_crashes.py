"""Workers killed, the whole registry stopped, workers racing, a poison message (scenarios 1,
2, 6, 7 of issue 5): nothing lost, no false or duplicate event."""

from __future__ import annotations

import pytest

from tests.faults.crashes import kill_minus_nine, poison_message, racing_expiries, registry_down
from tests.faults.harness import Rig
from tests.faults.steps import assert_clean

pytestmark = pytest.mark.connected


async def test_kill_minus_nine_mid_batch_loses_no_command_and_no_event(rig: Rig) -> None:
    """Scenario 1 at the issue's size: 2,000 agents, 20,000 heartbeats, 5 kills mid-batch."""
    outcome = await kill_minus_nine(rig, agents=2000, rounds=10, kills=5)
    assert outcome.heartbeats == 20_000
    assert_clean(outcome, rig)


async def test_registry_down_three_ttls_reports_no_false_death(rig: Rig) -> None:
    """Scenario 2: all workers down for 3 x TTL (4 s); 1,000 agents heartbeat meanwhile (12,000
    commands wait), 100 stop: after the restart only those 100 leave (bench: 2,500 agents)."""
    outcome = await registry_down(rig, agents=1000, ttl_s=4.0)
    assert_clean(outcome, rig)


async def test_three_workers_racing_on_the_same_expiries_report_each_once(rig: Rig) -> None:
    """Scenario 6: 240 of 600 agents stop at one instant; three workers sweep: one agent.left
    each (bench/faults.py runs more agents)."""
    outcome = await racing_expiries(rig, agents=600, leaving=0.4, workers=3)
    assert_clean(outcome, rig)


async def test_a_poison_message_is_dead_lettered_and_its_neighbours_applied(rig: Rig) -> None:
    """Scenario 7: 5 commands that fail in Redis among 2,500 good ones (bench: more)."""
    outcome = await poison_message(rig, agents=500, poisons=5)
    assert_clean(outcome, rig)
