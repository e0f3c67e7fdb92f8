"""The fault scenarios of issue 5, by number, for the tests and bench/faults.py.

Each takes a `Rig` (a private Redis, a prefix in the private vhost) and its sizes as keyword
arguments, and returns an `Outcome`: heartbeats sent, commands lost, events lost, false
`agent.left`, duplicate transitions, time to recover, and what else did not hold. The tests
run them at test size and assert every count is zero; bench/faults.py runs them larger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.faults.audit import Outcome
from tests.faults.crashes import kill_minus_nine, poison_message, racing_expiries, registry_down
from tests.faults.harness import Rig
from tests.faults.messages import unruly_messages
from tests.faults.outages import broker_cut, redis_hang, redis_restarted_empty

Scenario = Callable[..., Awaitable[Outcome]]

SCENARIOS: dict[int, Scenario] = {
    1: kill_minus_nine,
    2: registry_down,
    3: redis_restarted_empty,
    4: redis_hang,
    5: broker_cut,
    6: racing_expiries,
    7: poison_message,
    8: unruly_messages,
}


async def run(number: int, rig: Rig, **sizes: Any) -> Outcome:
    """Run scenario `number` on `rig`."""
    return await SCENARIOS[number](rig, **sizes)
