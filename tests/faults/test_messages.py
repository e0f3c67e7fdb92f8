"""Duplicate, reordered and late messages, agent clocks an hour off (scenario 8 of issue 5):
no effect on liveness, which the registry reckons with its own clock."""

from __future__ import annotations

import pytest

from tests.faults.harness import Rig
from tests.faults.messages import unruly_messages
from tests.faults.steps import assert_clean

pytestmark = pytest.mark.connected


async def test_duplicates_reordering_and_skewed_clocks_do_not_change_liveness(rig: Rig) -> None:
    """Scenario 8: 200 agents, clocks 1 h ahead or behind, every renewal reordered and doubled."""
    outcome = await unruly_messages(rig, agents=200, ttl_s=4.0)
    assert_clean(outcome, rig)
